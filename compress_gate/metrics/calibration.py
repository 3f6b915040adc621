"""How sure and how well calibrated a model's scores are: uncertainty share and ECE.

Each metric is finished from additive counts (:func:`uncertainty_counts`,
:func:`calibration_counts`) that merge by addition across shards of samples. ECE's bin
sums hold scores in fixed point, as integer multiples of :data:`SCORE_UNIT` (2**-24), so
with integer weights every sum is an integer and a merged table is exact: it does not
depend on how the samples were split or in which order the parts were added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.metrics._checks import _check_indicators, _check_sample_weight, _check_scores
from compress_gate.metrics._counts import _column_sums, _ratio, _total_weight

__all__ = ["N_BINS", "SCORE_UNIT", "CalibrationCounts", "UncertaintyCounts", "calibration_counts",
           "expected_calibration_error", "expected_calibration_error_from_counts", "uncertainty",
           "uncertainty_counts", "uncertainty_from_counts"]

N_BINS = 10
#: ECE's fixed-point unit: a score p enters the bin sums as round(p / SCORE_UNIT) (error <= 2**-25).
SCORE_UNIT = 2.0 ** -24
_UNCERTAIN_LOW, _UNCERTAIN_HIGH = 0.1, 0.9


@dataclass(frozen=True)
class UncertaintyCounts:
    """``total`` (...,) weight of the samples and ``uncertain`` (..., K) weight of the scores
    inside (0.1, 0.9); merge by addition (``a + b``)."""

    total: np.ndarray
    uncertain: np.ndarray

    def __add__(self, other: UncertaintyCounts) -> UncertaintyCounts:
        return UncertaintyCounts(self.total + other.total, self.uncertain + other.uncertain)


@dataclass(frozen=True)
class CalibrationCounts:
    r"""ECE's bin sums: ``total`` (...,) :math:`\sum_i w_i` and ``gap`` (..., K, 10)
    :math:`G_{kb} = \sum_{i \in b} w_i (q_{ik} - y_{ik} / u)`, with :math:`q = \mathrm{round}(p / u)`
    and :math:`u` = :data:`SCORE_UNIT`. With integer weights every entry is an integer
    (exact in float64 below 2**53: a shard's total weight below 2**29 ≈ 5.4e8 samples, and
    the merged total below 2**29 as well), so sums merge exactly, in any order (``a + b``)."""

    total: np.ndarray
    gap: np.ndarray

    def __add__(self, other: CalibrationCounts) -> CalibrationCounts:
        return CalibrationCounts(self.total + other.total, self.gap + other.gap)


def uncertainty_counts(y_score: np.ndarray, *, sample_weight: np.ndarray | None = None) -> UncertaintyCounts:
    r"""The additive counts of :func:`uncertainty`: :math:`\sum_i w_i` and
    :math:`\sum_i w_i [0.1 < s_{ik} < 0.9]` per attribute.

    Parameters
    ----------
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples), default=None
    """
    s = _check_scores(y_score)
    n, k = s.shape
    w = _check_sample_weight(sample_weight, n)
    inside = _column_sums(lambda rows: (s[rows] > _UNCERTAIN_LOW) & (s[rows] < _UNCERTAIN_HIGH), n, k, w)
    return UncertaintyCounts(total=np.asarray(_total_weight(w, n), dtype=np.float64), uncertain=inside)


def uncertainty_from_counts(counts: UncertaintyCounts) -> np.ndarray:
    """Uncertain share per attribute from :func:`uncertainty_counts`; ``nan`` when the total weight is 0.

    Parameters
    ----------
    counts : UncertaintyCounts
        The counts of :func:`uncertainty_counts` (additive across shards).

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]; ``nan`` when the total weight is 0.
    """
    return _ratio(counts.uncertain, np.broadcast_to(counts.total[..., None], counts.uncertain.shape))


def uncertainty(y_score: np.ndarray, *, sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""Share of uncertain scores per attribute: scores strictly inside (0.1, 0.9).

    .. math:: u_k = \sum_i w_i [0.1 < s_{ik} < 0.9] \,/\, \sum_i w_i

    (Iofinova et al.'s :math:`|p - 0.5| < 0.4`.) A score of exactly 0.1 or 0.9 is certain.

    Parameters
    ----------
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` when the total weight is 0 (no samples).

    Examples
    --------
    >>> uncertainty(np.array([[0.1], [0.5], [0.95], [0.89]]))
    array([0.5])
    """
    return uncertainty_from_counts(uncertainty_counts(y_score, sample_weight=sample_weight))


