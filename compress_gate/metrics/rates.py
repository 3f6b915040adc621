"""Predicted labels, confusion counts and the per-attribute rates built on them.

Binary attributes are the unit: a multi-label head gives one per output; a multi-class
head gives one per class (one-hot labels, prediction = one-hot argmax). Every count is
a weighted sum: ``sample_weight`` None (each sample once), (n_samples,), or
(n_resamples, n_samples) bootstrap counts, which adds a leading ``n_resamples`` axis to
every result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import (_check_indicators, _check_one_hot, _check_sample_weight, _check_scores,
                                           _check_task)
from compress_gate.metrics._counts import _column_sums, _ratio, _total_weight
from compress_gate.metrics._tables import SubgroupCounts, _cached_overall, _confusion_rows

__all__ = ["ConfusionCounts", "predict_labels", "confusion_counts", "false_positive_rate",
           "false_negative_rate", "error_rate", "accuracy", "false_positive_rate_from_counts",
           "false_negative_rate_from_counts", "error_rate_from_counts", "accuracy_from_counts"]

def _check_binary_targets(y_true: object, y_pred: object, sample_weight: object
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = _check_indicators(y_true, "y_true")
    p = _check_indicators(y_pred, "y_pred", n_samples=t.shape[0], n_attributes=t.shape[1])
    return t, p, _check_sample_weight(sample_weight, t.shape[0])


@dataclass(frozen=True)
class ConfusionCounts:
    """Weighted confusion counts per attribute, each of shape (n_attributes,) or
    (n_resamples, n_attributes).

    The rates are properties: ``fpr = fp / (fp + tn)``, ``fnr = fn / (fn + tp)``,
    ``error = (fp + fn) / (tp + fp + fn + tn)``; ``nan`` where the denominator is 0.
    """

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    tn: np.ndarray

    @property
    def fpr(self) -> np.ndarray:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def fnr(self) -> np.ndarray:
        return _ratio(self.fn, self.fn + self.tp)

    @property
    def error(self) -> np.ndarray:
        return _ratio(self.fp + self.fn, self.tp + self.fp + self.fn + self.tn)


def predict_labels(y_score: np.ndarray, *, task: str, thresholds: np.ndarray | None = None) -> np.ndarray:
    r"""Predicted 0/1 labels from scores.

    Multi-label: :math:`\hat y_{ik} = [s_{ik} > t_k]` with :math:`t_k = 0.5` by default
    (strictly greater: a score of exactly the threshold is negative).
    Multi-class: one-hot of :math:`\arg\max_k s_{ik}`; a tie goes to the first class.

    Parameters
    ----------
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    task : "multilabel" or "multiclass"
    thresholds : ndarray of shape (n_attributes,), default=None
        Multi-label only (multi-class predicts the argmax; passing thresholds is an error).

    Returns
    -------
    ndarray of shape (n_samples, n_attributes), uint8 in {0, 1}

    Examples
    --------
    >>> predict_labels(np.array([[0.7, 0.5], [0.2, 0.9]]), task="multilabel")
    array([[1, 0],
           [0, 1]], dtype=uint8)
    """
    task = _check_task(task)
    scores = _check_scores(y_score)
    if task == "multiclass":
        if thresholds is not None:
            raise InputError("thresholds apply to task='multilabel' only; a multi-class prediction is the "
                             "argmax class. Pass thresholds=None.")
        labels = np.zeros(scores.shape, dtype=np.uint8)
        if scores.shape[0] and scores.shape[1]:
            labels[np.arange(scores.shape[0]), scores.argmax(axis=1)] = 1
        return labels
    if thresholds is None:
        return (scores > 0.5).astype(np.uint8)
    t = np.asarray(thresholds, dtype=np.float64)
    if t.shape != (scores.shape[1],) or not np.isfinite(t).all():
        raise InputError(f"thresholds has shape {t.shape} (or non-finite values); it must be "
                         f"({scores.shape[1]},) finite numbers, one per attribute.")
    return (scores > t).astype(np.uint8)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, *,
                     sample_weight: np.ndarray | None = None) -> ConfusionCounts:
    r"""Weighted true/false positives and negatives per attribute.

    .. math:: TP_k = \sum_i w_i\, y_{ik} \hat y_{ik},\quad FP_k = \sum_i w_i (1 - y_{ik}) \hat y_{ik},
              \quad FN_k = \sum_i w_i\, y_{ik} (1 - \hat y_{ik}),\quad TN_k = \sum_i w_i (1-y_{ik})(1-\hat y_{ik})

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    ConfusionCounts
        Fields of shape (n_attributes,), or (n_resamples, n_attributes) for 2-D weights.
        No samples: all counts 0 (and every rate ``nan``).
    """
    c = _confusion_rows(y_true, y_pred, None, sample_weight).row(0)
    return ConfusionCounts(tp=c.tp, fp=c.fp, fn=c.fn, tn=c.tn)


def false_positive_rate(y_true: np.ndarray, y_pred: np.ndarray, *,
                        sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""False positive rate per attribute.

    .. math:: \mathrm{FPR}_k = FP_k / (FP_k + TN_k)

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples), default=None

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` where attribute k has no negatives (FP + TN = 0).

    Examples
    --------
    >>> false_positive_rate(np.array([[0], [0], [1]]), np.array([[1], [0], [1]]))
    array([0.5])
    """
    return false_positive_rate_from_counts(_confusion_rows(y_true, y_pred, None, sample_weight))


