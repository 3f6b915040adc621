"""FairGRAPE's group metrics (Lin et al., ECCV 2022): joint groups, Std(ΔAcc), AP per group, PIE.

A *joint group* is one pattern of membership over all the identity columns given, e.g.
``male & young``, ``male & not young``, ``not male & young``, ``not male & not young``
for two columns (FairGRAPE's gender × race); only patterns present in the data are
groups, ordered member-first by column. The joint groups partition the samples, so a
spread over them compares disjoint populations. Every table has the row ``all`` first,
then the joint groups; spreads are over the joint groups only.

Counts come from the shared count table's cells (``_cell_sums``: the joint groups are its
cells, so a resample chunk's subgroup counts of the same arrays are reused). AP per joint
group (:func:`group_average_precision`, Std(ΔAP)) is in :mod:`compress_gate.metrics.fairgrape_ap`
and exported here too.

**Sufficient statistics.** The additive families come in two steps: ``*_counts`` gives a
table of weighted counts per joint group (:class:`JointGroupCounts`, :class:`PIECounts`)
that merges across shards with ``+`` (rows matched by membership pattern, so a shard
without some group merges with one that has it), and ``*_from_counts`` finishes the
rates; :func:`joint_group_rates` and :func:`pruning_identified_exemplars` are the two
composed. Per-group AP is *not* additive: it needs each group's samples in score order,
so :func:`group_average_precision` takes the rows themselves (O(n) memory).
Every metric here takes ``sample_weight`` None, (n,) or (n_resamples, n) and gains a
leading resample axis with the latter (no loop over samples or resamples).

Spreads are *sample* standard deviations (divide by J - 1): FairGRAPE's code computes
them with ``statistics.stdev``, and its published tables come from that code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_indicators, _check_one_hot, _check_task
from compress_gate.metrics._counts import _ratio
from compress_gate.metrics._joint_groups import _check_same_rows, _joint_counts, _JointRows, group_change_std
from compress_gate.metrics.cie import modal_cie
from compress_gate.metrics.fairgrape_ap import (GroupAveragePrecision, average_precision,
                                                average_precision_change_std, group_average_precision)

__all__ = ["JointGroupCounts", "JointGroupTable", "GroupAveragePrecision", "PIECounts", "PIEShares",
           "joint_group_counts", "joint_group_rates_from_counts", "joint_group_rates", "group_change_std",
           "accuracy_change_std", "average_precision", "group_average_precision", "average_precision_change_std",
           "pie_counts", "pie_outcomes", "pie_counts_from_outcomes", "pie_shares_from_counts",
           "pruning_identified_exemplars"]


@dataclass(frozen=True)
class JointGroupCounts(_JointRows):
    """Weighted confusion counts per row (``all``, then each joint group): additive.

    ``size`` (..., R); ``tp``, ``fp``, ``fn`` (..., R, n_attributes); ``...`` is the resample
    axis of 2-D weights. Tables of shards add with ``+`` (rows matched by pattern). TN is
    ``size - tp - fp - fn``.
    """

    size: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __add__(self, other: JointGroupCounts) -> JointGroupCounts:
        return JointGroupCounts(**self._merge(other, {"size": -1, "tp": -2, "fp": -2, "fn": -2}))


@dataclass(frozen=True)
class JointGroupTable:
    """Accuracy, FPR and FNR of one model per row: ``all``, then each joint group.

    ``sizes``, ``accuracy``, ``pooled_fpr``, ``pooled_fnr``: (..., R); ``fpr``, ``fnr``:
    (..., R, n_attributes); ``...`` is the resample axis of 2-D weights. ``nan`` where
    undefined (see :func:`joint_group_rates`).
    """

    names: tuple[str, ...]
    sizes: np.ndarray
    accuracy: np.ndarray
    fpr: np.ndarray
    fnr: np.ndarray
    pooled_fpr: np.ndarray
    pooled_fnr: np.ndarray


def joint_group_counts(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray,
                       group_names: tuple[str, ...] | None = None, *, task: str,
                       sample_weight: np.ndarray | None = None) -> JointGroupCounts:
    """The additive counts behind :func:`joint_group_rates` (same parameters); finish them
    with :func:`joint_group_rates_from_counts`. Multi-class labels and predictions must be one-hot.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns, default g0, g1, ...
    task : "multilabel" or "multiclass"
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    JointGroupCounts
        Weighted size, TP, FP, FN per row (``all``, then each joint group present); adds with ``+``.
    """
    task = _check_task(task)
    t = _check_indicators(y_true, "y_true")
    if task == "multiclass":
        _check_one_hot(t, "y_true")
        _check_one_hot(_check_indicators(y_pred, "y_pred", n_samples=t.shape[0], n_attributes=t.shape[1]), "y_pred")
    columns, patterns, c = _joint_counts(y_true, y_pred, groups, group_names, sample_weight)
    return JointGroupCounts(group_names=columns, patterns=patterns, size=c.size, tp=c.tp, fp=c.fp, fn=c.fn)


def joint_group_rates_from_counts(counts: JointGroupCounts, *, task: str) -> JointGroupTable:
    r"""Accuracy, FPR and FNR per row from :class:`JointGroupCounts` (formulas: :func:`joint_group_rates`).

    Pooled over attributes per row r: :math:`\mathrm{FPR}^{\mathrm{pool}}_r = \sum_k FP_{rk} /
    \sum_k (FP_{rk} + TN_{rk})` and :math:`\mathrm{FNR}^{\mathrm{pool}}_r = \sum_k FN_{rk} /
    \sum_k (FN_{rk} + TP_{rk})`; ``nan`` where the denominator is 0.

    Parameters
    ----------
    counts : JointGroupCounts
        The counts of :func:`joint_group_counts` (merged across shards with ``+``).
    task : "multilabel" or "multiclass"

    Returns
    -------
    JointGroupTable
        Rates in [0, 1]; a row of weight 0 has every rate ``nan``.
    """
    task = _check_task(task)
    size, tp, fp, fn = counts.size, counts.tp, counts.fp, counts.fn
    k = tp.shape[-1]
    correct = tp.sum(axis=-1) if task == "multiclass" else k * size - (fp + fn).sum(axis=-1)
    negatives = size[..., None] - tp - fn
    return JointGroupTable(names=counts.names, sizes=size,
                           accuracy=_ratio(correct, size * (1 if task == "multiclass" else k)),
                           fpr=_ratio(fp, negatives), fnr=_ratio(fn, tp + fn),
                           pooled_fpr=_ratio(fp.sum(axis=-1), negatives.sum(axis=-1)),
                           pooled_fnr=_ratio(fn.sum(axis=-1), (tp + fn).sum(axis=-1)))


def joint_group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray,
                      group_names: tuple[str, ...] | None = None, *, task: str,
                      sample_weight: np.ndarray | None = None) -> JointGroupTable:
    r"""FairGRAPE's table: accuracy, FPR and FNR overall and per joint group.

    For row r with weighted counts over its samples (:func:`accuracy`'s definition per row),

    .. math:: \mathrm{acc}_r = \frac{\sum_k (TP_{rk} + TN_{rk})}{K N_r} \text{ (multi-label)},\quad
              \mathrm{acc}_r = \frac{\sum_k TP_{rk}}{N_r} \text{ (multi-class, one-hot)},

    :math:`\mathrm{FPR}_{rk} = FP_{rk}/(FP_{rk}+TN_{rk})`, :math:`\mathrm{FNR}_{rk} = FN_{rk}/(FN_{rk}+TP_{rk})`,
    and the rates pooled over attributes (:func:`joint_group_rates_from_counts`). The
    composition of :func:`joint_group_counts` and :func:`joint_group_rates_from_counts`.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
        Identity columns; their membership patterns are the joint groups.
    group_names : names of the group columns, default g0, g1, ...
    task : "multilabel" or "multiclass"
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    JointGroupTable
        Rates in [0, 1]. A row of weight 0 has every rate ``nan``; a row without
        negatives (positives) of attribute k has FPR (FNR) ``nan`` for k.
    """
    return joint_group_rates_from_counts(joint_group_counts(y_true, y_pred, groups, group_names, task=task,
                                                            sample_weight=sample_weight), task=task)


def accuracy_change_std(teacher: JointGroupTable, student: JointGroupTable) -> float | np.ndarray:
    r"""Std(ΔAcc) (FairGRAPE): the spread over joint groups of each group's accuracy change.

    .. math:: \Delta_j = \mathrm{acc}^{\mathrm{student}}_j - \mathrm{acc}^{\mathrm{teacher}}_j,\quad
              \mathrm{Std}(\Delta\mathrm{Acc}) = \sqrt{\tfrac{1}{J-1}\textstyle\sum_j (\Delta_j - \bar\Delta)^2}

    over the J joint groups (not the row ``all``), in accuracy units (FairGRAPE prints
    percentage points: multiply by 100). Sample standard deviation, as FairGRAPE's code.
    A (n_resamples, R) student table broadcasts against a (R,) teacher table.

    Parameters
    ----------
    teacher : JointGroupTable
        The teacher's per-joint-group rates (:func:`joint_group_rates`), rows (R,).
    student : JointGroupTable
        The student's, (R,) or (n_resamples, R).

    Returns
    -------
    float, or ndarray of shape (n_resamples,)
        >= 0. ``nan`` when fewer than 2 joint groups exist or any group's accuracy is
        undefined (a group of weight 0): a spread over groups not all seen is not judged.
    """
    _check_same_rows(teacher.names, student.names)
    return group_change_std(teacher.accuracy[..., 1:], student.accuracy[..., 1:])


@dataclass(frozen=True)
class PIECounts(_JointRows):
    """Weighted PIE counts per row (``all``, then each joint group): additive.

    ``size`` (..., R): the rows' sample weight; ``pie`` (..., R): the weight of judged
    (sample, attribute) pairs that are PIEs (multi-class: of samples); ``units`` is the
    number of judged pairs per sample (K multi-label, 1 multi-class). Add with ``+``.
    """

    size: np.ndarray
    pie: np.ndarray
    units: int

    def __add__(self, other: PIECounts) -> PIECounts:
        if other.units != self.units:
            raise InputError(f"cannot add PIE counts over {other.units} attribute(s) to counts over "
                             f"{self.units}: merge tables of the same labels.")
        return PIECounts(**self._merge(other, {"size": -1, "pie": -1}), units=self.units)


@dataclass(frozen=True)
class PIEShares:
    """Share of pruning-identified exemplars per row (``all``, then each joint group).

    ``sizes``, ``share``: (..., R). ``gap`` (...,): the largest difference between two
    joint groups' shares, max - min; ``nan`` with fewer than 2 groups or an undefined share.
    """

    names: tuple[str, ...]
    sizes: np.ndarray
    share: np.ndarray

    @property
    def gap(self) -> float | np.ndarray:
        groups = self.share[..., 1:]
        value = (groups.max(axis=-1) - groups.min(axis=-1) if groups.shape[-1] >= 2
                 else np.full(groups.shape[:-1], np.nan))
        return float(value) if np.ndim(value) == 0 else value


def pie_outcomes(y_true: np.ndarray, dense_pred: np.ndarray, compressed_pred: np.ndarray, *, task: str,
                 seed: int = 0, id_hash: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dense right, compressed right): whether each population's modal label is right, per
    (sample, attribute) pair (n, K) multi-label or per sample (n, 1) multi-class; parameters as
    :func:`pie_counts`. They do not depend on sample weights: a bootstrap computes them once and
    counts them with each resample's weights (:func:`pie_counts_from_outcomes`).

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1} (one-hot for multi-class)
    dense_pred, compressed_pred : ndarray of shape (n_models, n_samples, n_attributes) or (n_samples, n_attributes)
        Each population's 0/1 predictions.
    task : "multilabel" or "multiclass"
    seed : int, default=0
        Breaks ties of a population's vote.
    id_hash : None or ndarray of shape (n_samples,), uint64
        Keys the tie-breaking per sample (independent of shards).

    Returns
    -------
    tuple of two bool ndarrays of shape (n_samples, n_attributes), or (n_samples, 1) multi-class
    """
    task = _check_task(task)
    t = _check_indicators(y_true, "y_true")
    if task == "multiclass":
        _check_one_hot(t, "y_true")
    dense, comp = (p[None] if np.ndim(p) == 2 else p for p in (np.asarray(dense_pred), np.asarray(compressed_pred)))
    modal = modal_cie(dense, comp, task=task, seed=seed, id_hash=id_hash)
    if modal.dense_modal.shape != t.shape:
        raise InputError(f"the predictions cover {modal.dense_modal.shape} (samples, attributes) but y_true "
                         f"{t.shape}: predict the same samples and labels as y_true, in its order.")
    if task == "multiclass":
        return ((modal.dense_modal.view(bool) & t).any(axis=1, keepdims=True),
                (modal.compressed_modal.view(bool) & t).any(axis=1, keepdims=True))
    return modal.dense_modal.view(bool) == t, modal.compressed_modal.view(bool) == t


def pie_counts_from_outcomes(dense_ok: np.ndarray, comp_ok: np.ndarray, groups: np.ndarray,
                             group_names: tuple[str, ...] | None = None, *,
                             sample_weight: np.ndarray | None = None) -> PIECounts:
    """:class:`PIECounts` of :func:`pie_outcomes` per row (``all`` + each joint group), weighted
    by ``sample_weight`` (None, (n,) or (B, n)). A PIE is a pair the dense population gets right
    and the compressed one wrong.

    Parameters
    ----------
    dense_ok, comp_ok : bool ndarray of shape (n_samples, n_units)
        :func:`pie_outcomes`' two results.
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns, default g0, g1, ...
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    PIECounts
        Weighted size and PIE count per row; adds with ``+``.
    """
    # counts with "labels" = dense right, "predictions" = compressed right: FN = dense right, compressed wrong
    columns, patterns, c = _joint_counts(dense_ok, comp_ok, groups, group_names, sample_weight)
    return PIECounts(group_names=columns, patterns=patterns, size=c.size, pie=c.fn.sum(axis=-1),
                     units=dense_ok.shape[1])


def pie_counts(y_true: np.ndarray, dense_pred: np.ndarray, compressed_pred: np.ndarray, groups: np.ndarray,
               group_names: tuple[str, ...] | None = None, *, task: str, seed: int = 0,
               sample_weight: np.ndarray | None = None, id_hash: np.ndarray | None = None) -> PIECounts:
    """The additive counts behind :func:`pruning_identified_exemplars` (same parameters); finish
    them with :func:`pie_shares_from_counts`. A population's modal label is decided per sample
    (ties broken with ``seed``, keyed by ``id_hash`` when given: see :func:`modal_cie`).
    The composition of :func:`pie_outcomes` and :func:`pie_counts_from_outcomes`.

    Parameters
    ----------
    y_true, dense_pred, compressed_pred, task, seed, id_hash : as :func:`pie_outcomes`
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns, default g0, g1, ...
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    PIECounts
    """
    dense_ok, comp_ok = pie_outcomes(y_true, dense_pred, compressed_pred, task=task, seed=seed, id_hash=id_hash)
    return pie_counts_from_outcomes(dense_ok, comp_ok, groups, group_names, sample_weight=sample_weight)


def pie_shares_from_counts(counts: PIECounts) -> PIEShares:
    r"""PIE share per row from :class:`PIECounts`: :math:`\mathrm{pie}_r / (\mathrm{units} \cdot N_r)`;
    ``nan`` for a row of weight 0.

    Parameters
    ----------
    counts : PIECounts
        The counts of :func:`pie_counts` (merged across shards with ``+``).

    Returns
    -------
    PIEShares
        Shares in [0, 1]; ``nan`` for a row of weight 0.
    """
    return PIEShares(names=counts.names, sizes=counts.size, share=_ratio(counts.pie, counts.size * counts.units))


def pruning_identified_exemplars(y_true: np.ndarray, dense_pred: np.ndarray, compressed_pred: np.ndarray,
                                 groups: np.ndarray, group_names: tuple[str, ...] | None = None, *, task: str,
                                 seed: int = 0, sample_weight: np.ndarray | None = None,
                                 id_hash: np.ndarray | None = None) -> PIEShares:
    r"""PIE share (FairGRAPE, after Hooker et al.): right for the full model, wrong for the pruned one.

    Multi-class: sample i is a PIE when :math:`\hat y^{\mathrm{dense}}_i = y_i \ne \hat y^{\mathrm{comp}}_i`,
    and a row's share is :math:`\sum_{i \in r} w_i \mathrm{PIE}_i / \sum_{i \in r} w_i`.
    Multi-label: each (sample, attribute) pair is judged alike and the share is over the
    pairs, :math:`\sum_{i \in r,k} w_i \mathrm{PIE}_{ik} / (K \sum_{i \in r} w_i)`.
    A population's prediction is its modal label (:func:`modal_cie`, ties broken with ``seed``;
    with ``id_hash``, the hashes of the sample ids, each tie's draw is keyed by its sample's
    hash, so a sample's PIE does not depend on the other samples or how they are sharded).
    The composition of :func:`pie_counts` and :func:`pie_shares_from_counts`.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    dense_pred, compressed_pred : ndarray of shape (n_samples, n_attributes) for one model,
        or (n_models, n_samples, n_attributes) for a population; values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns, default g0, g1, ...
    task : "multilabel" or "multiclass"
    seed : int, default=0. Used only to break ties of a population's votes.
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)
    id_hash : None or ndarray of shape (n_samples,), uint64 (``hash_ids`` of the sample ids)

    Returns
    -------
    PIEShares
        Shares in [0, 1]; ``nan`` for a row of weight 0.
    """
    return pie_shares_from_counts(pie_counts(y_true, dense_pred, compressed_pred, groups, group_names, task=task,
                                             seed=seed, sample_weight=sample_weight, id_hash=id_hash))
