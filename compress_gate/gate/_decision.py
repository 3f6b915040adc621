r"""The gate's decision rule: per-unit one-sided bounds, intersection-union pass, Holm fail,
and the test rows a power calculation says would decide an undecided limit.

A limit is a paired non-inferiority test of every unit (docs/gate.md, "Decisions"). With
:math:`\alpha = (1 - \text{confidence})/2`, limit value :math:`L` and, per unit u, the
compared value :math:`\hat\theta_u` and its one-sided bound at level α (the upper bound for a
``max`` limit, the lower for ``min``):

- **pass** when every unit's bound and point are inside :math:`L` (on it counts as inside, up
  to :data:`TIE_TOLERANCE`): an intersection-union test, so the false-pass rate is at most α
  per limit with no correction;
- **fail** when Holm's step-down over the units' score p-values (H0: the unit is inside), or
  the max-T adjusted bootstrap p-values, at level :math:`\alpha / n_\text{limits}` reject some
  unit: the family-wise false-fail rate over all units of all limits is at most α
  (Bonferroni across limits, Holm or max-T within). With
  ``bound: point`` a limit fails on any point estimate outside :math:`L` instead (the user's
  choice: refuse on the estimate, without family-wise evidence);
- **not enough evidence** otherwise, with ``n_needed`` (:func:`rows_to_decide`).

Per-unit evidence (:class:`UnitEvidence`) comes from score statistics for rates
(:mod:`compress_gate.metrics.intervals`: Wilson, Tango's paired score) or from the paired
bootstrap (:func:`bootstrap_evidence`) for every other metric.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from compress_gate.config.gate import Limit
from compress_gate.gate._paired import RateCounts
from compress_gate.metrics.intervals import (normal_quantile, normal_sf, paired_difference_bounds,
                                             paired_difference_z, wilson_bounds, wilson_z)

__all__ = ["TIE_TOLERANCE", "POWER", "UnitEvidence", "score_evidence", "bootstrap_evidence", "Decision",
           "decide", "rows_to_decide"]

#: A value within this distance of the limit (times max(1, |limit|)) is *on* it: float noise
#: such as 0.83 − 0.85 = −0.020000000000000018 is neither outside nor a reason to estimate rows.
TIE_TOLERANCE = 1e-9
#: The power ``n_needed`` targets: the chance that a re-run of that size decides the limit.
POWER = 0.8


@dataclass(frozen=True)
class UnitEvidence:
    """Per unit (arrays of shape (U,)): ``point`` (the compared value), ``lower``/``upper``
    (one-sided bounds at α each; nan: no valid bound, e.g. a degenerate bootstrap),
    ``p_above``/``p_below`` (one-sided p-values of H0 value <= L / value >= L), ``se`` (the
    standard error the power calculation uses; nan: none), ``method`` per unit; ``adjusted``:
    the p-values are already adjusted for the units (max-T), else Holm adjusts them."""

    point: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_above: np.ndarray
    p_below: np.ndarray
    se: np.ndarray
    method: tuple[str, ...]
    adjusted: bool = False


def _tie(limit: Limit) -> float:
    return TIE_TOLERANCE * max(1.0, abs(limit.value))


def score_evidence(counts: RateCounts, change: str | None, limit: float, alpha: float) -> UnitEvidence:
    r"""Score evidence of rate units: Wilson on the student's rate (``change`` None) or Tango on the
    paired change (``absolute``). p-values are the score tests at :math:`L` (clipped into [0, 1]
    for Wilson: a rate cannot leave it), continuity-corrected (Yates's 1/2 for Wilson, McNemar's 1
    pair for Tango): a fail is judged at α / m, far in the tail, where the uncorrected statistic of
    few discordant pairs rejects up to 2.5 times too often (benchmarks/decision_error_rates.py).
    The bounds are not corrected: at α their error rate holds. The power calculation's standard error adds 1/2 to each
    count (:math:`\tilde p = (x + ½)/(n + 1)`), so it is positive at 0 events:
    Wilson :math:`\sqrt{\tilde p(1-\tilde p)/n}`, paired
    :math:`\sqrt{(\tilde p_b + \tilde p_c - (\tilde p_b - \tilde p_c)^2)/n}`."""
    n = counts.n
    with np.errstate(invalid="ignore", divide="ignore"):
        if change is None:
            point = counts.student / n
            lower, upper = wilson_bounds(counts.student, n, alpha)
            z = wilson_z(counts.student, n, min(max(limit, 0.0), 1.0), continuity=0.5)
            smoothed = (counts.student + 0.5) / (n + 1)
            se = np.sqrt(smoothed * (1 - smoothed) / n)
            method = "wilson"
        else:
            point = (counts.b - counts.c) / n
            lower, upper = paired_difference_bounds(counts.b, counts.c, n, alpha)
            z = paired_difference_z(counts.b, counts.c, n, min(max(limit, -1.0), 1.0), continuity=1.0)
            pb, pc = (counts.b + 0.5) / (n + 1), (counts.c + 0.5) / (n + 1)
            se = np.sqrt((pb + pc - (pb - pc) ** 2) / n)
            method = "tango"
    return UnitEvidence(point=point, lower=lower, upper=upper, p_above=normal_sf(z), p_below=normal_sf(-z),
                        se=se, method=(method,) * len(point))


def bootstrap_evidence(point: np.ndarray, boot: np.ndarray | None, limit: float, alpha: float) -> UnitEvidence:
    r"""Bootstrap evidence per unit from the paired resamples ``boot`` (B, U) of the compared value.

    *Bounds* (what a pass needs): the more conservative of the percentile bound (the α or 1 − α
    quantile of unit u's finite resamples) and the bias-corrected one (the quantile at
    :math:`\Phi(2 z_0 \pm z_{1-\alpha})`, :math:`z_0 = \Phi^{-1}(\#\{\theta^* < \hat\theta\}/B)`),
    so a bound holds where either does.

    *p-values* (what a fail needs) are max-T adjusted over the units (compared with the family level
    by :func:`decide`):
    with :math:`s_u` the standard deviation of unit u's resamples and
    :math:`t^*_{bu} = (\theta^*_{bu} - \hat\theta_u)/s_u`, the adjusted p-value of H0
    :math:`\theta_u \le L` is :math:`(1 + \#\{b : \max_v t^*_{bv} \ge (\hat\theta_u - L)/s_u\})/(B + 1)`
    (single-step max-T: the studentized statistics' simultaneous distribution carries the
    dependence between units; never the percentile of the raw maximum). Mirrored for
    :math:`\theta_u \ge L`.

    A unit is *degenerate* (no bound, no p-value) when :math:`s_u = 0` (every resample gives the
    same value, e.g. no discordant row) or fewer than two resamples are finite: it is never
    passed or failed. An infinite point (a relative change from a zero teacher) has p 0 on its side.
    """
    u = point.shape[0]
    nan = np.full(u, np.nan)
    if boot is None:
        return UnitEvidence(point, nan, nan, nan, nan, nan, ("none",) * u, adjusted=True)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        finite = np.where(np.isfinite(boot), boot, np.nan)
        n_finite = np.isfinite(finite).sum(axis=0)
        se = np.nanstd(finite, axis=0, ddof=1)
        valid = (n_finite >= 2) & (se > 0) & np.isfinite(point)
        below = np.clip(np.sum(finite < point, axis=0) / np.maximum(n_finite, 1), 0.5 / max(len(boot), 1),
                        1 - 0.5 / max(len(boot), 1))
        z0 = np.array([normal_quantile(float(q)) for q in below])
        z = normal_quantile(1 - alpha)
        bc_lo = normal_sf(-(2 * z0 - z))              # Phi(2 z0 - z)
        bc_hi = normal_sf(-(2 * z0 + z))
        ordered = np.sort(finite, axis=0)                 # nan last
        lower = np.minimum(_quantiles(ordered, n_finite, np.full(u, alpha)), _quantiles(ordered, n_finite, bc_lo))
        upper = np.maximum(_quantiles(ordered, n_finite, np.full(u, 1 - alpha)),
                           _quantiles(ordered, n_finite, bc_hi))
        t_star = (finite - point) / np.where(valid, se, np.nan)
        t_obs = (point - limit) / np.where(valid, se, np.nan)
    p_above = _max_t(t_star, t_obs)
    p_below = _max_t(-t_star, -t_obs)
    p_above = np.where(np.isposinf(point), 0.0, p_above)
    p_below = np.where(np.isneginf(point), 0.0, p_below)
    return UnitEvidence(point=point, lower=np.where(valid, lower, np.nan), upper=np.where(valid, upper, np.nan),
                        p_above=p_above, p_below=p_below, se=np.where(valid, se, np.nan),
                        method=("bootstrap",) * u, adjusted=True)


def _quantiles(ordered: np.ndarray, n_finite: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Per column, the ``levels`` quantile (linear interpolation, as ``np.quantile``) of its first
    ``n_finite`` sorted values; nan where a column has none."""
    position = np.clip(levels, 0.0, 1.0) * np.maximum(n_finite - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n_finite - 1, 0))
    at = lambda rows: np.take_along_axis(ordered, rows[None, :], axis=0)[0]   # noqa: E731
    value = at(low) + (position - low) * (at(high) - at(low))
    return np.where(n_finite > 0, value, np.nan)


