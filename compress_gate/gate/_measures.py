"""Per-unit values of every gated metric for one model or a population, weighted or not.

The formulas live in :mod:`compress_gate.metrics`; this module only decides which
function measures a gated metric, over which units, and averages a population of
students (rates averaged over the population first). ``weights`` is None (the point
estimate) or a (B, n) matrix of bootstrap counts, shared by teacher and students so
their difference is paired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from compress_gate import metrics
from compress_gate.config.gate import GATED_METRICS
from compress_gate.gate._fairgrape_measures import FAIRGRAPE_MEMBER_MEASURES, joint_group_names

__all__ = ["TestSet", "Member", "Measurer", "MEMBER_MEASURES"]


@dataclass(frozen=True)
class TestSet:
    """Labels and groups of the test rows, plus the training labels BA and TCB take direction from."""

    y_true: np.ndarray            # (n, K) uint8
    groups: np.ndarray            # (n, G) bool
    group_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    task: str
    train_labels: np.ndarray      # (n_train, K) uint8
    train_groups: np.ndarray      # (n_train, G) bool

    @property
    def train_mean(self) -> np.ndarray:
        """(K,) share of positive training labels per attribute."""
        return self.train_labels.mean(axis=0)


@dataclass(frozen=True)
class Member:
    """One model's labels and scores on the test rows."""

    y_pred: np.ndarray            # (n, K) uint8
    y_score: np.ndarray           # (n, K) float32


@dataclass
class Measurer:
    """Values of the gated metrics for populations of :class:`Member` on one :class:`TestSet`.

    Results are memoized per (population key, metric): the point estimates for good,
    the weighted ones until :meth:`start_chunk`, so a resample chunk computes each
    rate once however many limits use it.
    """

    test: TestSet
    populations: dict[str, list[Member]]
    _point: dict = field(default_factory=dict)
    _chunk: dict = field(default_factory=dict)

    def start_chunk(self) -> None:
        """Forget the weighted values of the previous resample chunk."""
        self._chunk.clear()

    # --- units -------------------------------------------------------------------------
    def units(self, metric: str) -> tuple[str, ...]:
        """The unit labels of ``metric``'s last axis, by its declared unit kind."""
        kind, names = GATED_METRICS[metric].unit, self.test.attribute_names
        if kind == "attribute":
            return names
        if kind == "pair":
            return tuple(f"{a}/{g}" for a in names for g in self.test.group_names)
        if kind == "subgroup":
            return tuple(self.subgroup_table(None).names)
        if kind == "joint_group":
            return joint_group_names(self.test)
        return ("model",)

    # --- values --------------------------------------------------------------------------
    def values(self, key: str, metric: str, weights: np.ndarray | None) -> np.ndarray:
        """Population mean of ``metric`` per unit: shape (U,) or (B, U) with weights.

        ``metric`` is one whose source is ``member``; it is measured per member by
        :data:`MEMBER_MEASURES`.
        """
        memo = self._point if weights is None else self._chunk
        if (key, metric) not in memo:
            measure = MEMBER_MEASURES[metric]
            per_member = [measure(self, m, weights) for m in self.populations[key]]
            memo[key, metric] = np.mean(per_member, axis=0) if len(per_member) > 1 else per_member[0]
        return memo[key, metric]

    def bias_amplification(self, member: Member, w: np.ndarray | None) -> metrics.BiasAmplification:
        """BA of one member (values (K, G) or (B, K, G), reasons, direction)."""
        memo = self._point if w is None else self._chunk
        key = ("ba", id(member))
        if key not in memo:
            t = self.test
            memo[key] = metrics.bias_amplification(t.y_true, member.y_pred, t.groups,
                                                   train_labels=t.train_labels, train_groups=t.train_groups,
                                                   sample_weight=w)
        return memo[key]

    def subgroup_table(self, member: Member | None, w: np.ndarray | None = None) -> metrics.SubgroupTable:
        """Pooled subgroup rates (all, groups, intersections) of ``member`` (the teacher when None)."""
        member = member or self.populations["teacher"][0]
        memo = self._point if w is None else self._chunk
        key = ("subgroups", id(member))
        if key not in memo:
            t = self.test
            memo[key] = metrics.subgroup_rates(t.y_true, member.y_pred, t.groups, t.group_names,
                                               sample_weight=w, per_attribute=False)
        return memo[key]

    def error_balance(self, key: str, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(CEV, SDE, δFPR, δFNR) of population ``key`` against the teacher.

        δ = normalized change in percent of the population-averaged rates; attributes
        with a zero (or undefined) teacher rate give nan δ and are left out of CEV/SDE
        by the metric functions.
        """
        d_fpr = metrics.normalized_change(teacher=self.values("teacher", "fpr", w), student=self.values(key, "fpr", w))
        d_fnr = metrics.normalized_change(teacher=self.values("teacher", "fnr", w), student=self.values(key, "fnr", w))
        cev = metrics.combined_error_variance(d_fpr, d_fnr)
        sde = metrics.symmetric_distance_error(d_fpr, d_fnr)
        return np.asarray(cev, dtype=np.float64), np.asarray(sde, dtype=np.float64), d_fpr, d_fnr


Measure = Callable[[Measurer, Member, "np.ndarray | None"], np.ndarray]


def _accuracy(m: Measurer, member: Member, w: np.ndarray | None) -> np.ndarray:
    t = m.test
    return np.asarray(metrics.accuracy(t.y_true, member.y_pred, task=t.task, sample_weight=w),
                      dtype=np.float64)[..., None]


def _ba(m: Measurer, member: Member, w: np.ndarray | None) -> np.ndarray:
    values = m.bias_amplification(member, w).values
    return values.reshape(values.shape[:-2] + (-1,))


#: metric name -> its per-member function (units on the last axis; (B, U) with (B, n) weights).
#: One entry per metric whose :class:`~compress_gate.config.gate.MetricSpec` source is ``member``.
MEMBER_MEASURES: dict[str, Measure] = {
    "accuracy": _accuracy,
    "fpr": lambda m, member, w: metrics.false_positive_rate(m.test.y_true, member.y_pred, sample_weight=w),
    "fnr": lambda m, member, w: metrics.false_negative_rate(m.test.y_true, member.y_pred, sample_weight=w),
    "tcb": lambda m, member, w: metrics.train_class_balance(m.test.y_true, member.y_pred,
                                                            train_mean=m.test.train_mean, sample_weight=w),
    "ece": lambda m, member, w: metrics.expected_calibration_error(m.test.y_true, member.y_score, sample_weight=w),
    "uncertainty": lambda m, member, w: metrics.uncertainty(member.y_score, sample_weight=w),
    "ba": _ba,
    "subgroup_error": lambda m, member, w: m.subgroup_table(member, w).pooled_error,
    "subgroup_fpr": lambda m, member, w: m.subgroup_table(member, w).pooled_fpr,
    "subgroup_fnr": lambda m, member, w: m.subgroup_table(member, w).pooled_fnr,
    **FAIRGRAPE_MEMBER_MEASURES,
}
