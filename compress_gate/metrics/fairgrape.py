"""FairGRAPE's group metrics (Lin et al., ECCV 2022): joint groups, Std(ΔAcc), AP per group, PIE.

A *joint group* is one pattern of membership over all the identity columns given, e.g.
``male & young``, ``male & not young``, ``not male & young``, ``not male & not young``
for two columns (FairGRAPE's gender × race); only patterns present in the data are
groups, ordered member-first by column. The joint groups partition the samples, so a
spread over them compares disjoint populations. Every table has the row ``all`` first,
then the joint groups; spreads are over the joint groups only.

Counts come from the shared count table's cells (``_cell_sums``: the joint groups are its
cells, so a resample chunk's subgroup counts of the same arrays are reused); AP from
cumulative weighted sums over the sorted scores.

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
from compress_gate.metrics._checks import (_check_indicators, _check_one_hot, _check_sample_weight, _check_scores,
                                           _check_task)
from compress_gate.metrics._counts import _ratio
from compress_gate.metrics._joint_groups import _joint_counts, _joint_groups, _JointRows, _pattern_labels
from compress_gate.metrics.cie import modal_cie

_AP_BLOCK_VALUES = 2**23        # float64 values of one block of resampled weights (64 MiB)

__all__ = ["JointGroupCounts", "JointGroupTable", "GroupAveragePrecision", "PIECounts", "PIEShares",
           "joint_group_counts", "joint_group_rates_from_counts", "joint_group_rates", "group_change_std",
           "accuracy_change_std", "average_precision", "group_average_precision", "average_precision_change_std",
           "pie_counts", "pie_outcomes", "pie_counts_from_outcomes", "pie_shares_from_counts",
           "pruning_identified_exemplars"]


def _sample_std(values: np.ndarray) -> np.ndarray | float:
    """Sample standard deviation over the last axis; ``nan`` with fewer than 2 values or any ``nan``."""
    value = np.std(values, axis=-1, ddof=1) if values.shape[-1] >= 2 else np.full(values.shape[:-1], np.nan)
    return float(value) if np.ndim(value) == 0 else value


def group_change_std(teacher: np.ndarray, student: np.ndarray) -> float | np.ndarray:
    r"""FairGRAPE's spread of a change over joint groups: the sample standard deviation of
    :math:`\Delta_j = s_j - t_j` over the last axis (the J joint groups, without ``all``).

    .. math:: \mathrm{Std}(\Delta) = \sqrt{\tfrac{1}{J-1}\textstyle\sum_j (\Delta_j - \bar\Delta)^2}

    Parameters
    ----------
    teacher, student : ndarray of shape (..., J), broadcasting (e.g. (J,) against (n_resamples, J))

    Returns
    -------
    float, or ndarray of the leading shape
        >= 0. ``nan`` with fewer than 2 groups or any ``nan`` value.

    Examples
    --------
    >>> group_change_std(np.array([1.0, 1.0, 1.0]), np.array([0.5, 1.0, 1.5]))
    0.5
    """
    return _sample_std(np.asarray(student, dtype=np.float64) - np.asarray(teacher, dtype=np.float64))


def _check_same_rows(teacher_names: tuple[str, ...], student_names: tuple[str, ...]) -> None:
    if teacher_names != student_names:
        raise InputError(f"the teacher's joint groups {list(teacher_names)} differ from the student's "
                         f"{list(student_names)}; compute both with the same groups and group_names.")


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
    with :func:`joint_group_rates_from_counts`. Multi-class labels and predictions must be one-hot."""
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


