r"""Score intervals and tests for rates and paired differences of rates, from counts.

The gate judges a rate (a student's FNR in a group) or the paired change of a rate (the
student's FNR minus the teacher's, on the same rows) per unit. Both have closed-form score
statistics that stay valid where a bootstrap is degenerate (no discordant row: every
resample gives the same value) or small:

- **Wilson** (1927) for one proportion :math:`x/n`: the score statistic
  :math:`z(p_0) = (x - n p_0) / \sqrt{n p_0 (1 - p_0)}` and its inversion, the Wilson
  interval.
- **Tango** (1998) for the difference of two *paired* proportions (Newcombe's paired
  method 10 is its continuity-free sibling; Tango's is the score interval): with ``n`` pairs,
  ``b`` pairs where only the first member (the student) has the event and ``c`` where only
  the second (the teacher) has it, :math:`\hat\Delta = (b - c)/n` and

  .. math:: z(\Delta_0) = \frac{b - c - n\Delta_0}{\sqrt{n\,(2\tilde q + \Delta_0 (1 - \Delta_0))}},

  where :math:`\tilde q` is the maximum-likelihood estimate of the share of pairs where only
  the teacher has the event under :math:`\Delta = \Delta_0`, the positive root of
  :math:`2n q^2 + W q - c\,\Delta_0(1 - \Delta_0) = 0` with
  :math:`W = -b - c + (2n - b + c)\Delta_0`. The interval is
  :math:`\{\Delta_0 : |z(\Delta_0)| \le z_{1-\alpha}\}`; its ends solve
  :math:`z(\Delta_0) = \mp z_{1-\alpha}` (:math:`z` decreases in :math:`\Delta_0`; solved by
  vectorized bisection to 1e-12).

Every function takes arrays (one value per unit) and is vectorized; the bounds are
*one-sided* at level ``alpha`` each (a two-sided interval at confidence 1 − 2α has them
as its ends). ``n = 0`` gives ``nan`` (nothing measured). Neither interval has zero width
for ``n >= 1``: at 0 events the Wilson upper bound is :math:`z^2/(n + z^2)`, and with no
discordant pair Tango's bounds are :math:`\pm z^2/(n + z^2)`.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

__all__ = ["normal_quantile", "normal_sf", "wilson_z", "wilson_bounds", "paired_difference_z",
           "paired_difference_bounds"]

_BISECTIONS = 48          # [-1, 1] halved 48 times: 2**-47 < 1e-14


def normal_quantile(p: float) -> float:
    """The standard normal quantile :math:`\\Phi^{-1}(p)` for ``0 < p < 1``."""
    return NormalDist().inv_cdf(p)


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def normal_sf(z: np.ndarray | float) -> np.ndarray:
    r"""Upper tail :math:`1 - \Phi(z) = \operatorname{erfc}(z/\sqrt 2)/2`, elementwise; ±inf give 0 and 1."""
    z = np.asarray(z, dtype=np.float64)
    return (0.5 * _ERFC(z / math.sqrt(2.0))).astype(np.float64)


def _as_float(*arrays: np.ndarray | float) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(a, dtype=np.float64) for a in np.broadcast_arrays(*arrays))


def wilson_z(x: np.ndarray, n: np.ndarray, p0: float, *, continuity: float = 0.0) -> np.ndarray:
    r"""Wilson's score statistic :math:`(x - n p_0)/\sqrt{n p_0 (1 - p_0)}` for H0: rate = ``p0``.

    Large when the rate is above ``p0``. At ``p0`` 0 or 1 the statistic is ±inf when the data
    leave ``p0`` and 0 when they sit on it; ``nan`` where ``n = 0``. ``continuity`` shrinks
    :math:`x - n p_0` toward 0 by that much (Yates's correction with 1/2).

    Examples
    --------
    >>> float(wilson_z(3, 10, 0.5))     # (3 - 5) / sqrt(10 * .25)
    -1.2649110640673518
    """
    x, n = _as_float(x, n)
    diff = x - n * p0
    diff = np.sign(diff) * np.maximum(np.abs(diff) - continuity, 0.0)
    sd = np.sqrt(n * p0 * (1.0 - p0))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sd > 0, diff / np.where(sd > 0, sd, 1.0), np.sign(diff) * np.inf)
    z = np.where(diff == 0, 0.0, z)
    return np.where(n > 0, z, np.nan)


def wilson_bounds(x: np.ndarray, n: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    r"""One-sided Wilson score bounds at level ``alpha`` each for the rate :math:`x/n`.

    With :math:`z = z_{1-\alpha}`, :math:`\hat p = x/n`:

    .. math:: \frac{\hat p + z^2/2n \mp z\sqrt{\hat p(1-\hat p)/n + z^2/4n^2}}{1 + z^2/n}

    Returns ``(lower, upper)``, each shaped like the broadcast inputs; ``nan`` where ``n = 0``.
    0 events: ``(0, z²/(n + z²))``; all events: ``(n/(n + z²), 1)``.

    Examples
    --------
    >>> lo, hi = wilson_bounds(0, 1, 0.025)       # z = 1.95996: hi = z²/(1 + z²)
    >>> float(lo), round(float(hi), 6)
    (0.0, 0.793451)
    """
    x, n = _as_float(x, n)
    z = normal_quantile(1.0 - alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denominator = 1.0 + z * z / n
        center = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(np.maximum(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denominator
    lower = np.where(x <= 0, 0.0, np.clip(center - half, 0.0, 1.0))
    upper = np.where(x >= n, 1.0, np.clip(center + half, 0.0, 1.0))
    missing = ~(n > 0)
    return np.where(missing, np.nan, lower), np.where(missing, np.nan, upper)


def paired_difference_z(b: np.ndarray, c: np.ndarray, n: np.ndarray, delta0: np.ndarray | float, *,
                        continuity: float = 0.0) -> np.ndarray:
    r"""Tango's score statistic for H0: :math:`p_1 - p_2 = \Delta_0` with paired binary data.

    ``b``: pairs where only member 1 (the student) has the event; ``c``: only member 2 (the
    teacher); ``n``: all pairs.

    .. math:: z(\Delta_0) = \frac{b - c - n\Delta_0}{\sqrt{n\,(2\tilde q + \Delta_0 (1 - \Delta_0))}}

    with :math:`\tilde q` the positive root of :math:`2n q^2 + W q - c\,\Delta_0(1 - \Delta_0) = 0`,
    :math:`W = -b - c + (2n - b + c)\Delta_0` (the maximum-likelihood share of teacher-only pairs
    under the null). Large when the difference is above ``delta0``. Where the null variance is
    0, ±inf by the sign of :math:`b - c - n\Delta_0` (0 when that is 0); ``nan`` where ``n = 0``.
    ``continuity`` shrinks the numerator toward 0 by that many pairs
    (:math:`\operatorname{sign}(D)\max(|D| - \text{continuity}, 0)`, McNemar's correction with 1):
    the discrete counts are skewed where few pairs disagree, and the uncorrected statistic's far
    tail is then too light.

    Examples
    --------
    >>> float(paired_difference_z(0, 0, 10, 0.0))       # no discordant pair, on the null
    0.0
    """
    b, c, n, delta0 = _as_float(b, c, n, delta0)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = -b - c + (2 * n - b + c) * delta0
        q = (np.sqrt(np.maximum(w * w + 8 * n * c * delta0 * (1 - delta0), 0.0)) - w) / (4 * n)
        variance = n * (2 * q + delta0 * (1 - delta0))
        diff = b - c - n * delta0
        diff = np.sign(diff) * np.maximum(np.abs(diff) - continuity, 0.0)
        z = np.where(variance > 0, diff / np.sqrt(np.where(variance > 0, variance, 1.0)), np.sign(diff) * np.inf)
    z = np.where(diff == 0, 0.0, z)
    return np.where(n > 0, z, np.nan)


def paired_difference_bounds(b: np.ndarray, c: np.ndarray, n: np.ndarray, alpha: float, *,
                             continuity: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""One-sided Tango score bounds at level ``alpha`` each for :math:`(b - c)/n` (paired).

    ``lower`` solves :math:`z(\Delta_0) = z_{1-\alpha}`, ``upper`` solves
    :math:`z(\Delta_0) = -z_{1-\alpha}` over :math:`[-1, 1]` (:func:`paired_difference_z`),
    by bisection, with ``continuity`` as there. ``nan`` where ``n = 0``.
    Without continuity correction, no discordant pair (:math:`b = c = 0`): :math:`\mp z^2/(n + z^2)`;
    :math:`b = n`: ``((n - z²)/(n + z²), 1)``.

    Examples
    --------
    >>> lo, hi = paired_difference_bounds(0, 0, 100, 0.025)     # ±z²/(100 + z²)
    >>> round(float(lo), 6), round(float(hi), 6)
    (-0.036993, 0.036993)
    """
    b, c, n = _as_float(b, c, n)
    z = normal_quantile(1.0 - alpha)
    lower = _solve_decreasing(lambda d: paired_difference_z(b, c, n, d, continuity=continuity) - z, b.shape)
    upper = _solve_decreasing(lambda d: paired_difference_z(b, c, n, d, continuity=continuity) + z, b.shape)
    missing = ~(n > 0)
    return np.where(missing, np.nan, lower), np.where(missing, np.nan, upper)


def _solve_decreasing(f, shape: tuple[int, ...]) -> np.ndarray:
    """The root in [-1, 1] of a decreasing ``f`` (elementwise); -1 (1) where ``f`` is <= 0 (>= 0)
    over the whole range."""
    lo, hi = np.full(shape, -1.0), np.full(shape, 1.0)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        above = f(mid) > 0                 # the root is right of mid
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return (lo + hi) / 2
