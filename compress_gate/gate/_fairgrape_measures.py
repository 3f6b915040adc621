"""FairGRAPE's numbers in the gate (Lin et al., ECCV 2022): measures, limits' inputs, report section.

Joint groups are the membership patterns over every ``group__*`` column of the test data
(:func:`compress_gate.metrics.joint_group_rates`), e.g. ``male & not young``: FairGRAPE's
gender × race when the data has those two columns. Units named ``joint group`` are these
groups (the row ``all`` is not a unit: overall accuracy is the ``accuracy`` metric).

- *Member* measures (:data:`FAIRGRAPE_MEMBER_MEASURES`, merged into ``MEMBER_MEASURES``): one
  model's group accuracy, pooled group FPR/FNR, group AP (mean AP over attributes within the
  group), mean AP and Std(AP) over groups. A population's value is the mean over its members.
- *Teacher-pair* measures (:data:`PAIR_MEASURES`, source ``teacher_pair``): Std(ΔAcc) and
  Std(ΔAP) from the population-mean group values against the teacher's, and PIE share per
  group and the PIE gap from the teacher's labels against the population's modal labels
  (ties broken with the gate's seed). Given (B, n) weights they return (B, U): the same
  weight matrix as the teacher's, so the interval is paired.

Cost: the joint-group counts and PIE are count tables (cheap; resampled for every run so
the report's ``fairgrape`` section has intervals). Per-group AP is not additive (it sorts
each group's scores) and costs about 15.6 s per 100 resamples and model at n = 20,000,
K = 40: it is resampled only when a limit gates an AP metric (:data:`AP_METRICS`); otherwise the report
gives its point values without intervals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS
from compress_gate.gate._limits import Measured

if TYPE_CHECKING:
    from compress_gate.gate._bootstrap import Resamples
    from compress_gate.gate._measures import Measurer, Member, TestSet

__all__ = ["FAIRGRAPE_MEMBER_MEASURES", "PAIR_MEASURES", "AP_METRICS", "MAX_JOINT_GROUPS", "joint_group_names",
           "resampled",
           "pair_measured", "undefined_reason", "fairgrape_section"]

#: Metrics that need per-group AP (sorted scores, not additive): resampled only when limited.
AP_METRICS = frozenset({"group_ap", "ap_mean", "ap_std", "ap_change_std"})
#: Cheap metrics resampled for every run, so the report's table has intervals.
_ALWAYS_MEMBER = ("group_accuracy", "group_fpr", "group_fnr")
_ALWAYS_PAIR = ("acc_change_std", "pie_share", "pie_gap")
#: Most joint groups the gate measures: FairGRAPE's are a few (gender × race: 2 × 7 = 14); with
#: many identity columns the patterns multiply (2**G) and the groups become too small to compare.
MAX_JOINT_GROUPS = 64


_LAST_CHECKED: list[tuple[np.ndarray, str]] = []     # (groups array, reason) of the last test set checked


def _not_measurable(test: TestSet) -> str:
    """Why the test rows have no joint groups to measure ("" when they have). Kept for the
    last groups array checked (by identity): every measure call asks."""
    if _LAST_CHECKED and _LAST_CHECKED[0][0] is test.groups:
        return _LAST_CHECKED[0][1]
    reason = ""
    if test.groups.shape[1] == 0:
        reason = ("the eval data has no identity group column (`group__<name>`), so there is no joint group to "
                  "measure; add the group columns to data.npz")
    elif (n_joint := len(np.unique(test.groups, axis=0))) > MAX_JOINT_GROUPS:
        reason = (f"the {test.groups.shape[1]} identity columns {list(test.group_names)} form {n_joint} joint "
                  f"groups, more than the {MAX_JOINT_GROUPS} the gate measures; judge FairGRAPE's metrics on a "
                  "few columns (e.g. gender and race) in a data.npz of their own")
    _LAST_CHECKED[:] = [(test.groups, reason)]
    return reason


def _has_groups(test: TestSet) -> bool:
    return not _not_measurable(test)


def _lead(w: np.ndarray | None) -> tuple[int, ...]:
    return () if w is None or w.ndim == 1 else (w.shape[0],)


def joint_group_names(test: TestSet) -> tuple[str, ...]:
    """The joint groups of the test rows, member-first by column; () without group columns."""
    if not _has_groups(test):
        return ()
    counts = metrics.joint_group_counts(test.y_true, test.y_true, test.groups, test.group_names, task=test.task)
    return counts.names[1:]


def _memoized(m: Measurer, w: np.ndarray | None, key: tuple, compute: Callable[[], object]) -> object:
    """``compute()`` kept in the measurer's memo: for good with ``w`` None, else until the next
    resample chunk (:meth:`Measurer.start_chunk` clears it)."""
    memo = m._point if w is None else m._chunk
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _table(m: Measurer, member: Member, w: np.ndarray | None) -> metrics.JointGroupTable:
    t = m.test
    return _memoized(m, w, ("joint_groups", id(member)), lambda: metrics.joint_group_rates(  # type: ignore[return-value]
        t.y_true, member.y_pred, t.groups, t.group_names, task=t.task, sample_weight=w))


def _ap(m: Measurer, member: Member, w: np.ndarray | None) -> metrics.GroupAveragePrecision:
    t = m.test
    return _memoized(m, w, ("group_ap", id(member)), lambda: metrics.group_average_precision(  # type: ignore[return-value]
        t.y_true, member.y_score, t.groups, t.group_names, sample_weight=w))


def _per_group(read: Callable[[Measurer, Member, np.ndarray | None], np.ndarray]
               ) -> Callable[[Measurer, Member, np.ndarray | None], np.ndarray]:
    """A member measure over the joint groups (the row ``all`` dropped); (..., 0) without groups."""
    def measure(m: Measurer, member: Member, w: np.ndarray | None) -> np.ndarray:
        if not _has_groups(m.test):
            return np.empty(_lead(w) + (0,))
        return np.asarray(read(m, member, w), dtype=np.float64)[..., 1:]
    return measure


def _per_model(read: Callable[[Measurer, Member, np.ndarray | None], object]
               ) -> Callable[[Measurer, Member, np.ndarray | None], np.ndarray]:
    """A member measure with one unit (``model``); ``nan`` without groups."""
    def measure(m: Measurer, member: Member, w: np.ndarray | None) -> np.ndarray:
        if not _has_groups(m.test):
            return np.full(_lead(w) + (1,), np.nan)
        return np.asarray(read(m, member, w), dtype=np.float64)[..., None]
    return measure


Measure = Callable[["Measurer", "Member", "np.ndarray | None"], np.ndarray]
#: metric -> its per-member measure (units on the last axis; (B, U) with (B, n) weights).
FAIRGRAPE_MEMBER_MEASURES: dict[str, Measure] = {
    "group_accuracy": _per_group(lambda m, member, w: _table(m, member, w).accuracy),
    "group_fpr": _per_group(lambda m, member, w: _table(m, member, w).pooled_fpr),
    "group_fnr": _per_group(lambda m, member, w: _table(m, member, w).pooled_fnr),
    "group_ap": _per_group(lambda m, member, w: _ap(m, member, w).per_group),
    "ap_mean": _per_model(lambda m, member, w: _ap(m, member, w).mean),
    "ap_std": _per_model(lambda m, member, w: _ap(m, member, w).std),
}


def _pie(m: Measurer, key: str, w: np.ndarray | None, seed: int) -> metrics.PIEShares:
    t = m.test
    teacher = np.stack([member.y_pred for member in m.populations["teacher"]])
    student = np.stack([member.y_pred for member in m.populations[key]])
    return _memoized(m, w, ("pie", key, seed), lambda: metrics.pruning_identified_exemplars(  # type: ignore[return-value]
        t.y_true, teacher, student, t.groups, t.group_names, task=t.task, seed=seed, sample_weight=w))


def _change_std(member_metric: str) -> Callable[[Measurer, str, np.ndarray | None, int], np.ndarray]:
    """Std over joint groups of (population ``key`` − teacher) of a per-group member metric."""
    def measure(m: Measurer, key: str, w: np.ndarray | None, seed: int) -> np.ndarray:
        if not _has_groups(m.test):
            return np.full(_lead(w) + (1,), np.nan)
        spread = metrics.group_change_std(m.values("teacher", member_metric, w), m.values(key, member_metric, w))
        return np.asarray(spread, dtype=np.float64)[..., None]
    return measure


def _pie_share(m: Measurer, key: str, w: np.ndarray | None, seed: int) -> np.ndarray:
    if not _has_groups(m.test):
        return np.empty(_lead(w) + (0,))
    return np.asarray(_pie(m, key, w, seed).share, dtype=np.float64)[..., 1:]


def _pie_gap(m: Measurer, key: str, w: np.ndarray | None, seed: int) -> np.ndarray:
    if not _has_groups(m.test):
        return np.full(_lead(w) + (1,), np.nan)
    return np.asarray(_pie(m, key, w, seed).gap, dtype=np.float64)[..., None]


PairMeasure = Callable[["Measurer", str, "np.ndarray | None", int], np.ndarray]
#: metric -> (measurer, population key, weights, seed) -> values per unit of the population
#: against the teacher: (U,), or (B, U) with (B, n) weights. One entry per ``teacher_pair`` metric.
PAIR_MEASURES: dict[str, PairMeasure] = {
    "acc_change_std": _change_std("group_accuracy"),
    "ap_change_std": _change_std("group_ap"),
    "pie_share": _pie_share,
    "pie_gap": _pie_gap,
}


def resampled(limited: set[str] | list[str]) -> tuple[list[str], list[str]]:
    """(member metrics, teacher-pair metrics) the bootstrap measures: the ``limited`` ones of
    each source, plus the cheap FairGRAPE ones the report shows with intervals. AP metrics
    only when limited (see the module doc)."""
    limited = set(limited)
    members = {m for m in limited if GATED_METRICS[m].source == "member"} | set(_ALWAYS_MEMBER)
    pairs = {m for m in limited if GATED_METRICS[m].source == "teacher_pair"} | set(_ALWAYS_PAIR)
    if limited & AP_METRICS:     # one AP computation per member and chunk serves all four
        members |= {"group_ap", "ap_mean", "ap_std"}
        pairs.add("ap_change_std")
    return sorted(members), sorted(pairs)


def undefined_reason(metric: str, test: TestSet) -> str:
    """Why a FairGRAPE metric can be undefined, for a limit's fail-closed message ("" for others)."""
    if metric not in FAIRGRAPE_MEMBER_MEASURES and metric not in PAIR_MEASURES:
        return ""
    if _not_measurable(test):
        return _not_measurable(test)
    if metric in AP_METRICS:
        return ("a joint group has no positive label of some attribute (its AP is undefined), or fewer than "
                "2 joint groups exist")
    return "a joint group has no test sample of that kind, or fewer than 2 joint groups exist"


