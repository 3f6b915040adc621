"""FairGRAPE's numbers in the gate (Lin et al., ECCV 2022): measures, limits' inputs, report section.

Joint groups are the membership patterns over every ``group__*`` column of the test data
(:func:`compress_gate.metrics.joint_group_rates`), e.g. ``male & not young``: FairGRAPE's
gender × race when the data has those two columns. Units named ``joint group`` are these
groups (the row ``all`` is not a unit: overall accuracy is the ``accuracy`` metric).

Every number is finished from merged statistics (:mod:`compress_gate.gate._stats`), so it
does not depend on how the data is sharded:

- *Member* measures (:data:`FAIRGRAPE_MEMBER_METRICS`, joined into ``MEMBER_METRICS``):
  group accuracy and pooled group FPR/FNR from the additive ``joint_groups`` count family;
  group AP (mean AP over attributes within the group), mean AP and Std(AP) over groups from
  the ``rows`` family (each test row's id hash, labels, identity columns and scores, sorted
  by id hash when finished and resampled with Poisson weights regenerated from the hashes).
  A population's value is the mean over its members.
- *Teacher-pair* measures (:data:`PAIR_METRICS`, source ``teacher_pair``): Std(ΔAcc) and
  Std(ΔAP) from the population-mean group values against the teacher's, and PIE share per
  group and the PIE gap from the PIE counts of the teacher's modal labels against the
  population's (ties broken per sample, keyed by the gate's seed and the id hash). The
  resampled values use the teacher's resamples (paired).

They are measurable when the data has identity columns forming at most
:data:`MAX_JOINT_GROUPS` joint groups (:func:`not_measurable`); otherwise their limits fail
closed with the reason and the report has no ``fairgrape`` section.

Cost: the joint-group and PIE counts are count tables, cheap for the point estimate; like
every number of the gate they are resampled only when a limit gates them (the report's
section gives point values otherwise). Per-group AP sorts each group's scores: about
0.3 s per model at n = 20,000, K = 40 for the point value, about 4.5 s of CPU per 100
resamples and model, and O(n) memory in one process, so it is computed at all only when a
limit gates an AP metric (:data:`AP_METRICS`); otherwise every AP value of the report is
null and ``ap_undefined_reason`` says why (:data:`AP_NOT_COMPUTED`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS
from compress_gate.gate._limits import UnitValues, finite_interval

if TYPE_CHECKING:
    from compress_gate.gate._bootstrap import Resamples
    from compress_gate.gate._measures import PopulationMetrics

__all__ = ["FAIRGRAPE_MEMBER_METRICS", "PAIR_METRICS", "AP_METRICS", "AP_NOT_COMPUTED", "PIE_METRICS",
           "FAIRGRAPE_METRICS", "MAX_JOINT_GROUPS", "not_measurable", "joint_group_names", "resampled",
           "pair_measured", "undefined_reason", "fairgrape_section"]

#: Metrics that need per-group AP (sorted scores, not additive): computed only when limited.
AP_METRICS = frozenset({"group_ap", "ap_mean", "ap_std", "ap_change_std"})
#: Metrics finished from the PIE counts (resampled only when limited).
PIE_METRICS = frozenset({"pie_share", "pie_gap"})
#: Most joint groups the gate measures: FairGRAPE's are a few (gender × race: 2 × 7 = 14); with
#: many identity columns the patterns multiply (2**G) and the groups become too small to compare.
MAX_JOINT_GROUPS = 64


def not_measurable(group_names: tuple[str, ...], patterns: np.ndarray) -> str:
    """Why FairGRAPE's metrics cannot be measured ("" when they can): no identity column, or
    the test rows' distinct membership ``patterns`` (J, G) number more than :data:`MAX_JOINT_GROUPS`."""
    if not group_names:
        return ("the eval data has no identity group column (`group__<name>`), so there is no joint group to "
                "measure; add the group columns to data.npz")
    if len(patterns) > MAX_JOINT_GROUPS:
        return (f"the {len(group_names)} identity columns {list(group_names)} form {len(patterns)} joint "
                f"groups, more than the {MAX_JOINT_GROUPS} the gate measures; judge FairGRAPE's metrics on a "
                "few columns (e.g. gender and race) in a data.npz of their own")
    return ""


