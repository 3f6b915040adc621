"""The counting primitive of the metrics: weighted column sums, block by block.

Every count-based metric is ``weights @ X`` for a matrix ``X`` of per-sample indicators
(or per-sample values), one column per count it needs. ``X`` is built a block of rows
at a time, so memory stays bounded for any number of samples, and with bootstrap
weights of shape (B, n) each block is one BLAS matrix product for all B resamples.

Weight matrices made by :func:`compress_gate.metrics.bootstrap_weights` (and by
:func:`~compress_gate.metrics.poisson_bootstrap.poisson_weight_chunks`) are read-only
and registered here with a memo: count tables computed from them are kept (keyed by
the identity of the input arrays) for as long as the matrix lives, so the metrics of
one resample chunk share their matrix products.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

_BLOCK_BYTES = 8 * 2**20        # one block of X in float32
_MEMOS: dict[int, tuple[weakref.ref, dict]] = {}


def _register_memo(weights: np.ndarray, row_total: float | np.ndarray) -> None:
    """Make ``weights`` read-only and give it a memo that lives as long as it does;
    ``row_total`` is what every row sums to (n for multinomial bootstrap counts; a (B,)
    array of the row sums for Poisson counts)."""
    weights.flags.writeable = False
    key = id(weights)
    total = np.broadcast_to(np.asarray(row_total, dtype=np.float64), (weights.shape[0],)).copy()
    _MEMOS[key] = (weakref.ref(weights), {("total",): ((), total)})
    weakref.finalize(weights, _MEMOS.pop, key, None)


def _memo_of(weights: object) -> dict | None:
    """The memo of a registered weight matrix, else None."""
    entry = _MEMOS.get(id(weights))
    if entry is None or entry[0]() is not weights:
        return None
    return entry[1]


def _block_rows(n_columns: int) -> int:
    return max(1024, _BLOCK_BYTES // (4 * max(n_columns, 1)))


def _column_sums(build: Callable[[slice], np.ndarray], n_samples: int, n_columns: int,
                 weights: np.ndarray | None, bounds: np.ndarray | None = None,
                 dtype: type | None = None) -> np.ndarray:
    r"""Weighted column sums :math:`S_{bj} = \sum_i w_{bi} X_{ij}` of ``X = build(rows)``.

    ``build(rows)`` returns the (rows, n_columns) block of X for a slice of samples.
    Returns float64 of shape (n_columns,) for ``weights`` None (unit weights) or (n,),
    and (B, n_columns) for (B, n). With ``bounds`` (U + 1 increasing offsets, samples
    sorted by unit) the sums are per unit: shape (..., U, n_columns). float32 weights
    multiply in float32 (exact for integer resample counts while a block's sums stay
    below 2**24), anything else in float64; ``dtype=np.float64`` forces float64 products
    (exact for integer weights and values while a block's sums stay below 2**53); blocks
    accumulate in float64.
    """
    per_unit = bounds is not None
    if bounds is None:
        bounds = np.array([0, n_samples])
    n_units = len(bounds) - 1
    two_d = weights is not None and weights.ndim == 2
    lead = (weights.shape[0],) if two_d else ()
    out = np.zeros(lead + (n_units, n_columns), dtype=np.float64)
    if dtype is None:
        dtype = np.float32 if weights is not None and weights.dtype == np.float32 else np.float64
    step = _block_rows(n_columns)
    for unit in range(n_units):
        for start in range(int(bounds[unit]), int(bounds[unit + 1]), step):
            rows = slice(start, min(start + step, int(bounds[unit + 1])))
            block = build(rows)
            if weights is None:
                out[..., unit, :] += (np.count_nonzero(block, axis=0) if block.dtype == bool
                                      else block.sum(axis=0, dtype=np.float64))
            else:
                out[..., unit, :] += weights[..., rows].astype(dtype, copy=False) @ block.astype(dtype, copy=False)
    return out if per_unit else out[..., 0, :]


def _total_weight(weights: np.ndarray | None, n_samples: int) -> np.ndarray | float:
    """Σ_i w_i: a float (None or (n,)) or (B,) float64 (memoized for registered weights)."""
    if weights is None:
        return float(n_samples)
    if weights.ndim == 1:
        return float(weights.sum(dtype=np.float64))
    memo = _memo_of(weights)
    if memo is not None and ("total",) in memo:
        return memo[("total",)][1]
    total = weights.sum(axis=1, dtype=np.float64)
    if memo is not None:
        memo[("total",)] = ((), total)     # memo entries: key -> (the objects keyed on, value)
    return total


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with ``nan`` where the denominator is 0 (no warning)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)
