"""The report's numbers: teacher against student on every metric, FairGRAPE's groups, which numbers
have intervals, and the mitigated student."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, create_model

from compress_gate.config.gate import GATED_METRICS
from compress_gate.report.schema._base import Interval, Number, ValueOrUndefined, _Node


#: The per-attribute numbers of report.json's ``per_attribute`` tables: every gateable
#: metric measured per attribute (from the registry), then label interrelation R².
PER_ATTRIBUTE: tuple[str, ...] = tuple(name for name, spec in GATED_METRICS.items()
                                       if spec.unit == "attribute" and spec.source == "member")
AttributeMetrics = create_model(
    "AttributeMetrics", __base__=_Node,
    __doc__="Per-attribute numbers of one model (a population: means over its members).",
    **{name: (Number, ...) for name in (*PER_ATTRIBUTE, "r2")})  # type: ignore[call-overload]


class ModelSummary(_Node):
    accuracy: Number
    per_attribute: dict[str, AttributeMetrics]  # type: ignore[valid-type]


class Delta(_Node):
    """Normalized change in percent, 100·(student − teacher)/teacher, per attribute."""

    fpr: dict[str, Number]
    fnr: dict[str, Number]


class Balance(_Node):
    """CEV or SDE with its interval and the attributes left out (teacher rate 0)."""

    value: Number
    ci: Interval = None
    excluded: list[str] = []
    undefined: str | None = None


class BAComparison(_Node):
    """BA of the student and its increase over the teacher: attribute -> identity -> value."""

    student: dict[str, dict[str, ValueOrUndefined]]
    increase: dict[str, dict[str, ValueOrUndefined]]


class BATables(BAComparison):
    teacher: dict[str, dict[str, ValueOrUndefined]]


class Rates(_Node):
    error: Number
    fpr: Number
    fnr: Number


class SubgroupRow(_Node):
    name: str
    size: int
    teacher: Rates
    student: Rates
    normalized_difference: Rates


class Histogram(_Node):
    edges: list[float]
    teacher: list[float]
    student: list[float]


class CIESummary(_Node):
    count: int
    share: Number = None
    share_uncertain_teacher: Number
    share_uncertain_student: Number
    share_uncertain_all_teacher: Number


class Metrics(_Node):
    """Teacher vs the raw student (before mitigation) on every number of DESIGN.md."""

    teacher: ModelSummary
    student: ModelSummary
    delta: Delta
    cev: Balance
    sde: Balance
    ba: BATables
    subgroups: list[SubgroupRow]
    uncertainty_histogram: Histogram
    cie: CIESummary


class Estimate(_Node):
    """A number and its paired bootstrap percentile interval (None where not resampled)."""

    value: Number
    ci: Interval = None


class TeacherStudent(_Node):
    teacher: Estimate
    student: Estimate


class JointGroupRow(_Node):
    """One row of FairGRAPE's Table 1: ``all`` or a joint group (e.g. ``male & not young``).

    ``fpr``/``fnr`` are pooled over attributes; ``ap`` is the mean over attributes of the AP
    within the row; ``ap_percent_of_teacher`` = 100 · AP_student / AP_teacher; ``pie_share``
    the share of (sample, attribute) pairs the teacher gets right and the student wrong.
    """

    name: str
    size: int
    accuracy: TeacherStudent
    fpr: TeacherStudent
    fnr: TeacherStudent
    ap: TeacherStudent
    ap_percent_of_teacher: Number
    pie_share: Estimate


class FairGRAPESection(_Node):
    """FairGRAPE's group metrics (Lin et al., ECCV 2022) of the teacher and the judged population.

    Joint groups are the membership patterns over ``group_columns``; spreads (Std) are sample
    standard deviations over the joint groups (not ``all``). Intervals are paired bootstrap
    intervals for the joint groups' values of the metrics a limit gates (``estimates``), never
    for the row ``all``; every other value is a point value. AP is computed only when a limit
    gates an AP metric (``ap_intervals``; else every AP value is null and
    ``ap_undefined_reason`` says why: AP is not additive and costly).
    """

    population: Literal["raw", "thresholds", "mitigated"] = Field(
        description="the student population compared with the teacher (the one the limits judge)")
    group_columns: list[str]
    rows: list[JointGroupRow]
    acc_change_std: Estimate
    ap_mean: TeacherStudent
    ap_std: TeacherStudent
    ap_change_std: Estimate
    pie_gap: Estimate
    ap_intervals: bool
    ap_undefined_reason: str | None = Field(
        None, description="why every AP value is null (AP is computed only when a limit gates an AP metric); "
                          "null when AP was computed")


class Estimates(_Node):
    """Which numbers of this report carry an interval, which are point values and which were not computed.

    Only what a limit gates is resampled. The metrics in ``intervals`` (what the limits gate,
    and the per-group numbers a gated spread is finished from) have bootstrap intervals for
    the teacher and the judged population wherever the report shows them with a ``ci``. Every
    other number is a point value: the metrics in ``point_only`` (``ci`` null wherever they
    appear) and every number the report shows without a ``ci`` field (per-attribute tables, BA
    tables, subgroup rows, δFPR/δFNR, the histogram, CIE, R²). ``not_computed`` maps a metric to
    the reason its values are null or absent.
    """

    intervals: list[str] = Field(description="gated metrics with bootstrap intervals (teacher and judged population)")
    point_only: list[str] = Field(description="gated metrics reported as point values only (ci null)")
    not_computed: dict[str, str] = Field(description="metric -> why it was not computed")


class OverrideSummary(_Node):
    count: int
    share: float
    budget: float
    attributes: list[str]


class MitigatedFigures(_Node):
    """The student with the mitigation that ships (thresholds and overrides)."""

    accuracy: Number
    cev: Balance
    sde: Balance
    ba: BAComparison
    delta: Delta


class Uncovered(_Node):
    """The test rows WITHOUT an override: teacher and shipped student (overrides do not apply
    there). What a ``judge: catalogue`` verdict says about inputs outside the catalogue."""

    n_rows: int
    teacher_accuracy: Number
    accuracy: Number
    ba: BATables


class MitigationSection(_Node):
    """``calibrated``: the student with its thresholds only (None without calibration);
    ``after``: with thresholds and overrides, on every test row; ``uncovered``: the rows
    without an override (None when nothing is overridden)."""

    thresholds: dict[str, float] | None = None
    overrides: OverrideSummary
    calibrated: MitigatedFigures | None = None
    after: MitigatedFigures
    uncovered: Uncovered | None = None