def joint_group_names(m: PopulationMetrics) -> tuple[str, ...]:
    """The joint groups of the test rows, member-first by column; () when not counted."""
    table = m.stats.tables.get(("point", "teacher", 0, "joint_groups"))
    return () if table is None else table.names[1:]


def _rates(m: PopulationMetrics, tables: dict[str, Any]) -> metrics.JointGroupTable:
    return metrics.joint_group_rates_from_counts(tables["joint_groups"], task=m.layout.task)


Finish = Callable[["PopulationMetrics", "dict[str, Any]"], np.ndarray]
#: metric -> (count families, finish(measurer, tables) -> values per joint group or model on the
#: last axis); ``compress_gate.gate._measures`` makes each a ``CountMetric``. The row ``all`` is dropped.
FAIRGRAPE_MEMBER_METRICS: dict[str, tuple[tuple[str, ...], Finish]] = {
    "group_accuracy": (("joint_groups",), lambda m, t: _rates(m, t).accuracy[..., 1:]),
    "group_fpr": (("joint_groups",), lambda m, t: _rates(m, t).pooled_fpr[..., 1:]),
    "group_fnr": (("joint_groups",), lambda m, t: _rates(m, t).pooled_fnr[..., 1:]),
    "group_ap": (("rows",), lambda m, t: t["rows"].per_group[..., 1:]),
    "ap_mean": (("rows",), lambda m, t: np.asarray(t["rows"].mean, dtype=np.float64)[..., None]),
    "ap_std": (("rows",), lambda m, t: np.asarray(t["rows"].std, dtype=np.float64)[..., None]),
}
#: Every FairGRAPE metric (member and teacher-pair).
FAIRGRAPE_METRICS = frozenset(FAIRGRAPE_MEMBER_METRICS) | frozenset(
    {"acc_change_std", "ap_change_std", "pie_share", "pie_gap"})


def _pie(m: PopulationMetrics, key: str, resampled: bool) -> metrics.PIEShares:
    return metrics.pie_shares_from_counts(m.stats.tables["pie", "boot" if resampled else "point", m.key(key)])


def _change_std(member_metric: str) -> Callable[[PopulationMetrics, str, bool], np.ndarray]:
    """Std over joint groups of (population ``key`` − teacher) of a per-group member metric."""
    def measure(m: PopulationMetrics, key: str, resampled: bool) -> np.ndarray:
        spread = metrics.group_change_std(m.values("teacher", member_metric, resampled),
                                          m.values(key, member_metric, resampled))
        return np.asarray(spread, dtype=np.float64)[..., None]
    return measure


PairMetric = Callable[["PopulationMetrics", str, bool], np.ndarray]
#: metric -> (measurer, population key, resampled) -> values per unit of the population against
#: the teacher: (U,), or (B, U) over the resamples. One entry per ``teacher_pair`` metric.
PAIR_METRICS: dict[str, PairMetric] = {
    "acc_change_std": _change_std("group_accuracy"),
    "ap_change_std": _change_std("group_ap"),
    "pie_share": lambda m, key, r: np.asarray(_pie(m, key, r).share, dtype=np.float64)[..., 1:],
    "pie_gap": lambda m, key, r: np.asarray(_pie(m, key, r).gap, dtype=np.float64)[..., None],
}


def resampled(limited: set[str] | list[str]) -> tuple[list[str], list[str]]:
    """(member metrics, teacher-pair metrics) of FairGRAPE the bootstrap measures: the
    ``limited`` ones (every other number of the section is a point value)."""
    limited = set(limited) & FAIRGRAPE_METRICS
    members = {m for m in limited if GATED_METRICS[m].source == "member"}
    pairs = {m for m in limited if GATED_METRICS[m].source == "teacher_pair"}
    if limited & AP_METRICS:     # one AP computation per member serves all four
        members |= {"group_ap", "ap_mean", "ap_std"}
        pairs.add("ap_change_std")
    if "acc_change_std" in pairs:     # from the teacher's and the population's group accuracy
        members.add("group_accuracy")
    return sorted(members), sorted(pairs)


def undefined_reason(metric: str) -> str:
    """Why a measurable FairGRAPE metric can be undefined, for a limit's fail-closed message."""
    if metric in AP_METRICS:
        return ("a joint group has no positive label of some attribute (its AP is undefined), or fewer than "
                "2 joint groups exist")
    return "a joint group has no test sample of that kind, or fewer than 2 joint groups exist"


