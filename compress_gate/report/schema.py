"""report.json as a typed tree: frozen pydantic models, built once by the gate, never mutated.

The JSON Schema of report.json is generated from :class:`Report`
(``Report.model_json_schema()``), shipped as ``compress_gate/report/report.schema.json``
and ``docs/report.schema.json``, and versioned by :data:`SCHEMA_VERSION`.
:data:`SCHEMA_SHA256` is the hash of that schema: a test fails when the models change
and the version is not bumped. Regenerate both files with
``python -m compress_gate.report.schema``.

Numbers follow the one JSON convention of :mod:`compress_gate._json`: ``null`` is an
undefined number (NaN), ``"inf"``/``"-inf"`` are infinities; a value undefined for a
stated reason is ``{"undefined": reason}``. The models hold values in that convention,
so ``report.model_dump(mode="json")`` is report.json as written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from compress_gate.config.gate import GATED_METRICS
from compress_gate.errors import InputError

__all__ = ["SCHEMA_VERSION", "SCHEMA_SHA256", "Number", "Undefined", "Report", "Estimates", "LimitResult",
           "UnitResult", "RunSection", "as_report", "schema_text", "schema_sha256", "Outcome", "PER_ATTRIBUTE"]

SCHEMA_VERSION = 5
#: SHA-256 of :func:`schema_text` for :data:`SCHEMA_VERSION`; change both together.
SCHEMA_SHA256 = "3d4163bc971eb8aff0661205d3d7c06573a44decb06f80ca6273c2cb64fe4a23"

def _one_convention(value: Any) -> Any:
    """NaN -> None and +-inf -> "inf"/"-inf" (the JSON convention), whoever builds the model."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


Number = Annotated[float | Literal["inf", "-inf"] | None, BeforeValidator(_one_convention),
                   Field(description='a number; null = undefined (NaN); "inf"/"-inf" = infinite')]
Interval = tuple[Number, Number] | None
Outcome = Literal["pass", "fail", "not_enough_evidence"]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Undefined(_Node):
    """A value that is undefined for a stated reason: ``{"undefined": "N_test(A=1, I=0) = 3 < 10"}``."""

    undefined: str


#: A number, or why it is undefined (a table entry such as BA per (attribute, group)).
ValueOrUndefined = float | Undefined


class Inputs(_Node):
    """What was judged: file names, split sizes, the attribute and identity names."""

    data: str | None = None
    teacher: list[str] = []
    students: list[str] = []
    predictions: list[str] | dict[str, str] | None = None
    task: Literal["multilabel", "multiclass"]
    n_calib: int
    n_test: int
    n_students: int
    attribute_names: list[str]
    group_names: list[str]


class UnitResult(_Node):
    """One unit of a limit (an attribute, a group, an (attribute, identity) pair...): its size,
    its compared value, the one-sided bound a pass needs, its p-value of being outside and its state.

    ``members``: test rows in the unit; ``positives``: their positive labels (where the metric
    has them); ``trials``: the rows a rate is over (its denominator; rates only). ``method``:
    ``wilson`` / ``tango`` (score), ``bootstrap`` (paired Poisson bootstrap), ``exact`` (a number
    without sampling error) or ``none``. ``outcome``: ``pass`` (bound and point inside),
    ``fail`` (outside: Holm-rejected, or the point with ``bound: point``), ``undecided``,
    ``degenerate`` (no valid bound: never passed), ``not_measured`` (too small or undefined for
    the teacher: the limit cannot pass) or ``excluded`` (left out by ``unmeasured: exclude``).
    """

    name: str
    members: int | None = None
    positives: int | None = None
    trials: int | None = None
    point: Number = None
    bound: Number = None
    p_outside: Number = None
    method: Literal["wilson", "tango", "bootstrap", "exact", "none"] = "none"
    outcome: Literal["pass", "fail", "undecided", "degenerate", "not_measured", "excluded"]
    reason: str | None = None


