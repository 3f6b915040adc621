r"""Poisson bootstrap with counter-based weights: the resamples do not depend on how the data is split.

Why the gate uses it, not the multinomial bootstrap
---------------------------------------------------
The gate draws its resamples here (since issue 12). The multinomial bootstrap
(:func:`compress_gate.metrics.bootstrap_weights`, kept for analyses of one array in memory)
draws resample r as n indices with replacement from one generator: row r of the (B, n)
weight matrix is a multinomial(n, 1/n) count vector. Every count depends on the whole
data set at once (the n counts of a row sum to n, and are drawn in row order from one
stream), so the resamples change when the rows are reordered, split into shards, or
spread over workers: a gate that reads 37 shards cannot reproduce the one-file result.

The Poisson bootstrap (Hanley & MacGibbon 2006; Chamandy et al. 2012, "Estimating
uncertainty for massive data streams") gives each sample an independent
Poisson(1) count per resample instead. For large n, multinomial(n, 1/n) counts are
almost independent Poisson(1) variables, and the percentile intervals agree to within
the bootstrap's own noise (see ``tests/test_metrics_poisson_bootstrap.py`` for the
coverage check). Its resample sizes vary, :math:`\sum_i w_{ri} \sim
\mathrm{Poisson}(n)`, which the count-based metrics handle as they handle any weights
(they divide by weighted totals).

Counter-based weights
---------------------
The weight of (sample, resample) is a pure function of three keys, computed with the
SplitMix64 finaliser :math:`\mathrm{mix}` (a bijection of 64-bit integers, Steele et
al. 2014) in wrapping uint64 arithmetic:

- :math:`h_i` = :func:`hash_ids` of the sample id string: starting from a constant,
  :math:`h \leftarrow \mathrm{mix}(h \oplus c_j)` over the id's Unicode code points
  :math:`c_j`, then :math:`h \leftarrow \mathrm{mix}(h \oplus \mathrm{len})`;
- :math:`k_r = \mathrm{mix}(\mathrm{mix}(s) + (r + 1)\,\gamma)` for seed s (taken mod
  :math:`2^{64}`) and resample r, :math:`\gamma` = 0x9E3779B97F4A7C15 (SplitMix64's
  increment);
- :math:`x_{ri} = \mathrm{mix}(\mathrm{mix}(h_i \oplus k_r) + \gamma)`,
  :math:`u_{ri} = \lfloor x_{ri} / 2^{11} \rfloor \cdot 2^{-53} \in [0, 1)`, and
  :math:`w_{ri} = F^{-1}(u_{ri}) = \#\{k : F(k) \le u_{ri}\}` with F the Poisson(1) CDF
  (the inverse-CDF draw: :math:`P(w = k) = e^{-1}/k!`).

So a shard computes the weights of its own rows and nothing else, and the weights of an
id are bit-identical in 1 shard or 37, in any order, on any worker. Teacher and student
rows of one sample share its id, hence its weights in every resample (a paired
bootstrap, as before). Two ids share all weights only if their 64-bit hashes collide
(probability about :math:`n^2 / 2^{65}`: 3e-6 for :math:`n = 10^7`).

Edge cases: an empty id array gives a (B, 0) matrix; ids are compared as the strings
they are (``"7"`` and ``7`` are the same id, as the data loaders read them); an empty
id string is refused, as the loaders refuse it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from math import exp, factorial

import numpy as np

from compress_gate._id_hash import GAMMA as _GAMMA
from compress_gate._id_hash import M1 as _M1
from compress_gate._id_hash import M2 as _M2
from compress_gate._id_hash import hash_ids, mix as _mix
from compress_gate.errors import InputError
from compress_gate.metrics._counts import _register_memo

__all__ = ["hash_ids", "poisson_weights", "poisson_weight_chunks"]

_MASK64 = (1 << 64) - 1
_BLOCK = 1 << 15                               # samples per block: the uint64 work arrays stay in cache
_CHUNK_BYTES = 512 * 2**20                     # float32 weights per chunk, as metrics.bootstrap
# Poisson(1) CDF F(0), F(1), ... while below 1 in float64, as integer thresholds on the 53-bit
# uniform v = x >> 11: u = v 2^-53 >= F(k)  <=>  v >= ceil(F(k) 2^53) (F(k) 2^53 is exact in float64).
_CDF = np.cumsum([exp(-1.0) / factorial(k) for k in range(30)])
_THRESHOLDS = np.ceil(_CDF[_CDF < 1.0] * 2.0 ** 53).astype(np.uint64)
_TABLE_SHIFT = 51                              # x >> 51 = v >> 40: the top 13 of v's 53 bits


def _count_table() -> np.ndarray:
    """Entry j: the count F^{-1} of every v in [j 2^40, (j + 1) 2^40) when no threshold lies inside
    that range, else -1 (7 of the 8192 entries, near u = 1: such v are counted by searchsorted)."""
    starts = np.arange(1 << 13, dtype=np.uint64) << np.uint64(40)
    first = np.searchsorted(_THRESHOLDS, starts, side="right")
    last = np.searchsorted(_THRESHOLDS, starts + np.uint64((1 << 40) - 1), side="right")
    return np.where(first == last, first, -1).astype(np.float32)


_TABLE = _count_table()


def _mix_inplace(x: np.ndarray, tmp: np.ndarray) -> None:
    """:func:`compress_gate._id_hash.mix` of ``x`` in place (``tmp``: scratch of the same shape)."""
    for shift, multiplier in ((30, _M1), (27, _M2), (31, None)):
        np.right_shift(x, np.uint64(shift), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
        if multiplier is not None:
            np.multiply(x, multiplier, out=x)


def _inverse_cdf(x: np.ndarray, tmp: np.ndarray, out: np.ndarray) -> None:
    """``out`` = :math:`F^{-1}(u)` for the mixed values ``x`` (:math:`v = x >> 11`, ``tmp``: scratch):
    ``searchsorted(_THRESHOLDS, v, side="right")``, looked up in ``_TABLE`` (about 5x faster)."""
    np.right_shift(x, np.uint64(_TABLE_SHIFT), out=tmp)
    np.take(_TABLE, tmp.view(np.int64), out=out)
    rare = np.flatnonzero(out < 0)
    if rare.size:
        out[rare] = np.searchsorted(_THRESHOLDS, x[rare] >> np.uint64(11), side="right")


def _resample_keys(seed: int, start: int, count: int) -> np.ndarray:
    seed_key = _mix(np.array([int(seed) & _MASK64], dtype=np.uint64))
    counters = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix(seed_key + counters * _GAMMA)


def poisson_weights(id_hash: np.ndarray, *, seed: int, n_resamples: int, start: int = 0) -> np.ndarray:
    r"""Poisson(1) bootstrap counts of resamples ``start .. start + n_resamples - 1`` for hashed ids.

    :math:`w_{ri} = F^{-1}(u_{ri})`, F the Poisson(1) CDF, with
    :math:`u_{ri} = \lfloor \mathrm{mix}(\mathrm{mix}(h_i \oplus k_r) + \gamma) / 2^{11} \rfloor \cdot 2^{-53}`
    and :math:`k_r = \mathrm{mix}(\mathrm{mix}(\text{seed}) + (r + 1)\gamma)` (SplitMix64): each
    entry depends only on (seed, ``id_hash[i]``, r), never on the other rows, so the
    weights of a shard are the columns of the whole data set's weights for its ids.

    Parameters
    ----------
    id_hash : ndarray of shape (n_samples,), uint64, from :func:`hash_ids`
    seed : int (any Python int; taken mod 2**64)
    n_resamples : int, >= 0
    start : int, >= 0, index of the first resample

    Returns
    -------
    ndarray of shape (n_resamples, n_samples), float32
        Non-negative integer counts (exact in float32); mean and variance 1 per entry.
        Drawn by up to :func:`_threads` threads, each a run of the resamples (the same
        weights whatever the number of threads).

    Examples
    --------
    >>> w = poisson_weights(hash_ids(np.array(["a", "b"])), seed=0, n_resamples=3)
    >>> w.shape, w.dtype.name
    ((3, 2), 'float32')
    """
    hashes = np.asarray(id_hash)
    if hashes.dtype != np.uint64 or hashes.ndim != 1:
        raise InputError(f"id_hash must be a 1-D uint64 array from hash_ids(ids); got dtype {hashes.dtype}, "
                         f"shape {hashes.shape}.")
    if int(n_resamples) < 0 or int(start) < 0:
        raise InputError(f"n_resamples = {n_resamples} and start = {start} must be >= 0.")
    keys = _resample_keys(seed, int(start), int(n_resamples))
    out = np.empty((keys.size, hashes.size), dtype=np.float32)
    step = max(1, -(-keys.size // _threads()))               # resamples per thread
    parts = [slice(r0, r0 + step) for r0 in range(0, keys.size, step)]
    if len(parts) > 1 and hashes.size >= _BLOCK:          # NumPy releases the GIL in these loops
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(lambda rows: _fill(hashes, keys[rows], out[rows]), parts))
    else:
        _fill(hashes, keys, out)
    return out


def _threads() -> int:
    """Threads that draw one chunk of weights (each a run of its resamples): the CPUs this process may
    use, at most ``OMP_NUM_THREADS`` when set (Ray sets it to a task's CPUs), at most 4."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cpus, 4, int(limit) if limit.isdigit() and int(limit) > 0 else cpus))


def _fill(hashes: np.ndarray, keys: np.ndarray, out: np.ndarray) -> None:
    r"""Fill ``out[r, i]`` with the Poisson(1) weight of sample hash ``hashes[i]`` in resample key ``keys[r]``.

    :math:`x = \mathrm{mix}(\mathrm{mix}(h_i \oplus k_r) + \gamma)` in wrapping uint64, then the
    inverse Poisson(1) CDF of :math:`u = \lfloor x / 2^{11} 
floor \cdot 2^{-53}`. Works on
    blocks of ``_BLOCK`` hashes with preallocated temporaries (loops over blocks and resamples,
    never over samples); ``out`` has shape (len(keys), len(hashes)).
    """
    x, tmp = np.empty(_BLOCK, np.uint64), np.empty(_BLOCK, np.uint64)
    for c0 in range(0, hashes.size, _BLOCK):   # loops over blocks and resamples, never over samples
        block = hashes[c0:c0 + _BLOCK]
        xv, tv = x[:block.size], tmp[:block.size]
        for r, key in enumerate(keys):
            np.bitwise_xor(block, key, out=xv)
            _mix_inplace(xv, tv)
            np.add(xv, _GAMMA, out=xv)
            _mix_inplace(xv, tv)
            _inverse_cdf(xv, tv, out[r, c0:c0 + block.size])


def poisson_weight_chunks(id_hash: np.ndarray, *, seed: int, n_resamples: int,
                          chunk_size: int | None = None) -> Iterator[np.ndarray]:
    """:func:`poisson_weights` of resamples 0 .. ``n_resamples`` - 1, ``chunk_size`` rows at a time.

    The chunks concatenate to ``poisson_weights(id_hash, seed=seed, n_resamples=n_resamples)``
    whatever ``chunk_size`` is; None keeps one float32 chunk under 512 MiB. Each chunk is
    read-only and registered with the metrics' memo (as :func:`~compress_gate.metrics.bootstrap_weights`'s
    are): the count tables computed from it are shared by every metric while it lives.
    """
    total = int(n_resamples)
    if total < 1:
        raise InputError(f"n_resamples = {n_resamples}; the bootstrap needs at least 1 resample.")
    n = max(int(np.asarray(id_hash).size), 1)
    chunk = max(1, min(total, int(chunk_size) if chunk_size is not None else _CHUNK_BYTES // (4 * n)))
    for start in range(0, total, chunk):
        weights = poisson_weights(id_hash, seed=seed, n_resamples=min(chunk, total - start), start=start)
        _register_memo(weights, row_total=weights.sum(axis=1, dtype=np.float64))
        yield weights
