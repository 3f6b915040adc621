"""The gate's configuration: the recipe's ``gate:`` section, also a standalone limits YAML.

A limits file looks like this (the same mapping sits under ``gate:`` in a run recipe)::

    confidence: 0.95          # two-sided; each one-sided bound is at level (1 - confidence) / 2
    n_resamples: 1000         # bootstrap resamples over test rows (>= 5 / that level when a limit has an interval)
    seed: 0
    judge: thresholds         # the student with its thresholds (default); `catalogue`: with the overrides
                              # too (a closed set of known ids); `raw`: before mitigation
    mitigation:
      calibrate_thresholds: true
      override_budget: 0.02   # share of test samples the teacher-uncertainty overrides may take
    limits:
      - {metric: accuracy, change: absolute, min: -0.02}          # drop at most 2 points
      - {metric: ba, change: absolute, max: 0.02, bound: upper}   # worst BA increase
      - {metric: cev, max: 50}
      - {metric: subgroup_fnr, change: absolute, max: 0.03}
      - {metric: override_share, max: 0.05}

Each limit gates one number: the *worst* value over the metric's units (attributes,
(attribute, identity) pairs or subgroups) of

- the student's own number (``change`` absent),
- ``change: absolute``: student − teacher, or
- ``change: relative``: (student − teacher) / |teacher|, a fraction (0.10 = +10 %).
  A zero baseline is defined, not divided by: 0 when student = teacher = 0, +inf when
  the student is above a zero teacher, −inf when below. So any rise from a teacher
  rate of 0 breaks a ``max`` limit on a relative change.

A limit is a paired non-inferiority test of every unit (docs/gate.md, "Decisions"): it
passes when every unit's one-sided bound (``upper`` for ``max``, ``lower`` for ``min``)
and point are inside, fails when Holm's test over the units finds one outside (or, with
``bound: point``, when a point estimate is outside), and is undecided otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from compress_gate.config._load import read_yaml, validate
from compress_gate.errors import InputError

__all__ = ["MetricName", "MetricSpec", "GATED_METRICS", "UNIT_LABELS", "Limit", "Mitigation", "GateConfig",
           "load_gate_config", "parse_gate_config", "metric_table"]

Change = Literal["absolute", "relative"]
Bound = Literal["point", "upper", "lower"]
UnitKind = Literal["model", "attribute", "pair", "subgroup", "engine", "joint_group"]
Source = Literal["member", "balance", "overrides", "engines", "teacher_pair"]

#: How a unit kind is named in reasons and docs.
UNIT_LABELS: dict[str, str] = {"model": "model", "attribute": "attribute", "pair": "(attribute, identity) pair",
                               "subgroup": "subgroup", "engine": "engine", "joint_group": "joint group"}


class MetricSpec(NamedTuple):
    """The one declaration of a gateable metric; validation, measurement, limits, report and docs read it.

    - ``label``: how reports and docs name it (``BA``, ``CEV``).
    - ``description``: what it measures (docs, errors).
    - ``unit``: the kind of unit it has one value per; the gated number is the worst unit.
    - ``source``: how it is computed: ``member`` from each model's labels and scores on the
      test rows (``compress_gate.gate._measures.MEMBER_METRICS[name]``, resampled by the
      bootstrap); ``balance`` from the population's normalized FPR/FNR changes (CEV, SDE);
      ``overrides`` from the override list; ``engines`` from the engine comparison;
      ``teacher_pair`` from the teacher and the student population together
      (``compress_gate.gate._fairgrape_measures.PAIR_METRICS[name]``, resampled by the
      bootstrap like ``member``: FairGRAPE's Std(ΔAcc), Std(ΔAP) and PIE).
    - A *joint group* (unit ``joint_group``) is one membership pattern over every
      ``group__*`` column present in the test data, e.g. ``male & not young`` (FairGRAPE's
      gender × race); the joint groups partition the test samples.
    - ``worse``: the direction in which the number gets worse (``higher`` or ``lower``).
    - ``changes``: the ``change:`` values a limit may take (None: the student's own number).
    - ``has_interval``: whether it gets a bootstrap interval (a limit may gate its bounds).
    """

    label: str
    description: str
    unit: UnitKind
    source: Source
    worse: Literal["higher", "lower"]
    changes: tuple[Change | None, ...]
    has_interval: bool

    @property
    def units(self) -> str:
        """The unit kind as reasons name it, e.g. ``(attribute, identity) pair``."""
        return UNIT_LABELS[self.unit]


_CHANGES: tuple[Change | None, ...] = (None, "absolute", "relative")
_OWN: tuple[Change | None, ...] = (None,)
GATED_METRICS: dict[str, MetricSpec] = {
    "accuracy": MetricSpec("accuracy", "accuracy (multi-label: mean over attributes)", "model", "member", "lower",
                           _CHANGES, True),
    "fpr": MetricSpec("FPR", "false positive rate FP/(FP+TN)", "attribute", "member", "higher", _CHANGES, True),
    "fnr": MetricSpec("FNR", "false negative rate FN/(FN+TP)", "attribute", "member", "higher", _CHANGES, True),
    "tcb": MetricSpec("TCB", "train class balance: predicted/true count of the training-minority value",
                      "attribute", "member", "lower", _CHANGES, True),
    "ece": MetricSpec("ECE", "expected calibration error, 10 bins", "attribute", "member", "higher", _CHANGES, True),
    "uncertainty": MetricSpec("uncertainty", "share of scores inside (0.1, 0.9)", "attribute", "member", "higher",
                              _CHANGES, True),
    "ba": MetricSpec("BA", "bias amplification (Iofinova et al.)", "pair", "member", "higher", _CHANGES, True),
    "subgroup_error": MetricSpec("subgroup error", "error rate pooled over attributes", "subgroup", "member",
                                 "higher", _CHANGES, True),
    "subgroup_fpr": MetricSpec("subgroup FPR", "FPR pooled over attributes", "subgroup", "member", "higher",
                               _CHANGES, True),
    "subgroup_fnr": MetricSpec("subgroup FNR", "FNR pooled over attributes", "subgroup", "member", "higher",
                               _CHANGES, True),
    "cev": MetricSpec("CEV", "combined error variance of the normalized FPR/FNR changes (already a "
                      "student-vs-teacher number)", "model", "balance", "higher", _OWN, True),
    "sde": MetricSpec("SDE", "symmetric distance error of the normalized FPR/FNR changes (already a "
                      "student-vs-teacher number)", "model", "balance", "higher", _OWN, True),
    "override_share": MetricSpec("override share", "share of test samples with an override", "model", "overrides",
                                 "higher", _OWN, False),
    "engine_agreement": MetricSpec("engine agreement", "label agreement of each other engine with the deployment "
                                   "engine", "engine", "engines", "lower", _OWN, False),
    "engine_score_difference": MetricSpec("engine score difference", "largest |score difference| of each other "
                                          "engine from the deployment engine", "engine", "engines", "higher",
                                          _OWN, False),
    # FairGRAPE (Lin et al., ECCV 2022): joint groups, Std(ΔAcc), AP per group, PIE
    "group_accuracy": MetricSpec("group accuracy", "accuracy per joint group (multi-label: mean over attributes)",
                                 "joint_group", "member", "lower", _CHANGES, True),
    "group_fpr": MetricSpec("group FPR", "FPR per joint group, pooled over attributes", "joint_group", "member",
                            "higher", _CHANGES, True),
    "group_fnr": MetricSpec("group FNR", "FNR per joint group, pooled over attributes", "joint_group", "member",
                            "higher", _CHANGES, True),
    "acc_change_std": MetricSpec("Std(ΔAcc)", "sample std over joint groups of each group's accuracy change, "
                                 "student − teacher (already a student-vs-teacher number)", "model", "teacher_pair",
                                 "higher", _OWN, True),
    "group_ap": MetricSpec("group AP", "average precision per joint group: mean over attributes of the AP within "
                           "the group (scikit-learn semantics)", "joint_group", "member", "lower", _CHANGES, True),
    "ap_mean": MetricSpec("mean AP", "mean of the group APs over joint groups", "model", "member", "lower",
                          _CHANGES, True),
    "ap_std": MetricSpec("Std(AP)", "sample std of the group APs over joint groups", "model", "member", "higher",
                         _CHANGES, True),
    "ap_change_std": MetricSpec("Std(ΔAP)", "sample std over joint groups of each group's AP change, student − "
                                "teacher (already a student-vs-teacher number)", "model", "teacher_pair", "higher",
                                _OWN, True),
    "pie_share": MetricSpec("PIE share", "share of (sample, attribute) pairs the teacher gets right and the student "
                            "wrong (multi-class: of samples), per joint group", "joint_group", "teacher_pair",
                            "higher", _OWN, True),
    "pie_gap": MetricSpec("PIE gap", "largest difference of PIE share between two joint groups", "model",
                          "teacher_pair", "higher", _OWN, True),
}
MetricName = Literal[tuple(GATED_METRICS)]  # type: ignore[valid-type]


def metric_table() -> str:
    """The Markdown table of the gateable metrics in docs/gate.md, generated from :data:`GATED_METRICS`."""
    lines = ["| metric | what | units | worse when | `change` | interval |", "|---|---|---|---|---|---|"]
    for name, spec in GATED_METRICS.items():
        changes = "any" if spec.changes == _CHANGES else "absent only"
        what = spec.description.replace("|", "\\|")
        lines.append(f"| `{name}` ({spec.label}) | {what} | {spec.units} | {spec.worse} | "
                     f"{changes} | {'yes' if spec.has_interval else 'no'} |")
    return "\n".join(lines) + "\n"


class Limit(BaseModel):
    """One gate limit: the worst value of a metric, or of its change, stays within a bound.

    Examples (YAML)::

        - {metric: ba, change: absolute, max: 0.02}              # worst BA increase <= 0.02
        - {metric: fnr, change: relative, max: 0.25, bound: point}
        - {metric: accuracy, min: 0.80, name: "accuracy floor"}  # the student's own number
        - {metric: engine_agreement, min: 0.99}

    Exactly one of ``max`` (gated number <= max) or ``min`` (gated number >= min).
    A limit passes only when every unit's one-sided bound (``upper`` for ``max``, ``lower``
    for ``min``) is inside (docs/gate.md, "Decisions"). ``bound`` says what fails it: the
    default, the conservative end, fails on family-wise evidence (Holm); ``point`` fails on
    any point estimate outside. The optimistic end (``lower`` on ``max``, ``upper`` on
    ``min``) is refused. Metrics without an interval (``override_share``, ``engine_*``) take
    ``point``. ``unmeasured``: a unit that cannot be measured (too few members or positives
    for the metric, or undefined for the teacher) keeps the limit from passing
    (``undecided``, the default) or is left out and listed (``exclude``). ``name`` defaults
    to a description of the limit.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: MetricName
    change: Change | None = None
    max: float | None = Field(default=None, allow_inf_nan=False, strict=True)
    min: float | None = Field(default=None, allow_inf_nan=False, strict=True)
    bound: Bound = "point"
    unmeasured: Literal["undecided", "exclude"] = "undecided"
    name: str = Field(default="", max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        metric = data.get("metric") if isinstance(data, dict) else None
        if not isinstance(metric, str) or metric not in GATED_METRICS:   # pydantic names the bad metric
            return data
        data = dict(data)
        spec = GATED_METRICS[metric]
        if data.get("bound") is None:
            data["bound"] = ("point" if not spec.has_interval
                             else "lower" if data.get("max") is None else "upper")
        return data

    @model_validator(mode="after")
    def _check(self) -> Limit:
        spec = GATED_METRICS[self.metric]
        if (self.max is None) == (self.min is None):
            raise ValueError(f"set exactly one of `max` or `min` for metric {self.metric!r} "
                             "(max: the gated number must stay <= it; min: >= it)")
        if self.change not in spec.changes:
            allowed = ", ".join("absent" if c is None else c for c in spec.changes)
            raise ValueError(f"metric {self.metric!r} does not take `change: {self.change}`; "
                             f"allowed: {allowed}")
        if self.bound != "point" and not spec.has_interval:
            raise ValueError(f"metric {self.metric!r} has no confidence interval; use `bound: point`")
        optimistic = "upper" if self.direction == "min" else "lower"
        if self.bound == optimistic:
            conservative = "lower" if self.direction == "min" else "upper"
            raise ValueError(f"`bound: {optimistic}` on a `{self.direction}` limit gates the optimistic end of "
                             f"the interval and would pass a number whose estimate is outside the limit; use "
                             f"`bound: {conservative}` (the default) or `bound: point`")
        if not self.name:
            object.__setattr__(self, "name", self.default_name())
        return self

    @property
    def direction(self) -> Literal["max", "min"]:
        """``max``: the gated number must be <= :attr:`value`; ``min``: >= it."""
        return "max" if self.max is not None else "min"

    @property
    def value(self) -> float:
        """The limit value (``max`` or ``min``)."""
        return float(self.max if self.max is not None else self.min)  # type: ignore[arg-type]

    def default_name(self) -> str:
        """``"<metric>[ <change> change] <=|>= <value> (<bound>)"``, e.g. ``ba absolute change <= 0.02 (upper)``."""
        change = f" {self.change} change" if self.change else ""
        sign = "<=" if self.direction == "max" else ">="
        return f"{self.metric}{change} {sign} {self.value:g} ({self.bound})"


class Mitigation(BaseModel):
    """Mitigation applied to the student before it ships (Iofinova et al. §4).

    Example (YAML)::

        mitigation:
          calibrate_thresholds: true   # multi-label only: positives on calib = true positives there
          override_budget: 0.02        # in [0, 1]: share of test samples per attribute to override
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    calibrate_thresholds: bool = Field(False, strict=True)
    override_budget: float = Field(default=0.0, ge=0.0, le=1.0, strict=True)


class GateConfig(BaseModel):
    """The ``gate:`` section of a run recipe, or a standalone limits YAML (see the module doc).

    Example (YAML)::

        gate:
          confidence: 0.95
          n_resamples: 1000
          seed: 0
          judge: thresholds       # or catalogue, or raw
          mitigation: {calibrate_thresholds: false, override_budget: 0.0}
          limits:
            - {metric: ba, change: absolute, max: 0.02}

    With no limits the gate says so in its report and passes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0, strict=True)
    n_resamples: int = Field(default=1000, ge=0, le=100_000, strict=True)
    seed: int = Field(default=0, ge=0, strict=True)
    judge: Literal["thresholds", "catalogue", "raw"] = "thresholds"
    mitigation: Mitigation = Mitigation()
    limits: tuple[Limit, ...] = ()

    @field_validator("judge", mode="before")
    @classmethod
    def _renamed_judge(cls, value: Any) -> Any:
        if value == "mitigated":
            raise ValueError("`judge: mitigated` was removed: it judged the predictions with overrides, whose "
                             "labels are the judged rows' own. Use `judge: thresholds` (the default: the student "
                             "with its thresholds, for inputs the overrides do not cover) or, for a closed "
                             "catalogue of known inputs, `judge: catalogue`")
        return value

    @property
    def alpha(self) -> float:
        """The one-sided level of every bound: (1 − confidence) / 2."""
        return (1.0 - self.confidence) / 2.0

    @property
    def min_resamples(self) -> int:
        """The fewest resamples a bootstrap bound at :attr:`alpha` rests on: ⌈5/α⌉, so at least 5
        resamples lie beyond each one-sided bound (200 at confidence 0.95, 1,000 at 0.99)."""
        return math.ceil(round(5.0 / self.alpha, 9))

    @model_validator(mode="after")
    def _check(self) -> GateConfig:
        needs = [i for i, limit in enumerate(self.limits) if GATED_METRICS[limit.metric].has_interval]
        if needs and self.n_resamples < self.min_resamples:
            raise ValueError(f"n_resamples = {self.n_resamples} is too small for confidence {self.confidence:g}: "
                             f"limits[{needs[0]}] ({self.limits[needs[0]].metric}) may need a bootstrap bound at "
                             f"the one-sided level {self.alpha:g}, which needs at least {self.min_resamples} "
                             f"resamples (5 / {self.alpha:g}, so that 5 resamples lie beyond each bound). "
                             f"Set `n_resamples: {max(self.min_resamples, 1000)}`")
        names = [limit.name for limit in self.limits]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"limit names must be unique; repeated: {repeated}. Give each limit "
                             "its own `name:`")
        return self


