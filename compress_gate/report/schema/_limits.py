"""The report's inputs and its limits: what was judged, and each limit judged per unit."""

from __future__ import annotations

from typing import Literal

from compress_gate.report.schema._base import Interval, Number, Outcome, _Node


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