class LimitResult(_Node):
    """One limit judged per unit: pass, fail or not enough evidence (docs/gate.md, "Decisions").

    ``outcome`` is ``pass`` (every unit's one-sided bound at level ``alpha`` and its point
    are inside the limit), ``fail`` (Holm's step-down at ``holm_level`` = alpha / number of
    limits puts some unit outside; with ``bound: point``, some point is outside) or
    ``not_enough_evidence``; ``passed`` is ``outcome == "pass"``. ``unit``, ``observed``,
    ``gated`` and ``ci`` describe the deciding unit (a rejected one for a fail, else the one
    whose bound is worst): its point, its bound and its two one-sided bounds. ``n_needed``
    is, for an undecided limit, the test rows that would decide it with probability ``power``
    (docs/gate.md, "Decisions"). ``units`` lists every unit with its n.
    """

    name: str
    metric: str
    change: Literal["absolute", "relative"] | None = None
    observed: Number
    ci: Interval = None
    bound: Literal["point", "upper", "lower"]
    gated: Number
    limit: float
    direction: Literal["max", "min"]
    passed: bool
    outcome: Outcome
    n_needed: int | None = None
    power: float | None = None
    alpha: float | None = None
    holm_level: float | None = None
    reason: str
    unit: str | None = None
    excluded: list[str] = []
    units: list[UnitResult] = []


#: The per-attribute numbers of report.json's ``per_attribute`` tables: every gateable
#: metric measured per attribute (from the registry), then label interrelation R².
PER_ATTRIBUTE: tuple[str, ...] = tuple(name for name, spec in GATED_METRICS.items()
                                       if spec.unit == "attribute" and spec.source == "member")
AttributeMetrics = create_model(
    "AttributeMetrics", __base__=_Node, __doc__="Per-attribute numbers of one model (a population: means over its members).",
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


class EngineCheck(BaseModel):
    """Another engine against the deployment engine; further keys of the check are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)
    engine: str
    label_agreement: Number = None
    max_score_difference: Number = None


class Engines(_Node):
    deployment: str
    agreement: list[EngineCheck] = []


class RunSummary(_Node):
    """The run's headline numbers (see :mod:`compress_gate.pipeline.summary`)."""

    verdict: Literal["pass", "fail"]
    outcome: Outcome
    teacher_accuracy: Number
    student_accuracy: Number
    student_accuracy_mitigated: Number
    overall_sparsity: Number
    quantized: bool | None
    distilled: bool | None
    cev: Number
    sde: Number
    cev_mitigated: Number
    sde_mitigated: Number
    worst_ba_increase: Number
    worst_ba_increase_mitigated: Number
    speedup: dict[str, float]
    limits_passed: int
    limits_total: int
    limits_failed: list[str]
    limits_undecided: list[str] = []
    scope: str = ""


class RunSection(_Node):
    """What ``compress-gate run`` adds: the recipe, stage times, compression and export facts.

    Absent (null) in a report of ``compress-gate gate``, which judges predictions made elsewhere.
    """

    recipe: str
    recipe_hash: str
    seed: int
    compress_gate_version: str
    deployment_engine: str
    created: str | None = None
    teacher: dict[str, Any] | None = None
    stage_seconds: dict[str, float]
    total_seconds: float | None = None
    stage_cpu_seconds: dict[str, float] = {}
    compression: dict[str, Any]
    export: dict[str, Any] = {}
    summary: RunSummary | None = None
    intended_use: str | None = None
    out_of_scope: str | None = None


class Report(_Node):
    """report.json: the gate's verdict and every number behind it."""

    schema_version: Literal[5] = Field(description="the version of this schema")
    verdict: Literal["pass", "fail"] = Field(description="pass: release; fail: refused (see outcome)")
    outcome: Outcome = Field(description="pass; fail: a limit failed; not_enough_evidence: none failed, "
                                         "one or more undecided")
    created: str
    inputs: Inputs
    config: dict[str, Any] = Field(description="the gate section as validated (GateConfig)")
    judged: Literal["raw", "thresholds", "catalogue"] = Field(description="the predictions the limits judged "
                                                                          "(gate.judge)")
    scope: str = Field(description="which inputs the verdict holds for, in one sentence")
    limits: list[LimitResult]
    no_limits: bool = False
    note: str | None = None
    metrics: Metrics
    mitigation: MitigationSection | None = None
    engines: Engines | None = None
    benchmarks: dict[str, Any] | None = Field(default=None, description="compress_gate.engines.benchmark_models "
                                                                        "output, when measured")
    run: RunSection | None = None
    estimates: Estimates = Field(description="which numbers have intervals, which are point values only, "
                                             "which were not computed (only what a limit gates is resampled)")
    fairgrape: FairGRAPESection | None = Field(default=None, description="FairGRAPE's Table 1, AP per group and "
                                               "PIE; null when the data has no identity column or more "
                                               "than 64 joint groups")

    @property
    def passed(self) -> bool:
        """Whether the gate passed: ``outcome == "pass"``.

        One decision, said three ways for three readers: ``outcome`` is the decision (``pass``,
        ``fail``, ``not_enough_evidence``), ``verdict`` its release consequence (``pass`` only when
        the outcome is ``pass``) and this its bool; the gate derives the other two from ``outcome``
        (a report.json that contradicts itself is refused by :mod:`compress_gate.report.rerender`).
        """
        return self.outcome == "pass"

    def to_json(self) -> dict[str, Any]:
        """report.json's content as plain JSON types."""
        return self.model_dump(mode="json")

    def with_run(self, run: RunSection) -> Report:
        """A new report with the run's section (this one is not changed)."""
        return self.model_copy(update={"run": run})


def as_report(report: Report | Mapping[str, Any], *, source: str = "report") -> Report:
    """``report`` as a :class:`Report`; a mapping (e.g. a loaded report.json) is validated.

    Raises
    ------
    InputError
        The mapping does not follow the schema (the first problems are named by key path).
    """
    if isinstance(report, Report):
        return report
    try:
        return Report.model_validate(report)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:5])
        raise InputError(f"{source}: not a report.json of schema version {SCHEMA_VERSION} ({problems}). "
                         "Rewrite it with this version of compress-gate.") from err