def parse_gate_config(data: dict[str, Any], *, source: str | Path,
                      prefix: tuple[Any, ...] = ("gate",)) -> GateConfig:
    """Validate a ``gate:`` mapping (already read from YAML) into a :class:`GateConfig`."""
    return validate(GateConfig, data, source=source, prefix=prefix,
                    docs="docs/gate.md, 'Limits YAML reference'")


def load_gate_config(path: str | Path) -> GateConfig:
    """Read a limits YAML, or the ``gate:`` section of a run recipe, from ``path``.

    A file whose top level has a ``gate`` key is a recipe: its ``gate:`` section is
    read and the other sections ignored. Otherwise the whole file is the section.
    The section must set ``limits`` (``limits: []`` for a deliberate gate without
    limits): an empty or truncated file never passes as "no limits configured".

    Raises
    ------
    InputError
        Missing file (or a directory, FIFO, device), malformed YAML, a duplicated key,
        an empty document or empty ``gate:`` section, unknown keys (the valid ones are
        listed), an unknown metric (the valid ones are listed), a bad value or type.
    """
    data = read_yaml(path, what="limits file",
                     missing_hint="Check the path given to --limits (relative to the current directory).",
                     empty_hint=_EMPTY_HINT)
    if "gate" in data:
        section = data["gate"]
        if section is None:
            raise InputError(f"{path}: `gate:` is empty; a limits file that sets no limits is refused "
                             f"rather than read as a gate without limits. {_EMPTY_HINT}")
        if not isinstance(section, dict):
            raise InputError(f"{path}: `gate` must be a mapping of gate settings, got "
                             f"{type(section).__name__}. See docs/gate.md for an example.")
    else:
        section = data
    config = parse_gate_config(section, source=path, prefix=("gate",) if "gate" in data else ())
    if "limits" not in section:
        key = "gate.limits" if "gate" in data else "limits"
        raise InputError(f"{path}: `{key}` is missing; a limits file must say which limits it sets (a "
                         f"truncated or misnamed file must not pass as a gate without limits). {_EMPTY_HINT}")
    return config


_EMPTY_HINT = ("Write the limits, e.g. `limits: [{metric: ba, change: absolute, max: 0.02}]` (docs/gate.md, "
               "'Limits YAML reference'); for a deliberate gate without limits write `limits: []`.")
