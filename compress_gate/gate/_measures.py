"""Per-unit values of every gated metric, finished from merged statistics.

The formulas live in :mod:`compress_gate.metrics` (``*_from_counts``); this module only
decides which count tables (:data:`compress_gate.gate._stats.FAMILIES`) a gated metric is
finished from, over which units, and averages a population of students (rates averaged
over the population first). ``resampled`` False gives the point estimate (U,), True the
(B, U) values of the Poisson resamples, shared by teacher and students (a paired bootstrap).
FairGRAPE's member measures (:mod:`compress_gate.gate._fairgrape_measures`) join
:data:`MEMBER_METRICS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS
from compress_gate.gate._fairgrape_measures import FAIRGRAPE_MEMBER_METRICS, joint_group_names
from compress_gate.gate._stats import ROW_FAMILIES, SCORE_FAMILIES, ScoreRows, Stats
from compress_gate.metrics.poisson_bootstrap import poisson_weight_chunks

__all__ = ["Layout", "PopulationMetrics", "CountMetric", "MEMBER_METRICS"]


@dataclass(frozen=True)
class Layout:
    """The eval data's columns: task, attribute names, identity group names."""

    task: str
    attribute_names: tuple[str, ...]
    group_names: tuple[str, ...]


@dataclass
class PopulationMetrics:
    """Values of the gated metrics for the populations of merged :class:`~compress_gate.gate._stats.Stats`.

    ``sizes``: population key -> number of members; ``aliases``: a population whose
    predictions are another's (e.g. ``thresholds`` without calibration is ``raw``);
    ``seed`` and ``n_resamples``: the bootstrap's, to regenerate the Poisson weights of the
    row families. Finished values are memoized per (population, metric, resampled).
    """

    layout: Layout
    stats: Stats
    train: metrics.TrainCounts
    sizes: dict[str, int]
    aliases: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    n_resamples: int = 0
    _memo: dict = field(default_factory=dict)

    def key(self, key: str) -> str:
        """The population whose statistics ``key`` reads."""
        return self.aliases.get(key, key)

    def tables(self, key: str, member: int, resampled: bool = False, rows: bool = False) -> dict[str, Any]:
        """family -> count table of one member (score families of a student come from ``raw``).

        With ``rows``, the row family ``rows`` too, handed over finished: the member's
        per-group AP (:class:`~compress_gate.metrics.GroupAveragePrecision`), over the
        resamples when ``resampled`` (:meth:`group_ap`; costly, so only when asked)."""
        mode, key = ("boot" if resampled else "point"), self.key(key)
        out = {}
        for (m, k, i, family), table in ((k, v) for k, v in self.stats.tables.items() if len(k) == 4):
            if family in ROW_FAMILIES:
                if rows and m == "point" and i == member and k == ("teacher" if key == "teacher" else "raw"):
                    out.setdefault(family, self.group_ap(table, resampled))
            elif m == mode and i == member and (k == key or (k == "raw" and key != "teacher"
                                                              and family in SCORE_FAMILIES)):
                out.setdefault(family, table)
        return out

    def group_ap(self, rows: ScoreRows, resampled: bool = False) -> metrics.GroupAveragePrecision:
        """Per-group AP of merged score rows, in id-hash order; ``resampled``: over the
        ``n_resamples`` Poisson resamples, each row weighted by the draw keyed by (seed, its
        id hash, resample), as in the count tables, so teacher and students stay paired. The
        resamples leave the row ``all`` nan: every resampled AP number is over the joint groups."""
        memo_key = ("group_ap", id(rows), resampled)
        if memo_key not in self._memo:
            rows = rows.by_hash()
            weights = (poisson_weight_chunks(rows.id_hash, seed=self.seed, n_resamples=self.n_resamples)
                       if resampled else [None])
            parts = [metrics.group_average_precision(rows.y_true, rows.y_score, rows.groups, self.layout.group_names,
                                                     sample_weight=w, overall=not resampled) for w in weights]
            self._memo[memo_key] = metrics.GroupAveragePrecision(parts[0].names,
                                                                 np.concatenate([p.ap for p in parts]))
        return self._memo[memo_key]

    # --- units -------------------------------------------------------------------------
    def units(self, metric: str) -> tuple[str, ...]:
        """The unit labels of ``metric``'s last axis, by its declared unit kind."""
        kind, names = GATED_METRICS[metric].unit, self.layout.attribute_names
        if kind == "attribute":
            return names
        if kind == "pair":
            return tuple(f"{a}/{g}" for a in names for g in self.layout.group_names)
        if kind == "subgroup":
            return metrics.subgroup_names(self.layout.group_names)
        if kind == "joint_group":
            return joint_group_names(self)
        return ("model",)

    # --- values --------------------------------------------------------------------------
    def values(self, key: str, metric: str, resampled: bool = False) -> np.ndarray:
        """Population mean of ``metric`` per unit: shape (U,), or (B, U) when ``resampled``."""
        memo_key = (self.key(key), metric, resampled)
        if memo_key not in self._memo:
            families, finish = MEMBER_METRICS[metric]
            rows = bool(ROW_FAMILIES.intersection(families))
            per_member = [finish(self, self.tables(key, i, resampled, rows=rows))
                          for i in range(self.sizes[self.key(key)])]
            self._memo[memo_key] = np.mean(per_member, axis=0) if len(per_member) > 1 else per_member[0]
        return self._memo[memo_key]

    def bias_amplification(self, key: str, member: int, *, family: str = "confusion",
                           resampled: bool = False) -> metrics.BiasAmplification:
        """BA of one member (values (K, G) or (B, K, G), reasons, direction); ``family="uncovered"``
        measures on the test rows without an override."""
        memo_key = ("ba", self.key(key), member, family, resampled)
        if memo_key not in self._memo:
            self._memo[memo_key] = metrics.bias_amplification_from_counts(
                self.tables(key, member, resampled)[family], self.train)
        return self._memo[memo_key]

    def subgroup_table(self, key: str, member: int, resampled: bool = False) -> metrics.SubgroupTable:
        """Pooled subgroup rates (all, groups, intersections) of one member."""
        memo_key = ("subgroups", self.key(key), member, resampled)
        if memo_key not in self._memo:
            self._memo[memo_key] = metrics.subgroup_rates_from_counts(
                self.tables(key, member, resampled)["confusion"], self.layout.group_names, per_attribute=False)
        return self._memo[memo_key]

    def error_balance(self, key: str, resampled: bool = False
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(CEV, SDE, δFPR, δFNR) of population ``key`` against the teacher.

        δ = normalized change in percent of the population-averaged rates; attributes
        with a zero (or undefined) teacher rate give nan δ and are left out of CEV/SDE
        by the metric functions.
        """
        d_fpr = metrics.normalized_change(teacher=self.values("teacher", "fpr", resampled),
                                          student=self.values(key, "fpr", resampled))
        d_fnr = metrics.normalized_change(teacher=self.values("teacher", "fnr", resampled),
                                          student=self.values(key, "fnr", resampled))
        cev = metrics.combined_error_variance(d_fpr, d_fnr)
        sde = metrics.symmetric_distance_error(d_fpr, d_fnr)
        return np.asarray(cev, dtype=np.float64), np.asarray(sde, dtype=np.float64), d_fpr, d_fnr


class CountMetric(NamedTuple):
    """A gated metric of one member: the count ``families`` it needs (counted per shard, for the
    point estimate and every resample) and ``finish(measurer, tables)`` -> values per unit on
    the last axis ((U,), or (B, U) for resampled tables)."""

    families: tuple[str, ...]
    finish: Callable[[PopulationMetrics, dict[str, Any]], np.ndarray]


def _ba(m: PopulationMetrics, tables: dict[str, Any]) -> np.ndarray:
    values = metrics.bias_amplification_from_counts(tables["confusion"], m.train).values
    return values.reshape(values.shape[:-2] + (-1,))


def _subgroup(rate: str) -> CountMetric:
    return CountMetric(("confusion",), lambda m, t: getattr(metrics.subgroup_rates_from_counts(
        t["confusion"], m.layout.group_names, per_attribute=False), f"pooled_{rate}"))


#: metric name -> its :class:`CountMetric`. One entry per metric whose
#: :class:`~compress_gate.config.gate.MetricSpec` source is ``member``.
MEMBER_METRICS: dict[str, CountMetric] = {
    "accuracy": CountMetric(("confusion",), lambda m, t: np.asarray(
        metrics.accuracy_from_counts(t["confusion"], task=m.layout.task), dtype=np.float64)[..., None]),
    "fpr": CountMetric(("confusion",), lambda m, t: metrics.false_positive_rate_from_counts(t["confusion"])),
    "fnr": CountMetric(("confusion",), lambda m, t: metrics.false_negative_rate_from_counts(t["confusion"])),
    "tcb": CountMetric(("confusion",), lambda m, t: metrics.train_class_balance_from_counts(
        t["confusion"], train_mean=m.train.mean)),
    "ece": CountMetric(("calibration",), lambda m, t: metrics.expected_calibration_error_from_counts(t["calibration"])),
    "uncertainty": CountMetric(("uncertainty",), lambda m, t: metrics.uncertainty_from_counts(t["uncertainty"])),
    "ba": CountMetric(("confusion",), _ba),
    "subgroup_error": _subgroup("error"),
    "subgroup_fpr": _subgroup("fpr"),
    "subgroup_fnr": _subgroup("fnr"),
    **{name: CountMetric(*entry) for name, entry in FAIRGRAPE_MEMBER_METRICS.items()},
}