def _segment_ap(positive: np.ndarray, weights: np.ndarray | None, scores: np.ndarray, segment: np.ndarray,
                n_segments: int) -> np.ndarray:
    r"""AP of each segment of samples sorted by (segment, score descending): (..., n_segments).

    Cumulative weighted TP and predicted positives within each segment, read at the last
    sample of each run of tied scores (tied samples enter together), and
    :math:`\mathrm{AP} = \frac{1}{TP_N}\sum_n (TP_n - TP_{n-1})\, TP_n / \mathrm{Pred}_n`;
    ``nan`` for a segment without positive weight or without samples. One cumulative sum
    over all segments (each segment's offset subtracted): exact for integer weights.
    """
    n = positive.shape[0]
    lead = () if weights is None else weights.shape[:-1]
    out = np.full(lead + (n_segments,), np.nan)
    if n == 0:
        return out
    w = np.ones(n) if weights is None else weights
    last = np.ones(n, dtype=bool)
    last[:-1] = (scores[1:] != scores[:-1]) | (segment[1:] != segment[:-1])
    first = np.ones(n, dtype=bool)
    first[1:] = segment[1:] != segment[:-1]
    before = np.flatnonzero(first) - 1                      # index just before each segment (-1: none)
    offset_of = np.cumsum(first) - 1                         # the segment ordinal of each sample

    def local(values: np.ndarray) -> np.ndarray:             # cumulative sums restarted at each segment
        total = np.cumsum(values, axis=-1, dtype=np.float64)
        offsets = np.where(before >= 0, total[..., np.maximum(before, 0)], 0.0)
        return (total - offsets[..., offset_of])[..., last]
    tp, predicted = local(w * positive), local(w)
    seg_last = segment[last]
    starts = np.flatnonzero(np.concatenate([[True], seg_last[1:] != seg_last[:-1]]))
    previous = np.concatenate([np.zeros(lead + (1,)), tp[..., :-1]], axis=-1)
    previous[..., starts] = 0.0
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    gained = np.add.reduceat((tp - previous) * precision, starts, axis=-1)
    ends = np.append(starts[1:], seg_last.size) - 1
    out[..., seg_last[starts]] = _ratio(gained, tp[..., ends])
    return out


