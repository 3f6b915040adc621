"""FairGRAPE's average precision per joint group (Lin et al., ECCV 2022): AP overall and per group, Std(ΔAP).

Per-group AP is *not* additive: it needs each group's samples in score order, so
:func:`group_average_precision` takes the rows themselves (O(n) memory), sorted once per
attribute by score and once by (joint group, score); AP comes from cumulative weighted sums
over the sorted scores (scikit-learn's ``average_precision_score`` semantics, a step sum
without interpolation). Every function takes ``sample_weight`` None, (n,) or
(n_resamples, n) and gains a leading resample axis with the latter (no loop over samples);
2-D weights are processed a block of resamples at a time. The joint groups and the rest of
FairGRAPE's metrics are in :mod:`compress_gate.metrics.fairgrape`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.metrics._checks import _check_indicators, _check_sample_weight, _check_scores
from compress_gate.metrics._counts import _ratio
from compress_gate.metrics._joint_groups import _check_same_rows, _joint_groups, _pattern_labels, _sample_std, \
    group_change_std

_AP_BLOCK_VALUES = 2**23        # float64 values of one block of resampled weights (64 MiB)

__all__ = ["GroupAveragePrecision", "average_precision", "group_average_precision", "average_precision_change_std"]


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