def false_positive_rate_from_counts(counts: SubgroupCounts) -> np.ndarray:
    r"""FPR per attribute from row ``all`` of a count table (:func:`~compress_gate.metrics.subgroup_counts`):
    :math:`\hat P_k - TP_k` over :math:`N - P_k`; ``nan`` where there are no negatives.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` (its row ``all`` is used),
        optionally with a leading resample axis; tables of shards add with ``+``.

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]; ``nan`` where attribute k has no negatives.
    """
    c = counts.row(0)
    return _ratio(c.fp, c.size[..., None] - c.positives)


def false_negative_rate(y_true: np.ndarray, y_pred: np.ndarray, *,
                        sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""False negative rate per attribute.

    .. math:: \mathrm{FNR}_k = FN_k / (FN_k + TP_k)

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples), default=None

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` where attribute k has no positives (FN + TP = 0).

    Examples
    --------
    >>> false_negative_rate(np.array([[1], [1], [0]]), np.array([[1], [0], [0]]))
    array([0.5])
    """
    return false_negative_rate_from_counts(_confusion_rows(y_true, y_pred, None, sample_weight))


def false_negative_rate_from_counts(counts: SubgroupCounts) -> np.ndarray:
    r"""FNR per attribute from row ``all`` of a count table: :math:`(P_k - TP_k) / P_k`;
    ``nan`` where there are no positives.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` (its row ``all`` is used),
        optionally with a leading resample axis; tables of shards add with ``+``.

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]; ``nan`` where attribute k has no positives.
    """
    c = counts.row(0)
    return _ratio(c.fn, c.positives)


def error_rate(y_true: np.ndarray, y_pred: np.ndarray, *,
               sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""Error rate per attribute.

    .. math:: \mathrm{err}_k = \sum_i w_i [y_{ik} \ne \hat y_{ik}] \,/\, \sum_i w_i

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples), default=None

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` when the total weight is 0 (no samples).
    """
    return error_rate_from_counts(_confusion_rows(y_true, y_pred, None, sample_weight))


def error_rate_from_counts(counts: SubgroupCounts) -> np.ndarray:
    r"""Error rate per attribute from row ``all`` of a count table: :math:`(FP_k + FN_k) / N`;
    ``nan`` when N = 0.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` (its row ``all`` is used),
        optionally with a leading resample axis; tables of shards add with ``+``.

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]; ``nan`` when the table's weight N is 0.
    """
    c = counts.row(0)
    return _ratio(c.fp + c.fn, np.broadcast_to(c.size[..., None], c.fp.shape))


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, *, task: str,
             sample_weight: np.ndarray | None = None) -> float | np.ndarray:
    r"""Accuracy of a model.

    Multi-label: the mean over attributes of the per-attribute accuracy,
    :math:`\sum_{i,k} w_i [y_{ik} = \hat y_{ik}] / (K \sum_i w_i)`.
    Multi-class (one-hot rows): :math:`\sum_i w_i [\hat y_i = y_i] / \sum_i w_i`.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
        One-hot rows for ``task="multiclass"`` (checked).
    task : "multilabel" or "multiclass"
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    float, or ndarray of shape (n_resamples,) for 2-D weights
        In [0, 1]. ``nan`` when the total weight is 0 or there are no attributes.
    """
    task = _check_task(task)
    t, p, w = _check_binary_targets(y_true, y_pred, sample_weight)
    if task == "multiclass":
        _check_one_hot(t, "y_true")
        _check_one_hot(p, "y_pred")
    cached = _cached_overall(y_true, y_pred, sample_weight)
    if cached is not None:                  # a memoized table (bootstrap chunk): no new product
        return accuracy_from_counts(cached, task=task)
    # one column: correct labels per sample
    per_sample = (lambda rows: np.count_nonzero(t[rows] & p[rows], axis=1)[:, None]) if task == "multiclass" \
        else (lambda rows: t.shape[1] - np.count_nonzero(t[rows] != p[rows], axis=1)[:, None])
    correct = _column_sums(per_sample, t.shape[0], 1, w)[..., 0]
    total = np.asarray(_total_weight(w, t.shape[0]))
    value = _ratio(correct, total * (1 if task == "multiclass" else t.shape[1]))
    return float(value) if value.ndim == 0 else value


def accuracy_from_counts(counts: SubgroupCounts, *, task: str) -> float | np.ndarray:
    r"""Accuracy from row ``all`` of a count table (:func:`~compress_gate.metrics.subgroup_counts`).

    Multi-label: :math:`\sum_k (TP_k + TN_k) / (K N)`; multi-class (one-hot rows):
    :math:`\sum_k TP_k / N`. The same number as :func:`accuracy` on the samples counted.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` (its row ``all`` is used),
        optionally with a leading resample axis; tables of shards add with ``+``.
    task : "multilabel" or "multiclass"

    Returns
    -------
    float, or ndarray of shape (n_resamples,) for a table with a resample axis
        ``nan`` when N = 0 or there are no attributes.
    """
    task = _check_task(task)
    c = counts.row(0)
    k = c.tp.shape[-1]
    correct = c.tp.sum(axis=-1) if task == "multiclass" else (c.tp + c.tn).sum(axis=-1)
    value = _ratio(correct, c.size * (1 if task == "multiclass" else k))
    return float(value) if value.ndim == 0 else value