def _bin_of(scores: np.ndarray) -> np.ndarray:
    """Bin index floor(10 p), with p = 1 in the top bin (9); computed in float64."""
    return np.minimum(np.floor(scores.astype(np.float64) * N_BINS), N_BINS - 1).astype(np.intp)


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, *,
                               sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""Expected calibration error per binary attribute, as Iofinova et al. compute it.

    On the positive-class probability p, bin b holds the samples with
    :math:`\lfloor 10p \rfloor = b` (p = 1 goes in the top bin, b = 9), and

    .. math:: \mathrm{ECE}_k = \sum_b \frac{n_b}{n} \left| \overline{p}_b - \overline{y}_b \right|
              = \frac{1}{\sum_i w_i} \sum_b \Bigl| \sum_{i \in b} w_i (p_{ik} - y_{ik}) \Bigr|

    with weighted bin sizes :math:`n_b` and means; an empty bin adds 0. Multi-class:
    one-vs-rest per class (p = the class's softmax score, y = its one-hot column).
    This is :func:`expected_calibration_error_from_counts` of :func:`calibration_counts`:
    p enters the bin sums in fixed point, rounded to a multiple of 2**-24, so the value
    may differ from the exact real-number formula by at most 2**-25 (3e-8), and is the
    same however the samples are split into shards.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]. ``nan`` when the total weight is 0 (no samples).

    Examples
    --------
    >>> expected_calibration_error(np.array([[1], [0]]), np.array([[0.8], [0.8]]))
    array([0.3])
    """
    return expected_calibration_error_from_counts(calibration_counts(y_true, y_score, sample_weight=sample_weight))


def calibration_counts(y_true: np.ndarray, y_score: np.ndarray, *,
                       sample_weight: np.ndarray | None = None) -> CalibrationCounts:
    r"""ECE's additive bin sums (:class:`CalibrationCounts`).

    Bin b of attribute k holds the samples with :math:`\lfloor 10 p_{ik} \rfloor = b` (p = 1
    in bin 9, binned on the score itself); the score enters as the integer
    :math:`q = \mathrm{round}(p \cdot 2^{24})`. With (B, n) weights the sums are one
    float64 matrix product per block with 10 columns per attribute (exact: every partial
    sum is an integer below 2**53); otherwise a weighted bincount.

    Parameters
    ----------
    y_true : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_score : ndarray of shape (n_samples, n_attributes), probabilities in [0, 1]
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples), default=None
    """
    t = _check_indicators(y_true, "y_true")
    n, k = t.shape
    s = _check_scores(y_score, n_samples=n, n_attributes=k)
    w = _check_sample_weight(sample_weight, n)
    total = np.asarray(_total_weight(w, n), dtype=np.float64)
    offsets = np.arange(k) * N_BINS

    def gap_of(rows: slice) -> np.ndarray:            # q - y / u, integers in [-2**24, 2**24]
        return np.rint(s[rows].astype(np.float64) / SCORE_UNIT) - t[rows] / SCORE_UNIT
    if w is None or w.ndim == 1:            # one weighting: a weighted bincount over (attribute, bin)
        gap = gap_of(slice(0, n))
        if w is not None:
            gap *= w[:, None]
        per_bin = np.bincount((_bin_of(s) + offsets).ravel(), weights=gap.ravel(), minlength=k * N_BINS)
        return CalibrationCounts(total=total, gap=per_bin.reshape(k, N_BINS))

    def build(rows: slice) -> np.ndarray:
        gap = gap_of(rows)
        block = np.zeros((gap.shape[0], k * N_BINS), dtype=np.float64)
        np.put_along_axis(block, _bin_of(s[rows]) + offsets, gap, axis=1)
        return block
    per_bin = _column_sums(build, n, k * N_BINS, w, dtype=np.float64)
    return CalibrationCounts(total=total, gap=per_bin.reshape(per_bin.shape[:-1] + (k, N_BINS)))


def expected_calibration_error_from_counts(counts: CalibrationCounts) -> np.ndarray:
    r"""ECE per attribute from its bin sums: :math:`\sum_b |G_{kb}| \cdot u / \sum_i w_i`
    (:class:`CalibrationCounts`); ``nan`` when the total weight is 0.

    Parameters
    ----------
    counts : CalibrationCounts
        The bin sums of :func:`calibration_counts` (fixed-point, additive across shards).

    Returns
    -------
    ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        In [0, 1]; ``nan`` when the total weight is 0.
    """
    gaps = np.abs(counts.gap).sum(axis=-1) * SCORE_UNIT
    return _ratio(gaps, np.broadcast_to(counts.total[..., None], gaps.shape))
