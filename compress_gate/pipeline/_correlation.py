"""Correlation across a sweep's students: Pearson and Spearman with n and the reason when undefined.

Used by the sweep to relate representation similarity (CKA, SVCCA) to bias (CEV, SDE,
the worst BA increase). With a handful of students a correlation says little: with
n = 3, |r| must exceed 0.997 for Pearson's two-sided p < 0.05, and Spearman's ρ takes only
the values ±1 and ±0.5; the p-value is reported beside r for that reason. Spearman's
p-value is exact (all n! orderings) for n <= 8, where scipy's t approximation is wrong
(it gives p = 0 for ρ = 1 at n = 3; the exact two-sided p is 1/3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_POINTS", "correlation", "is_defined"]

#: Fewest students with both values for a correlation to be computed at all.
MIN_POINTS = 3
_EXACT_UP_TO = 8


def is_defined(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _exact_spearman_p(x: Sequence[float], y: Sequence[float], rho: float) -> float:
    """Two-sided permutation p-value of Spearman's ρ: share of the n! orderings of y with |ρ| >= |rho|."""
    import itertools

    import numpy as np
    from scipy import stats

    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    perms = ry[np.array(list(itertools.permutations(range(len(ry)))))]
    rhos = perms @ rx / (np.linalg.norm(rx) * np.linalg.norm(ry))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))


def correlation(xs: Sequence[Any], ys: Sequence[Any]) -> dict[str, Any]:
    r"""Pearson's r and Spearman's ρ (scipy.stats) over the pairs where both values are defined.

    A pair is kept when both ``xs[i]`` and ``ys[i]`` are finite numbers (``None`` or ``nan``
    drops it); n is the number kept.

    Returns
    -------
    dict
        ``{"n", "pearson", "pearson_p", "spearman", "spearman_p", "reason"}`` (p-values
        two-sided; Spearman's exact for n <= 8). When
        n < 3, or either side is constant over the kept pairs, every statistic is ``None``
        (undefined, never 0) and ``reason`` says why; otherwise ``reason`` is ``None``.

    Examples
    --------
    >>> correlation([1, 2, 3], [2, 4, 7])["spearman"]
    1.0
    >>> correlation([1, 2], [3, 4])["reason"]
    'n = 2 students with both values; a correlation needs at least 3'
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs has {len(xs)} values and ys {len(ys)}; they must pair one to one")
    pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if is_defined(x) and is_defined(y)]
    n = len(pairs)
    out: dict[str, Any] = {"n": n, "pearson": None, "pearson_p": None, "spearman": None, "spearman_p": None,
                           "reason": None}
    if n < MIN_POINTS:
        out["reason"] = f"n = {n} students with both values; a correlation needs at least {MIN_POINTS}"
        return out
    x, y = [p[0] for p in pairs], [p[1] for p in pairs]
    constant = [name for name, values in (("x", x), ("y", y)) if max(values) == min(values)]
    if constant:
        out["reason"] = f"{' and '.join(constant)} constant over the {n} students: no variation to correlate"
        return out
    from scipy import stats

    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    rho = float(spearman[0])
    out.update(pearson=float(pearson[0]), pearson_p=float(pearson[1]), spearman=rho,
               spearman_p=_exact_spearman_p(x, y, rho) if n <= _EXACT_UP_TO else float(spearman[1]))
    return out