def pair_measured(m: PopulationMetrics, key: str, metric: str, boot: Resamples | None) -> UnitValues:
    """The :class:`UnitValues` a limit on teacher-pair ``metric`` judges (no teacher column: the
    number already compares the population ``key`` with the teacher)."""
    units = joint_group_names(m) if GATED_METRICS[metric].unit == "joint_group" else ("model",)
    return UnitValues(units, PAIR_METRICS[metric](m, key, False),
                    student_boot=None if boot is None else boot.pairs[metric],
                    undefined_reason=undefined_reason(metric))


# --- report.json's ``fairgrape`` section ---------------------------------------------------------

AP_NOT_COMPUTED = ("no limit gates an AP metric: per-group AP is computed only when a limit on group_ap, ap_mean, "
                   "ap_std or ap_change_std asks for it (it is not additive: it sorts every test row's scores in one "
                   "process, O(n) memory, and costs more than the bootstrap of every other number)")


def _rows_mean(m: PopulationMetrics, key: str, read: Callable[[dict[str, Any]], np.ndarray]) -> np.ndarray:
    """Per-row values (``all`` + joint groups) of population ``key``: the mean over its members."""
    return np.mean([np.asarray(read(m.tables(key, i, rows=True)), dtype=np.float64)
                    for i in range(m.sizes[m.key(key)])], axis=0)


def fairgrape_section(m: PopulationMetrics, key: str, boot: Resamples | None, *, confidence: float,
                      population: str, with_ap: bool = True) -> dict | None:
    """report.json's ``fairgrape`` section (schema: ``FairGRAPESection``): FairGRAPE's Table 1 for the
    teacher and population ``key`` (named ``population`` in the report), AP per group, PIE.

    A joint group's value has its paired bootstrap interval only where a limit gates its metric
    (the row ``all`` has point values only); every other value is a point value.
    Without ``with_ap`` (no limit gates AP, so it was not computed) every AP value is nan,
    written null, and ``ap_undefined_reason`` says why.
    None when the joint groups were not counted (:func:`not_measurable`).
    """
    if not joint_group_names(m):
        return None

    def estimate(value: float, samples: np.ndarray | None) -> dict:
        return {"value": float(value), "ci": finite_interval(samples, confidence)}

    def column(pop: str, metric: str, row: int) -> np.ndarray | None:
        values = None if boot is None or row == 0 else boot.values.get((pop, metric))
        return None if values is None else values[:, row - 1]

    def pair(metric: str, rows: dict[str, np.ndarray], row: int) -> dict:
        return {who: estimate(rows[who][row], column(pop, metric, row))
                for who, pop in (("teacher", "teacher"), ("student", key))}

    tables = {who: (_rows_mean(m, pop, lambda t: _rates(m, t).accuracy),
                    _rows_mean(m, pop, lambda t: _rates(m, t).pooled_fpr),
                    _rows_mean(m, pop, lambda t: _rates(m, t).pooled_fnr),
                    _rows_mean(m, pop, lambda t: t["rows"].per_group) if with_ap
                    else np.full(len(joint_group_names(m)) + 1, np.nan))
              for who, pop in (("teacher", "teacher"), ("student", key))}
    teacher_table = _rates(m, m.tables("teacher", 0))
    pie = _pie(m, key, False)
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
        if metric in AP_METRICS and not with_ap:
            return {who: estimate(np.nan, None) for who in ("teacher", "student")}
        return {who: estimate(m.values(pop, metric)[0],
                              None if boot is None or (pop, metric) not in boot.values
                              else boot.values[pop, metric][:, 0])
                for who, pop in (("teacher", "teacher"), ("student", key))}

    def pair_value(metric: str) -> dict:
        if metric in AP_METRICS and not with_ap:
            return estimate(np.nan, None)
        return estimate(PAIR_METRICS[metric](m, key, False)[0],
                        None if boot is None or metric not in boot.pairs else boot.pairs[metric][:, 0])
    return {"population": population, "group_columns": list(m.layout.group_names), "rows": rows,
            "acc_change_std": pair_value("acc_change_std"), "ap_mean": model_value("ap_mean"),
            "ap_std": model_value("ap_std"), "ap_change_std": pair_value("ap_change_std"),
            "pie_gap": pair_value("pie_gap"),
            "ap_intervals": boot is not None and ("teacher", "group_ap") in boot.values,
            "ap_undefined_reason": None if with_ap else AP_NOT_COMPUTED}