def schema_text() -> str:
    """The JSON Schema of report.json, as written to report.schema.json (sorted keys, 2-space indent)."""
    schema = _without_defaults(Report.model_json_schema())
    schema["$id"] = f"https://compress-gate/report.schema.v{SCHEMA_VERSION}.json"
    schema["title"] = f"compress-gate report.json, schema version {SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _without_defaults(node: Any) -> Any:
    """``node`` in one text whichever pydantic wrote it: without ``"additionalProperties": true``
    (JSON Schema's default, written out by some releases and not others), without an
    ``enum`` that only repeats the ``const`` beside it (pydantic < 2.8 writes both), and with a
    ``$ref`` that has siblings (a field's description) written beside them, not wrapped in a
    one-element ``allOf`` (pydantic < 2.9 wraps it)."""
    if isinstance(node, dict):
        wrapped = node.get("allOf")
        if isinstance(wrapped, list) and len(wrapped) == 1 and set(wrapped[0]) == {"$ref"}:
            node = {**{k: v for k, v in node.items() if k != "allOf"}, "$ref": wrapped[0]["$ref"]}
        return {k: _without_defaults(v) for k, v in node.items()
                if not (k == "additionalProperties" and v is True)
                and not (k == "enum" and "const" in node and v == [node["const"]])}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def schema_sha256() -> str:
    """SHA-256 of :func:`schema_text`."""
    return hashlib.sha256(schema_text().encode("utf-8")).hexdigest()


SCHEMA_FILES = (Path(__file__).with_name("report.schema.json"),
                Path(__file__).parents[2] / "docs" / "report.schema.json")


if __name__ == "__main__":  # regenerate the shipped schema files
    for target in SCHEMA_FILES:
        target.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {target} (sha256 {schema_sha256()})")
