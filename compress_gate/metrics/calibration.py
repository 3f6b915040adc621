"""How sure and how well calibrated a model's scores are: uncertainty share and ECE."""

from __future__ import annotations

import numpy as np

from compress_gate.metrics._checks import _check_indicators, _check_sample_weight, _check_scores
from compress_gate.metrics._counts import _column_sums, _ratio, _total_weight

__all__ = ["N_BINS", "uncertainty", "expected_calibration_error"]

N_BINS = 10
_UNCERTAIN_LOW, _UNCERTAIN_HIGH = 0.1, 0.9


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
    s = _check_scores(y_score)
    n, k = s.shape
    w = _check_sample_weight(sample_weight, n)
    inside = _column_sums(lambda rows: (s[rows] > _UNCERTAIN_LOW) & (s[rows] < _UNCERTAIN_HIGH), n, k, w)
    return _ratio(inside, np.asarray(_total_weight(w, n))[..., None])


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
    With resample weights (B, n) the per-bin sums are one matrix product with 10
    columns per attribute (the costly metric to bootstrap); otherwise a weighted bincount.

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
    t = _check_indicators(y_true, "y_true")
    n, k = t.shape
    s = _check_scores(y_score, n_samples=n, n_attributes=k)
    w = _check_sample_weight(sample_weight, n)

    offsets = np.arange(k) * N_BINS
    if w is None or w.ndim == 1:            # one weighting: a weighted bincount over (attribute, bin)
        gap = s.astype(np.float64) - t
        if w is not None:
            gap *= w[:, None]
        per_bin = np.bincount((_bin_of(s) + offsets).ravel(), weights=gap.ravel(), minlength=k * N_BINS)
        return _ratio(np.abs(per_bin.reshape(k, N_BINS)).sum(axis=1), np.full(k, _total_weight(w, n)))
    dtype = np.float32 if w.dtype == np.float32 else np.float64

    def build(rows: slice) -> np.ndarray:
        gap = s[rows].astype(dtype) - t[rows]
        block = np.zeros((gap.shape[0], k * N_BINS), dtype=dtype)
        columns = _bin_of(s[rows]) + offsets
        np.put_along_axis(block, columns, gap, axis=1)
        return block
    per_bin = _column_sums(build, n, k * N_BINS, w)
    gaps = np.abs(per_bin.reshape(per_bin.shape[:-1] + (k, N_BINS))).sum(axis=-1)
    return _ratio(gaps, np.asarray(_total_weight(w, n))[..., None])