def _max_t(t_star: np.ndarray, t_obs: np.ndarray) -> np.ndarray:
    """Single-step max-T adjusted p-values: (1 + #{b: max_v t*_bv >= t_u}) / (B + 1); nan where t_u is nan."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        worst = np.nanmax(np.where(np.isfinite(t_star), t_star, np.nan), axis=1)    # (B,)
    worst = worst[np.isfinite(worst)]
    if worst.size == 0:
        return np.full(t_obs.shape, np.nan)
    ordered = np.sort(worst)
    beyond = ordered.size - np.searchsorted(ordered, np.where(np.isnan(t_obs), np.inf, t_obs), side="left")
    return np.where(np.isnan(t_obs), np.nan, (1.0 + beyond) / (ordered.size + 1.0))


@dataclass(frozen=True)
class Decision:
    """A limit's outcome over its measured units: ``outcome``, per-unit ``unit_outcomes``
    (``pass``, ``fail`` (Holm-rejected, or outside with ``bound: point``), ``undecided``,
    ``degenerate``), ``bound`` (per unit, the one-sided bound a pass needs), ``level`` (the
    Holm family level α / n_limits)."""

    outcome: str
    unit_outcomes: tuple[str, ...]
    bound: np.ndarray
    p_outside: np.ndarray
    level: float


def decide(limit: Limit, evidence: UnitEvidence, *, alpha: float, n_limits: int = 1) -> Decision:
    r"""Pass, fail or not enough evidence for ``limit`` over the units of ``evidence``.

    With :math:`s = +1` for a ``max`` limit (bound = ``upper``, p = ``p_above``) and :math:`-1`
    for ``min`` (``lower``, ``p_below``), tie :math:`t` = :data:`TIE_TOLERANCE` · max(1, |L|):

    - a unit is *inside* when :math:`s(\mathrm{bound}_u - L) \le t` and :math:`s(\hat	heta_u - L) \le t`
      (a nan bound is never inside);
    - a unit is *rejected* (outside) when its point is outside (``bound: point``), or its
      p-value is at most the level :math:`lpha / n_	ext{limits}` (p-values already adjusted
      for the units, max-T), or Holm's step-down at that level rejects it (score p-values);
    - the outcome is ``fail`` when any unit is rejected, else ``pass`` when every unit is
      inside, else ``not_enough_evidence``. An empty ``evidence`` passes (every unit of none).

    Each unit's state is ``fail``, ``pass``, ``degenerate`` (no valid bound) or ``undecided``.
    """
    upper_side = limit.direction == "max"
    bound = evidence.upper if upper_side else evidence.lower
    p_outside = evidence.p_above if upper_side else evidence.p_below
    tie = _tie(limit)
    sign = 1.0 if upper_side else -1.0
    excess = sign * (evidence.point - limit.value)          # > 0: the point is outside
    bound_in = sign * (bound - limit.value) <= tie           # nan compares False: not inside
    passed = bound_in & (excess <= tie)
    level = alpha / max(n_limits, 1)
    if limit.bound == "point":
        rejected = excess > tie
    elif evidence.adjusted:
        rejected = p_outside <= level
    else:
        rejected = _holm(p_outside, level)
    states = np.where(rejected, "fail", np.where(passed, "pass", np.where(np.isnan(bound), "degenerate",
                                                                             "undecided")))
    outcome = "fail" if rejected.any() else "pass" if passed.all() else "not_enough_evidence"
    return Decision(outcome, tuple(str(s) for s in states), bound, p_outside, level)


def _holm(p: np.ndarray, level: float) -> np.ndarray:
    """Holm's step-down at family level ``level``: the rejected units (nan p-values never are,
    and count in the family)."""
    m = p.shape[0]
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    rejected = np.zeros(m, dtype=bool)
    for step, unit in enumerate(order):
        if not p[unit] <= level / (m - step):
            break
        rejected[unit] = True
    return rejected


def rows_to_decide(limit: Limit, evidence: UnitEvidence, decision: Decision, *, n_test: int,
                   alpha: float) -> int | None:
    r"""Test rows that would decide an undecided limit with probability :data:`POWER`.

    Per unit, with the distance :math:`d_u = |\hat\theta_u - L|` and the standard error
    :math:`s_u` at the current ``n_test`` rows (shrinking as :math:`1/\sqrt n`, the unit's share
    of rows and the paired discordance staying as observed), the rows at which a one-sided test
    at level :math:`a` has power :math:`1 - \beta` against :math:`d_u` are

    .. math:: n_u = n_\text{test} \left(\frac{(z_{1-a} + z_{1-\beta})\, s_u}{d_u}\right)^2 .

    If some point is outside, the decision in reach is *fail*: the smallest :math:`n_u` over
    those units with :math:`a` = the Holm level over all m units (its first step); else it is
    *pass*: the largest :math:`n_u` over the units not yet passed, with :math:`a = \alpha`.
    Rounded up, at least ``n_test + 1``. None when that unit sits on the limit (up to the
    tolerance), has no standard error (degenerate) or an infinite value.
    """
    if decision.outcome != "not_enough_evidence":
        return None
    sign = 1.0 if limit.direction == "max" else -1.0
    excess = sign * (evidence.point - limit.value)
    outside = excess > _tie(limit)
    z_beta = normal_quantile(POWER)
    if outside.any():
        a = decision.level / len(excess)
        needed = [_rows(n_test, excess[u], evidence.se[u], a, z_beta) for u in np.flatnonzero(outside)]
        return min((n for n in needed if n is not None), default=None)
    pending = [u for u, state in enumerate(decision.unit_outcomes) if state != "pass"]
    needed = [_rows(n_test, -excess[u], evidence.se[u], alpha, z_beta) for u in pending]
    return None if not needed or None in needed else max(needed)  # type: ignore[type-var]


def _rows(n_test: int, distance: float, se: float, a: float, z_beta: float) -> int | None:
    if not (np.isfinite(distance) and np.isfinite(se)) or se <= 0 or distance <= TIE_TOLERANCE:
        return None
    rows = n_test * ((normal_quantile(1 - a) + z_beta) * se / distance) ** 2
    return max(n_test + 1, math.ceil(round(rows, 6)))