def pair_measured(m: Measurer, key: str, metric: str, boot: Resamples | None, seed: int) -> Measured:
    """The :class:`Measured` a limit on teacher-pair ``metric`` judges (no teacher column: the
    number already compares the population ``key`` with the teacher)."""
    units = joint_group_names(m.test) if GATED_METRICS[metric].unit == "joint_group" else ("model",)
    return Measured(units, PAIR_MEASURES[metric](m, key, None, seed),
                    student_boot=None if boot is None else boot.pairs[metric],
                    undefined_reason=undefined_reason(metric, m.test))


# --- report.json's ``fairgrape`` section ---------------------------------------------------------

def _interval(samples: np.ndarray | None, confidence: float) -> list[float] | None:
    if samples is None:
        return None
    usable = samples[np.isfinite(samples)]
    if usable.size == 0:
        return None
    lo, hi = metrics.percentile_interval(usable, confidence=confidence)
    return [float(lo), float(hi)]


def _rows_mean(m: Measurer, key: str, read: Callable[[Member], np.ndarray]) -> np.ndarray:
    """Per-row values (``all`` + joint groups) of population ``key``: the mean over its members."""
    return np.mean([np.asarray(read(member), dtype=np.float64) for member in m.populations[key]], axis=0)


def fairgrape_section(m: Measurer, key: str, boot: Resamples | None, *, confidence: float, seed: int,
                      population: str) -> dict | None:
    """report.json's ``fairgrape`` section (schema: ``FairGRAPESection``): FairGRAPE's Table 1 for the
    teacher and population ``key`` (named ``population`` in the report), AP per group, PIE.

    Each joint group's value has its paired bootstrap interval where the bootstrap measured
    it (the row ``all`` has point values only); AP intervals only when a limit gated AP.
    None when the data has no identity column or more than :data:`MAX_JOINT_GROUPS` joint groups.
    """
    if not _has_groups(m.test):
        return None

    def estimate(value: float, samples: np.ndarray | None) -> dict:
        return {"value": float(value), "ci": _interval(samples, confidence)}

    def column(pop: str, metric: str, row: int) -> np.ndarray | None:
        values = None if boot is None or row == 0 else boot.values.get((pop, metric))
        return None if values is None else values[:, row - 1]

    def pair(metric: str, rows: dict[str, np.ndarray], row: int) -> dict:
        return {who: estimate(rows[who][row], column(pop, metric, row))
                for who, pop in (("teacher", "teacher"), ("student", key))}

    tables = {who: (_rows_mean(m, pop, lambda member: _table(m, member, None).accuracy),
                    _rows_mean(m, pop, lambda member: _table(m, member, None).pooled_fpr),
                    _rows_mean(m, pop, lambda member: _table(m, member, None).pooled_fnr),
                    _rows_mean(m, pop, lambda member: _ap(m, member, None).per_group))
              for who, pop in (("teacher", "teacher"), ("student", key))}
    teacher_table = _table(m, m.populations["teacher"][0], None)
    pie = _pie(m, key, None, seed)
    pie_boot = None if boot is None else boot.pairs.get("pie_share")
    with np.errstate(divide="ignore", invalid="ignore"):
        ap_percent = 100.0 * tables["student"][3] / tables["teacher"][3]
    rows = []
    for r, name in enumerate(teacher_table.names):
        accuracy, fpr, fnr, ap = ({who: tables[who][i] for who in tables} for i in range(4))
        rows.append({"name": name, "size": int(round(float(teacher_table.sizes[r]))),
                     "accuracy": pair("group_accuracy", accuracy, r), "fpr": pair("group_fpr", fpr, r),
                     "fnr": pair("group_fnr", fnr, r), "ap": pair("group_ap", ap, r),
                     "ap_percent_of_teacher": float(ap_percent[r]),
                     "pie_share": estimate(pie.share[r], None if pie_boot is None or r == 0 else pie_boot[:, r - 1])})

    def model_value(metric: str) -> dict:
        return {who: estimate(m.values(pop, metric, None)[0],
                              None if boot is None or (pop, metric) not in boot.values
                              else boot.values[pop, metric][:, 0])
                for who, pop in (("teacher", "teacher"), ("student", key))}

    def pair_value(metric: str) -> dict:
        return estimate(PAIR_MEASURES[metric](m, key, None, seed)[0],
                        None if boot is None or metric not in boot.pairs else boot.pairs[metric][:, 0])
    return {"population": population, "group_columns": list(m.test.group_names), "rows": rows,
            "acc_change_std": pair_value("acc_change_std"), "ap_mean": model_value("ap_mean"),
            "ap_std": model_value("ap_std"), "ap_change_std": pair_value("ap_change_std"),
            "pie_gap": pair_value("pie_gap"),
            "ap_intervals": boot is not None and ("teacher", "group_ap") in boot.values}
