"""Label interrelation: how much of each predicted attribute the others explain linearly."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_indicators, _check_sample_weight

__all__ = ["InterrelationCounts", "interrelation_counts", "label_interrelation", "label_interrelation_from_counts"]


@dataclass(frozen=True)
class InterrelationCounts:
    r"""The additive statistics of :func:`label_interrelation`: ``total`` () :math:`\sum_i w_i`,
    ``first`` (K,) :math:`\sum_i w_i \hat y_i` and ``raw`` (K, K) :math:`\sum_i w_i \hat y_i \hat y_i^\top`;
    integers (exact) for integer weights, merged by addition (``a + b``)."""

    total: np.ndarray
    first: np.ndarray
    raw: np.ndarray

    def __add__(self, other: InterrelationCounts) -> InterrelationCounts:
        return InterrelationCounts(self.total + other.total, self.first + other.first, self.raw + other.raw)


def interrelation_counts(y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None) -> InterrelationCounts:
    """The weighted first and second moments of the 0/1 predictions (:class:`InterrelationCounts`).

    Parameters
    ----------
    y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None or ndarray of shape (n_samples,)
    """
    x = _check_indicators(y_pred, "y_pred").astype(np.float64)
    n = x.shape[0]
    w = _check_sample_weight(sample_weight, n)
    if w is not None and w.ndim != 1:
        raise InputError(f"sample_weight has shape {w.shape}; label_interrelation takes one weight per "
                         f"sample, shape ({n},).")
    if w is None:
        return InterrelationCounts(np.asarray(float(n)), x.sum(axis=0), x.T @ x)
    w = w.astype(np.float64)
    return InterrelationCounts(np.asarray(float(w.sum())), w @ x, x.T @ (x * w[:, None]))


def label_interrelation(y_pred: np.ndarray, *, sample_weight: np.ndarray | None = None) -> np.ndarray:
    r"""In-sample R² of an ordinary least squares fit of each attribute's 0/1 predictions
    on the other attributes' 0/1 predictions (with an intercept), as Iofinova et al.
    compute it with scikit-learn's ``LinearRegression().score``.

    .. math:: R^2_k = 1 - \frac{\sum_i w_i (\hat y_{ik} - \hat f_k(\hat y_{i,-k}))^2}
                              {\sum_i w_i (\hat y_{ik} - \bar{\hat y}_k)^2}

    Computed from the weighted, centred Gram matrix :math:`C = X_c^\top W X_c` (one matrix
    product over the samples): the fit of column k solves
    :math:`C_{-k,-k}\,\beta = C_{-k,k}` (pseudo-inverse, so collinear or constant
    regressors are fine) and :math:`R^2_k = \beta^\top C_{-k,k} / C_{kk}`, clipped to
    [0, 1] against rounding.

    Parameters
    ----------
    y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    sample_weight : None or ndarray of shape (n_samples,)

    Returns
    -------
    ndarray of shape (n_attributes,)
        In [0, 1]. ``nan`` for an attribute whose predictions are constant (no variance
        to explain) and for every attribute when the total weight is 0. With a single
        attribute there is nothing to regress on: R² = 0.
    """
    return label_interrelation_from_counts(interrelation_counts(y_pred, sample_weight=sample_weight))


def label_interrelation_from_counts(counts: InterrelationCounts) -> np.ndarray:
    """R² per attribute from :func:`interrelation_counts` (formula and edge cases: :func:`label_interrelation`).

    Parameters
    ----------
    counts : InterrelationCounts
        The moment sums of :func:`interrelation_counts` (total weight, first moments, Gram matrix).

    Returns
    -------
    ndarray of shape (n_attributes,)
        R² in [0, 1]; ``nan`` when the total weight is 0 or the attribute's predictions are constant.
    """
    total, first, raw = float(counts.total), counts.first, counts.raw
    k = first.shape[0]
    if total <= 0:
        return np.full(k, np.nan)
    gram = raw - np.outer(first, first) / total                                 # centred, (K, K)
    index = np.nonzero(~np.eye(k, dtype=bool))[1].reshape(k, k - 1)             # the other columns
    sub = gram[index[:, :, None], index[:, None, :]]                            # (K, K-1, K-1)
    cross = gram[index, np.arange(k)[:, None]]                                  # (K, K-1)
    beta = (np.linalg.pinv(sub, rcond=1e-10, hermitian=True) @ cross[..., None])[..., 0] if k > 1 else cross
    explained = (beta * cross).sum(axis=1)
    variance = np.diag(gram)
    constant = variance <= 1e-12 * total
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.clip(explained / np.where(constant, 1.0, variance), 0.0, 1.0)
    return np.where(constant, np.nan, r2)