def _average_precision_rows(t: np.ndarray, s: np.ndarray, member: np.ndarray, w: np.ndarray | None,
                            overall: bool = True) -> np.ndarray:
    """AP per row (``all`` + member columns) and attribute: (..., 1 + J, K); ``nan`` for an empty row
    (and for the row ``all`` when not ``overall``).

    Per attribute two sorts: by score (the row ``all``) and by (joint group, score) (the
    joint groups partition the samples, so :func:`_segment_ap` takes them all in one pass).
    2-D weights are taken a block of resamples at a time: float64 temporaries near 64 MiB.
    float32 resample counts multiply in float32 (exact for integer counts); sums are float64.
    """
    n, k = t.shape
    cell = member.argmax(axis=1) if member.shape[1] else np.zeros(n, dtype=np.int64)
    lead = () if w is None or w.ndim == 1 else (w.shape[0],)
    out = np.full(lead + (1 + member.shape[1], k), np.nan)
    step = max(1, _AP_BLOCK_VALUES // max(n, 1))
    blocks = [slice(b, b + step) for b in range(0, w.shape[0], step)] if lead else [slice(None)]
    for a in range(k):
        by_score = np.argsort(-s[:, a], kind="stable")
        by_group = by_score[np.argsort(cell[by_score], kind="stable")]
        for order, segment, rows in ((by_score, np.zeros(n, dtype=np.int64), slice(0, 1)),
                                     (by_group, cell[by_group], slice(1, None))):
            if (rows.start == 1 and member.shape[1] == 0) or (rows.start == 0 and not overall):
                continue
            n_rows = 1 if rows.start == 0 else member.shape[1]
            for block in blocks:
                weights = None if w is None else w[block][..., order] if lead else w[order]
                out[(block, rows, a) if lead else (rows, a)] = _segment_ap(t[order, a], weights, s[order, a],
                                                                           segment, n_rows)
    return out


def average_precision(y_true: np.ndarray, y_score: np.ndarray, *,
                      sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""Average precision per attribute, with scikit-learn's ``average_precision_score`` semantics.

    Scores sorted descending; at each distinct score (tied samples enter together) the
    weighted precision :math:`P_n` and recall :math:`R_n` of predicting "score >= it", and

    .. math:: \mathrm{AP}_k = \sum_n (R_n - R_{n-1})\, P_n,\quad R_0 = 0

    (a step sum, no interpolation). A threshold with no weight predicted positive adds 0.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` where attribute k has no positive weight (scikit-learn warns
        and returns 0 there; here it is undefined, never a silent 0).
    """
    t = _check_indicators(y_true, "y_true")
    s = _check_scores(y_score, n_samples=t.shape[0], n_attributes=t.shape[1])
    w = _check_sample_weight(sample_weight, t.shape[0])
    return _average_precision_rows(t, s, np.zeros((t.shape[0], 0), dtype=bool), w)[..., 0, :]


@dataclass(frozen=True)
class GroupAveragePrecision:
    """AP of one model per row (``all``, then each joint group) and attribute: ``ap`` (..., R, K).

    Properties: ``per_group`` (..., R), the mean AP over attributes of each row; ``mean``
    and ``std`` (...,), the mean and sample standard deviation of ``per_group`` over the
    joint groups. ``nan`` propagates: a row with an undefined AP has an undefined mean.
    """

    names: tuple[str, ...]
    ap: np.ndarray

    @property
    def per_group(self) -> np.ndarray:
        return self.ap.mean(axis=-1)

    @property
    def mean(self) -> float | np.ndarray:
        value = self.per_group[..., 1:].mean(axis=-1)
        return float(value) if np.ndim(value) == 0 else value

    @property
    def std(self) -> float | np.ndarray:
        return _sample_std(self.per_group[..., 1:])


def group_average_precision(y_true: np.ndarray, y_score: np.ndarray, groups: np.ndarray,
                            group_names: tuple[str, ...] | None = None, *,
                            sample_weight: np.ndarray | None = None, overall: bool = True) -> GroupAveragePrecision:
    r"""AP (:func:`average_precision`) per attribute, overall and within each joint group.

    Row j's AP uses only the samples of joint group j. FairGRAPE's summaries follow as
    properties: mean AP over groups of :math:`\mathrm{mAP}_j = \frac1K \sum_k \mathrm{AP}_{jk}`,
    and Std(AP), the sample standard deviation of :math:`\mathrm{mAP}_j` over groups.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns, default g0, g1, ...
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)
    overall : bool, default=True. False leaves the row ``all`` ``nan`` (not computed: half
        the cost when only the joint groups are needed, e.g. their resamples)

    Returns
    -------
    GroupAveragePrecision
        ``nan`` where a row has no positive weight for an attribute. Select attributes
        with positives in every group to get defined summaries.
    """
    t = _check_indicators(y_true, "y_true")
    s = _check_scores(y_score, n_samples=t.shape[0], n_attributes=t.shape[1])
    w = _check_sample_weight(sample_weight, t.shape[0])
    member, columns, patterns = _joint_groups(groups, t.shape[0], group_names, sample_weight)
    return GroupAveragePrecision(names=("all",) + _pattern_labels(columns, patterns),
                                 ap=_average_precision_rows(t, s, member, w, overall))


def average_precision_change_std(teacher: GroupAveragePrecision, student: GroupAveragePrecision) -> float | np.ndarray:
    r"""Std(ΔAP) (FairGRAPE): sample standard deviation over joint groups of
    :math:`\mathrm{mAP}^{\mathrm{student}}_j - \mathrm{mAP}^{\mathrm{teacher}}_j`.

    Parameters
    ----------
    teacher : GroupAveragePrecision
        The teacher's mAP per joint group.
    student : GroupAveragePrecision
        The student's, per joint group (with a leading resample axis for resamples).

    Returns
    -------
    float, or ndarray of shape (n_resamples,)
        >= 0. ``nan`` with fewer than 2 joint groups or any undefined group mAP.
    """
    _check_same_rows(teacher.names, student.names)
    return group_change_std(teacher.per_group[..., 1:], student.per_group[..., 1:])


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
    counts them with each resample's weights (:func:`pie_counts_from_outcomes`)."""
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
    and the compressed one wrong."""
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
    The composition of :func:`pie_outcomes` and :func:`pie_counts_from_outcomes`."""
    dense_ok, comp_ok = pie_outcomes(y_true, dense_pred, compressed_pred, task=task, seed=seed, id_hash=id_hash)
    return pie_counts_from_outcomes(dense_ok, comp_ok, groups, group_names, sample_weight=sample_weight)


def pie_shares_from_counts(counts: PIECounts) -> PIEShares:
    r"""PIE share per row from :class:`PIECounts`: :math:`\mathrm{pie}_r / (\mathrm{units} \cdot N_r)`;
    ``nan`` for a row of weight 0."""
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
