"""Bootstrap over test samples: resample-count weight matrices and percentile intervals.

A resample of n samples drawn with replacement is represented by its count vector
(how often each sample was drawn). Passing a (B, n) matrix of such counts as
``sample_weight`` makes every count-based metric return B resampled values at once,
as matrix products, without copying any data.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_confidence
from compress_gate.metrics._counts import _register_memo

__all__ = ["DEFAULT_CHUNK_BYTES", "bootstrap_weights", "percentile_interval"]

DEFAULT_CHUNK_BYTES = 512 * 2**20      # float32 weights of one chunk when chunk_size is None
_BLOCK = 1 << 16                       # samples per block of the two-level draw (uint16 draws)


def _draw_counts(rng: np.random.Generator, n_samples: int, out: np.ndarray, edges: np.ndarray) -> None:
    """Write one multinomial(n, uniform) count vector into ``out`` (n,).

    Two levels, exactly the same distribution as n uniform draws: the number of draws
    landing in each block of ``_BLOCK`` samples is multinomial(n, block size / n); within
    a block, that many uniform draws are counted (bincount on a cache-sized array).
    """
    sizes = np.diff(edges)
    per_block = rng.multinomial(n_samples, sizes / n_samples)
    for j, size in enumerate(sizes):
        draws = rng.integers(0, size, size=per_block[j], dtype=np.uint16)
        out[edges[j]:edges[j + 1]] = np.bincount(draws.astype(np.intp), minlength=size)


def bootstrap_weights(n_samples: int, *, n_resamples: int, seed: int,
                      chunk_size: int | None = None) -> Iterator[np.ndarray]:
    r"""Bootstrap resample counts, ``chunk_size`` resamples at a time.

    Resample r draws ``n_samples`` indices uniformly with replacement; row r of the
    yielded matrix holds how often each sample was drawn (:math:`\sum_i w_{ri} = n`),
    so ``sample_weight=weights`` gives the metric on each resample. Resamples are drawn
    one after another from one generator seeded with ``seed``: the same seed gives the
    same resamples whatever ``chunk_size`` is.

    Parameters
    ----------
    n_samples : int, >= 1
    n_resamples : int, >= 1
    seed : int
    chunk_size : int, default=None
        Resamples per yielded matrix; None picks the largest that keeps one matrix under
        ``DEFAULT_CHUNK_BYTES`` (512 MiB). Larger chunks mean fewer, larger matrix
        products in the metrics (faster), and more memory.

    Yields
    ------
    ndarray of shape (b, n_samples), float32, read-only, b <= chunk_size; the b sum to
        n_resamples. Counts are integers, exact in float32. While a matrix lives, the
        metrics memoize the count tables they compute from it, keyed by the identity
        of their input arrays: do not modify those arrays in place between calls that
        pass the same weight matrix.
    """
    n, total = int(n_samples), int(n_resamples)
    if n < 1 or total < 1:
        raise InputError(f"bootstrap needs n_samples >= 1 and n_resamples >= 1; got n_samples={n_samples}, "
                         f"n_resamples={n_resamples}. An empty test split cannot be resampled.")
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_BYTES // (4 * n)
    chunk = max(1, min(total, int(chunk_size)))
    edges = np.unique(np.append(np.arange(0, n, _BLOCK), n))
    rng = np.random.default_rng(seed)
    for start in range(0, total, chunk):
        weights = np.empty((min(chunk, total - start), n), dtype=np.float32)
        for row in weights:                 # one resample per row, each drawn vectorized
            _draw_counts(rng, n, row, edges)
        _register_memo(weights, row_total=n)
        yield weights


def percentile_interval(samples: np.ndarray, *, confidence: float = 0.95,
                        axis: int = 0) -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    r"""Two-sided bootstrap percentile interval, ignoring ``nan`` resamples.

    .. math:: [\,q_{\alpha/2},\ q_{1-\alpha/2}\,],\qquad \alpha = 1 - \text{confidence}

    with :math:`q` the (linearly interpolated) percentiles of the finite-or-infinite,
    non-``nan`` values along ``axis``.

    Parameters
    ----------
    samples : ndarray
        Resampled values, resamples along ``axis``.
    confidence : float in (0, 1), default=0.95
    axis : int, default=0

    Returns
    -------
    (lo, hi)
        floats for 1-D ``samples``, else arrays without ``axis``. ``nan`` where every
        value is ``nan`` (or there are none).

    Examples
    --------
    >>> percentile_interval(np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0]), confidence=0.5)
    (2.0, 4.0)
    """
    level = _check_confidence(confidence)
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim == 0:
        raise InputError("samples must hold at least one axis of resampled values.")
    alpha = 100.0 * (1.0 - level) / 2.0
    if values.shape[axis] == 0:
        lo = hi = np.full(np.delete(values.shape, axis), np.nan)
    else:
        with warnings.catch_warnings():     # all-nan slices: nan, documented
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanpercentile(values, [alpha, 100.0 - alpha], axis=axis)
    if values.ndim == 1:
        return float(lo), float(hi)
    return lo, hi
