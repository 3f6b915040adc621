"""Bias amplification (BA) and train class balance (TCB), after Iofinova et al.

Both take a direction from the *training* labels (which identity side, which label value
is the minority) and measure the model on the test samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_indicators
from compress_gate.metrics._counts import _ratio
from compress_gate.metrics._tables import SubgroupCounts, _confusion_rows

__all__ = ["NO_POSITIVE_PREDICTIONS", "BiasAmplification", "TrainCounts", "bias_amplification",
           "bias_amplification_from_counts", "train_counts", "train_class_balance",
           "train_class_balance_from_counts"]

NO_POSITIVE_PREDICTIONS = "the model predicts no positives for this attribute (BA undefined)"


@dataclass(frozen=True)
class BiasAmplification:
    """BA per (attribute, identity category).

    Attributes
    ----------
    values : ndarray of shape (n_attributes, n_groups) or (n_resamples, n_attributes, n_groups)
        ``nan`` where BA is not computed or undefined.
    reasons : ndarray of object, the shape of ``values``
        None where BA is a number, else why it is not (a rule of Iofinova et al., or no
        positive predictions). With resample weights the test-count rules are checked
        per resample, so ``reasons`` carries the resample axis too.
    direction : ndarray of shape (n_attributes, n_groups), int8
        g of the formula: 1 (in the group), 0 (outside it), -1 where the training labels
        give no direction (then BA is not computed).
    """

    values: np.ndarray
    reasons: np.ndarray
    direction: np.ndarray

    @property
    def is_defined(self) -> np.ndarray:
        """bool, the shape of ``values``: True where BA is a number."""
        return ~np.isnan(self.values)


@dataclass(frozen=True)
class TrainCounts:
    """Counts of the training rows that BA and TCB take their direction from (additive).

    ``n`` () rows, ``in_group`` (G,) rows per identity group, ``positives`` (K,) positive
    labels per attribute, ``positives_in`` (K, G) positive labels inside each group; all
    float64 integers, so tables of disjoint rows merge exactly by addition (``a + b``).
    """

    n: np.ndarray
    in_group: np.ndarray
    positives: np.ndarray
    positives_in: np.ndarray

    def __add__(self, other: TrainCounts) -> TrainCounts:
        """Field-wise sum: the counts of the union of two disjoint sets of training rows."""
        return TrainCounts(self.n + other.n, self.in_group + other.in_group, self.positives + other.positives,
                           self.positives_in + other.positives_in)

    @property
    def mean(self) -> np.ndarray:
        """(K,) share of positive training labels per attribute (``nan`` without rows)."""
        return _ratio(self.positives, np.broadcast_to(self.n, self.positives.shape))


def train_counts(train_labels: np.ndarray, train_groups: np.ndarray) -> TrainCounts:
    r"""The additive counts of the training rows (:class:`TrainCounts`):
    :math:`n`, :math:`\sum_i I_{ig}`, :math:`\sum_i A_{ik}`, :math:`\sum_i A_{ik} I_{ig}`.

    Parameters
    ----------
    train_labels : ndarray of shape (n_train, n_attributes), values in {0, 1}
    train_groups : ndarray of shape (n_train, n_groups), values in {0, 1}
    """
    labels = _check_indicators(train_labels, "train_labels")
    groups = _check_indicators(train_groups, "train_groups", n_samples=labels.shape[0])
    exact = np.float32 if labels.shape[0] < 2**24 else np.float64                  # integer counts stay exact
    positives_in = (labels.T.astype(exact) @ groups.astype(exact)).astype(np.float64)  # (K, G)
    return TrainCounts(n=np.asarray(float(labels.shape[0])), in_group=groups.sum(axis=0).astype(np.float64),
                       positives=labels.sum(axis=0).astype(np.float64), positives_in=positives_in)


def _train_direction(train: TrainCounts, min_relative_difference: float) -> tuple[np.ndarray, np.ndarray]:
    """(direction (K, G) int8, reasons (K, G) object) from the training counts."""
    in_group = train.in_group                                                      # (G,)
    out_group = train.n - in_group
    pos_in = train.positives_in
    pos_out = train.positives[:, None] - pos_in
    pos = _ratio(pos_in, np.broadcast_to(in_group, pos_in.shape))
    neg = _ratio(pos_out, np.broadcast_to(out_group, pos_out.shape))
    low = np.minimum(pos, neg)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(low > 0, np.abs(pos - neg) / np.where(low > 0, low, 1.0), np.inf)
    reasons = np.full(pos.shape, None, dtype=object)
    balanced = np.argwhere(relative < min_relative_difference)
    for k, g in balanced:
        reasons[k, g] = (f"training labels barely differ across the group: P(A=1 | I=1) = {pos[k, g]:.4g}, "
                         f"P(A=1 | I=0) = {neg[k, g]:.4g}, |pos - neg| / min(pos, neg) = "
                         f"{relative[k, g]:.3g} < {min_relative_difference:g}")
    reasons[np.maximum(pos, neg) == 0] = "no positive training labels in or out of the group"
    reasons[:, out_group == 0] = "no training rows outside the group"
    reasons[:, in_group == 0] = "no training rows in the group"
    direction = np.where(pos > neg, 1, 0).astype(np.int8)
    direction[reasons != None] = -1   # noqa: E711  (elementwise comparison on an object array)
    return direction, reasons


def bias_amplification(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, *,
                       train_labels: np.ndarray, train_groups: np.ndarray,
                       sample_weight: np.ndarray | None = None, min_positives: int = 10,
                       min_relative_difference: float = 0.1) -> BiasAmplification:
    r"""Bias amplification (Iofinova et al.) per attribute A and identity category I.

    Direction, from the training split: :math:`pos = P_\mathrm{train}(A=1 \mid I=1)`,
    :math:`neg = P_\mathrm{train}(A=1 \mid I=0)`, :math:`g = 1` if pos > neg else 0. On
    the test samples, with weighted counts N,

    .. math:: \mathrm{BA} = \frac{N(\hat A=1, I=g)}{N(\hat A=1)} - \frac{N(A=1, I=g)}{N(A=1)}

    Positive BA: the model predicts A for the side where A is over-represented more
    often than the labels do.

    Not computed (``nan``, with the reason), checked in this order:

    - no training rows in (or outside) the group;
    - pos = neg = 0: no positive training labels. When only one of them is 0 the
      relative difference is infinite, so BA *is* computed (g is the side with positives);
    - :math:`|pos - neg| / \min(pos, neg) <` ``min_relative_difference`` (0.1);
    - :math:`N_\mathrm{test}(A=1, I=1) <` ``min_positives`` (10) or
      :math:`N_\mathrm{test}(A=1, I=0) <` ``min_positives`` (true labels, weighted);
    - :math:`N(\hat A=1) = 0`: no positive predictions, BA undefined.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    train_labels : ndarray of shape (n_train, n_attributes), values in {0, 1}
    train_groups : ndarray of shape (n_train, n_groups), values in {0, 1}
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)
        Weights of the test samples only; the training direction is unweighted.

    Returns
    -------
    BiasAmplification
        ``values`` in [-1, 1], of shape (n_attributes, n_groups) or
        (n_resamples, n_attributes, n_groups).
    """
    counts = _confusion_rows(y_true, y_pred, groups, sample_weight)
    k = counts.positives.shape[-1]
    n_groups = np.shape(groups)[1]                                 # checked by _confusion_rows
    tl = _check_indicators(train_labels, "train_labels", n_attributes=k)
    tg = _check_indicators(train_groups, "train_groups", n_samples=tl.shape[0])
    if tg.shape[1] != n_groups:
        raise InputError(f"train_groups has {tg.shape[1]} columns but groups has {n_groups}: pass the same "
                         "identity columns for the training and the test rows.")
    return bias_amplification_from_counts(counts, train_counts(tl, tg), min_positives=min_positives,
                                          min_relative_difference=min_relative_difference)


def bias_amplification_from_counts(counts: SubgroupCounts, train: TrainCounts, *, min_positives: int = 10,
                                   min_relative_difference: float = 0.1) -> BiasAmplification:
    """BA from the test rows' count table (:func:`~compress_gate.metrics.subgroup_counts`, with
    groups) and the training counts (:func:`train_counts`): formula and rules of
    :func:`bias_amplification`, which is this function on the counts of its arguments.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` over the identity groups (rows ``all``, then each group),
        optionally with a leading resample axis; tables of shards add with ``+``.
    train : TrainCounts
        The training rows' counts (:func:`train_counts`): BA's direction per (attribute, group).
    min_positives : int, default=10
        Fewer true positives than this in the group or outside it: not computed.
    min_relative_difference : float, default=0.1
        Training conditionals closer than this (relative to the smaller): not computed.

    Returns
    -------
    BiasAmplification
        BA per (attribute, group), ``nan`` with the reason where not computed or undefined.
    """
    n_groups = train.in_group.shape[0]
    direction, train_reasons = _train_direction(train, min_relative_difference)
    everyone, in_group = counts.row(0), slice(1, 1 + n_groups)      # rows: all, then each group
    pred_all = everyone.predicted[..., None]                         # (..., K, 1)
    true_all = everyone.positives[..., None]
    pred_in = np.swapaxes(counts.predicted[..., in_group, :], -1, -2)  # (..., K, G)
    true_in = np.swapaxes(counts.positives[..., in_group, :], -1, -2)
    in_g = direction == 1
    pred_g = np.where(in_g, pred_in, pred_all - pred_in)
    true_g = np.where(in_g, true_in, true_all - true_in)
    values = _ratio(pred_g, np.broadcast_to(pred_all, pred_g.shape)) - \
        _ratio(true_g, np.broadcast_to(true_all, true_g.shape))

    reasons = np.full(values.shape, None, dtype=object)
    reasons[np.broadcast_to(pred_all == 0, values.shape)] = NO_POSITIVE_PREDICTIONS
    reasons[true_all - true_in < min_positives] = \
        f"fewer than {min_positives} positive test labels outside the group"
    reasons[true_in < min_positives] = f"fewer than {min_positives} positive test labels in the group"
    train_mask = np.broadcast_to(direction == -1, values.shape)
    reasons[train_mask] = np.broadcast_to(train_reasons, values.shape)[train_mask]
    values = np.where(reasons == None, values, np.nan)   # noqa: E711
    return BiasAmplification(values=values, reasons=reasons, direction=direction)


def train_class_balance(y_true: np.ndarray, y_pred: np.ndarray, *, train_mean: np.ndarray,
                        sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""Train class balance (TCB, Iofinova et al.): how often the model predicts the
    label value that is the minority in training, relative to how often it is true.

    .. math:: \mathrm{TCB}_k = \begin{cases} N(\hat A_k=0) / N(A_k=0) & \text{if } \bar a_k > 0.5 \\
                                             N(\hat A_k=1) / N(A_k=1) & \text{otherwise} \end{cases}

    with :math:`\bar a_k` the training mean of attribute k and weighted test counts N.
    Below 1: the model under-predicts the rare value.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    train_mean : ndarray of shape (n_attributes,), in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        >= 0. ``nan`` where the test split has no sample of the rare value (N(A=.) = 0).
    """
    return train_class_balance_from_counts(_confusion_rows(y_true, y_pred, None, sample_weight),
                                           train_mean=train_mean)


def train_class_balance_from_counts(counts: SubgroupCounts, *, train_mean: np.ndarray) -> np.ndarray:
    """TCB from row ``all`` of the test rows' count table (:func:`~compress_gate.metrics.subgroup_counts`)
    and the training mean per attribute (:attr:`TrainCounts.mean`); formula: :func:`train_class_balance`.

    Parameters
    ----------
    counts : SubgroupCounts
        A count table of :func:`~compress_gate.metrics.subgroup_counts` (its row ``all`` is used),
        optionally with a leading resample axis; tables of shards add with ``+``.
    train_mean : ndarray of shape (n_attributes,), values in [0, 1]
        The share of positive training labels per attribute (:attr:`TrainCounts.mean`).

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        >= 0; ``nan`` where the counted class has no test sample.
    """
    c = counts.row(0)
    k = c.positives.shape[-1]
    mean = np.asarray(train_mean, dtype=np.float64)
    if mean.shape != (k,) or not np.all((mean >= 0) & (mean <= 1)):
        raise InputError(f"train_mean has shape {mean.shape} (or values outside [0, 1]); it must be ({k},): "
                         "the share of positive training labels per attribute.")
    rare_is_zero = mean > 0.5
    size = c.size[..., None]
    predicted = np.where(rare_is_zero, size - c.predicted, c.predicted)
    actual = np.where(rare_is_zero, size - c.positives, c.positives)
    return _ratio(predicted, actual)
