"""How the student's error rates moved from the teacher's: normalized change, CEV and SDE.

CEV follows Blakeney et al.'s code (``src/analytics.py``), SDE their definition; both
are computed over the attributes (last axis) and accept a leading resample axis.
"""

from __future__ import annotations

import numpy as np

from compress_gate.errors import InputError

__all__ = ["normalized_change", "combined_error_variance", "symmetric_distance_error"]


def normalized_change(*, teacher: np.ndarray, student: np.ndarray) -> np.ndarray:
    r"""Normalized change of a rate, in percent.

    .. math:: \delta = 100 \cdot (r_\mathrm{student} - r_\mathrm{teacher}) / r_\mathrm{teacher}

    Elementwise with broadcasting, e.g. (n_attributes,) teacher rates against
    (n_resamples, n_attributes) student rates. Both arguments are keyword-only
    (``teacher=``, ``student=``), so no call can swap them; the gate's
    ``relative_change(student, teacher)`` (``compress_gate.gate._limits``) is a
    different quantity (a fraction, infinite at a zero teacher) for limits of kind
    ``change: relative``.

    Parameters
    ----------
    teacher : ndarray
        The teacher's rates, e.g. (n_attributes,).
    student : ndarray
        The student's rates, broadcastable against ``teacher``, e.g. (n_resamples, n_attributes).

    Returns
    -------
    ndarray, float64, of the broadcast shape
        ``nan`` where the teacher rate is 0 (the change is undefined, not infinite) or
        where either rate is non-finite (undefined).

    Examples
    --------
    >>> normalized_change(teacher=np.array([0.02, 0.0]), student=np.array([0.03, 0.01]))
    array([50., nan])
    """
    t = np.asarray(teacher, dtype=np.float64)
    s = np.asarray(student, dtype=np.float64)
    defined = np.isfinite(t) & np.isfinite(s) & (t != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined, 100.0 * (s - t) / np.where(defined, t, 1.0), np.nan)


def _check_deltas(delta_fpr: object, delta_fnr: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both δ arrays as float64 of one shape, and the mask of usable attributes."""
    a = np.asarray(delta_fpr, dtype=np.float64)
    b = np.asarray(delta_fnr, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2):
        raise InputError(f"delta_fpr has shape {a.shape} and delta_fnr {b.shape}; they must have the same "
                         "shape, (n_attributes,) or (n_resamples, n_attributes).")
    usable = np.isfinite(a) & np.isfinite(b)
    return np.where(usable, a, 0.0), np.where(usable, b, 0.0), usable


def _scalar_or_array(value: np.ndarray) -> float | np.ndarray:
    return float(value) if value.ndim == 0 else value


def combined_error_variance(delta_fpr: np.ndarray, delta_fnr: np.ndarray) -> float | np.ndarray:
    r"""Combined error variance (CEV, Blakeney et al.) of the normalized rate changes.

    With points :math:`\delta_i = (\delta\mathrm{FPR}_i, \delta\mathrm{FNR}_i)` over the
    usable attributes and their mean :math:`\bar\delta`,

    .. math:: \mathrm{CEV} = \frac{1}{2n}\sum_i \lVert \delta_i - \bar\delta \rVert^2
              = \tfrac12 \left(\operatorname{Var}\delta\mathrm{FPR} + \operatorname{Var}\delta\mathrm{FNR}\right)

    with population variances (divide by n). This is the authors' code; it is half of
    the squared-norm reading of their paper's formula, and reproduces their table.

    Parameters
    ----------
    delta_fpr, delta_fnr : ndarray of shape (n_attributes,) or (n_resamples, n_attributes)
        Normalized changes in percent (:func:`normalized_change`).

    Returns
    -------
    float, or ndarray of shape (n_resamples,)
        >= 0. An attribute whose δFPR or δFNR is non-finite (a teacher rate of 0) is
        left out; ``nan`` when no attribute is left.

    Examples
    --------
    >>> combined_error_variance(np.array([0.0, 2.0]), np.array([1.0, 1.0]))
    0.5
    """
    a, b, usable = _check_deltas(delta_fpr, delta_fnr)
    n = usable.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_a = (a.sum(axis=-1) / n)[..., None]
        mean_b = (b.sum(axis=-1) / n)[..., None]
        squares = np.where(usable, (a - mean_a) ** 2 + (b - mean_b) ** 2, 0.0)
        value = np.where(n > 0, squares.sum(axis=-1) / (2 * n), np.nan)
    return _scalar_or_array(value)


def symmetric_distance_error(delta_fpr: np.ndarray, delta_fnr: np.ndarray) -> float | np.ndarray:
    r"""Symmetric distance error (SDE): mean distance of the points to the diagonal.

    .. math:: \mathrm{SDE} = \frac1n \sum_i \frac{\lvert \delta\mathrm{FPR}_i - \delta\mathrm{FNR}_i \rvert}{\sqrt 2}

    over the usable attributes. 0 when every attribute's FPR and FNR changed by the
    same percentage.

    Parameters
    ----------
    delta_fpr, delta_fnr : ndarray of shape (n_attributes,) or (n_resamples, n_attributes)

    Returns
    -------
    float, or ndarray of shape (n_resamples,)
        >= 0. Attributes with a non-finite δ are left out; ``nan`` when none is left.

    Examples
    --------
    >>> round(symmetric_distance_error(np.array([3.0, 1.0]), np.array([1.0, 1.0])), 6)
    0.707107
    """
    a, b, usable = _check_deltas(delta_fpr, delta_fnr)
    n = usable.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(n > 0, np.abs(a - b).sum(axis=-1) / (np.sqrt(2.0) * n), np.nan)
    return _scalar_or_array(value)
