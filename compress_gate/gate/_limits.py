"""Judging one limit: the worst unit's value, its bootstrap interval, pass or fail closed."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from compress_gate._format import fmt
from compress_gate.config.gate import GATED_METRICS, Limit
from compress_gate.metrics import percentile_interval

__all__ = ["UnitValues", "relative_change", "compared_change", "judge_limit", "limit_outcome", "samples_to_decide",
           "finite_interval"]

_SHOW = 5


def finite_interval(samples: np.ndarray | None, confidence: float) -> list[float] | None:
    """Percentile interval of the finite resampled values, as report.json writes it; None without any."""
    if samples is None:
        return None
    usable = samples[np.isfinite(samples)]
    if usable.size == 0:
        return None
    lo, hi = percentile_interval(usable, confidence=confidence)
    return [float(lo), float(hi)]


@dataclass(frozen=True)
class UnitValues:
    """One gated metric for the teacher and the student population, per unit.

    ``teacher`` is None for numbers without a teacher counterpart (CEV, SDE, override
    share, engine checks). ``*_boot`` hold one row per bootstrap resample (None when
    the metric has no interval). ``not_measured`` maps a unit to why it has no value
    (e.g. BA not computed: too few samples).
    """

    units: tuple[str, ...]
    student: np.ndarray
    teacher: np.ndarray | None = None
    student_boot: np.ndarray | None = None
    teacher_boot: np.ndarray | None = None
    not_measured: dict[str, str] = field(default_factory=dict)
    undefined_reason: str = ""


def relative_change(student: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    r"""(student − teacher) / |teacher|, with a zero baseline defined, not divided by.

    .. math:: r = \begin{cases} (s - t)/|t| & t \ne 0 \\ 0 & t = 0,\ s = 0 \\
              +\infty & t = 0,\ s > 0 \\ -\infty & t = 0,\ s < 0 \end{cases}

    ``nan`` in either input gives ``nan``.
    """
    student, teacher = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    diff = student - teacher
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = diff / np.abs(teacher)
        at_zero = np.where(diff == 0, 0.0, np.sign(diff) * np.inf)
    return np.where(teacher == 0, at_zero, ratio)


def compared_change(change: str | None, student: np.ndarray, teacher: np.ndarray | None) -> np.ndarray:
    """The quantity a limit compares: the student's value (``change`` None), student − teacher
    (``absolute``) or :func:`relative_change` (``relative``). The one place a change is computed:
    the report's BA increase table uses it too."""
    if change is None:
        return np.asarray(student, dtype=np.float64)
    assert teacher is not None
    if change == "absolute":
        return np.asarray(student, dtype=np.float64) - teacher
    return relative_change(student, teacher)


def _listed(units: list[str]) -> str:
    return ", ".join(units[:_SHOW]) + (f" (and {len(units) - _SHOW} more)" if len(units) > _SHOW else "")


def _interval(values: np.ndarray, confidence: float) -> list[float]:
    """Percentile interval that keeps ±inf (a relative change from a zero baseline) as ±inf.

    Infinities are clipped to the largest float for the interpolation, then restored.
    """
    big = np.finfo(np.float64).max
    lo, hi = percentile_interval(np.clip(values, -big, big), confidence=confidence)
    return [float(np.sign(v) * np.inf) if abs(v) >= big else float(v) for v in (lo, hi)]


def judge_limit(limit: Limit, measured: UnitValues, *, confidence: float, n_samples: int | None = None) -> dict:
    """The report entry of ``limit`` judged on ``measured``.

    The gated number is the worst included unit (max for a ``max`` limit, min for a
    ``min`` limit) of the compared quantity (see :mod:`compress_gate.config.gate`).
    Its interval is the percentile interval of the per-resample worst value. A unit is
    left out (and listed) when the teacher's value is undefined there; the limit fails
    closed when the student is undefined where the teacher is defined, when no unit
    is left, or when the gated bound is undefined. Otherwise its outcome is
    :func:`limit_outcome`; an undecided limit gets ``n_needed`` from
    :func:`samples_to_decide` with ``n_samples`` test rows (None: not estimated).

    Returns
    -------
    dict
        ``name, metric, change, observed, ci, bound, gated, limit, direction, passed,
        outcome, n_needed, reason, unit, excluded`` (numbers are floats, possibly nan/inf: the caller
        makes them JSON-safe).
    """
    spec = GATED_METRICS[limit.metric]
    entry = {"name": limit.name, "metric": limit.metric, "change": limit.change, "observed": np.nan,
             "ci": None, "bound": limit.bound, "gated": np.nan, "limit": limit.value,
             "direction": limit.direction, "passed": False, "outcome": "fail", "n_needed": None, "reason": "",
             "unit": None, "excluded": []}
    units = list(measured.units)
    student = np.asarray(measured.student, dtype=np.float64)
    teacher = None if measured.teacher is None else np.asarray(measured.teacher, dtype=np.float64)
    if not units:
        entry["reason"] = (f"fails closed: {measured.undefined_reason or f'no {spec.units} to measure'}.")
        return entry
    include = np.ones(len(units), dtype=bool) if teacher is None else ~np.isnan(teacher)
    excluded = [u for u, keep in zip(units, include) if not keep]
    entry["excluded"] = excluded
    notes = []
    if excluded:
        why = sorted({measured.not_measured.get(u, "teacher value undefined") for u in excluded})
        notes.append(f"{len(excluded)} {spec.units}(s) not measured ({'; '.join(why[:3])})")
    student_undefined = [u for u, keep, s in zip(units, include, student) if keep and np.isnan(s)]
    compared = compared_change(limit.change, student, teacher)
    worst = np.nanmax if limit.direction == "max" else np.nanmin
    pick = np.nanargmax if limit.direction == "max" else np.nanargmin
    defined = include & ~np.isnan(compared)
    if defined.any():
        masked = np.where(defined, compared, np.nan)
        best_index = int(pick(masked))
        entry["observed"], entry["unit"] = float(masked[best_index]), units[best_index]
    if student_undefined:
        what = "student" if teacher is not None else "value"
        entry["reason"] = (f"fails closed: the {what} {limit.metric} is undefined for "
                           f"{_listed(student_undefined)}"
                           + (" where the teacher's is defined" if teacher is not None else "")
                           + (f" ({measured.undefined_reason})" if measured.undefined_reason else "") + ".")
        return entry
    if not defined.any():
        reason = measured.undefined_reason or f"every {spec.units} is undefined for the teacher"
        entry["reason"] = f"fails closed: nothing left to measure ({reason})" + \
            (f"; {notes[0]}" if notes else "") + "."
        return entry
    if measured.student_boot is not None:
        boot_teacher = None if measured.teacher_boot is None else measured.teacher_boot[:, include]
        boot = compared_change(limit.change, measured.student_boot[:, include], boot_teacher)
        with warnings.catch_warnings():      # all-NaN resamples: counted and reported below
            warnings.simplefilter("ignore", RuntimeWarning)
            per_resample = worst(boot, axis=1)
        usable = per_resample[~np.isnan(per_resample)]
        if usable.size:
            entry["ci"] = _interval(usable, confidence)
        if usable.size < per_resample.size:
            notes.append(f"{per_resample.size - usable.size} of {per_resample.size} resamples left "
                         "nothing to measure and were dropped")
    gated = entry["observed"] if limit.bound == "point" else (
        np.nan if entry["ci"] is None else entry["ci"][0 if limit.bound == "lower" else 1])
    entry["gated"] = gated
    where = f"worst {spec.units} {entry['unit']}: " if len(units) > 1 else ""
    point = f"{where}point {fmt(entry['observed'], infinite=True)}"
    if entry["ci"] is not None:
        lo, hi = (fmt(v, infinite=True) for v in entry["ci"])
        point += f", {100 * confidence:g}% CI [{lo}, {hi}]"
    if np.isnan(gated):
        entry["reason"] = (f"fails closed: the {limit.bound} bound is undefined (no resample left a "
                           f"{spec.units} to measure); {point}.")
        return entry
    outcome = limit_outcome(limit, gated, entry["ci"])
    inside = outcome == "pass"
    sign = ("<=" if inside else ">") if limit.direction == "max" else (">=" if inside else "<")
    entry["passed"], entry["outcome"] = inside, outcome
    judged = (f"{limit.bound} {'estimate' if limit.bound == 'point' else 'bound'} "
              f"{fmt(gated, infinite=True)} {sign} {limit.value:g}")
    if outcome == "not_enough_evidence":
        far = entry["ci"][0 if limit.direction == "max" else 1]
        entry["n_needed"] = None if n_samples is None else samples_to_decide(
            n_samples, entry["observed"], entry["ci"], limit.value)
        judged = (f"not enough evidence: {judged} but the interval reaches back inside "
                  f"({'lower' if limit.direction == 'max' else 'upper'} end {fmt(far, infinite=True)})")
        notes.append(f"about {entry['n_needed']:,} test samples would decide it" if entry["n_needed"] else
                     "no estimate of the test samples that would decide it (the point sits on the limit, "
                     "or a value is infinite)" if n_samples is not None else "sample count not given")
    entry["reason"] = f"{judged} ({point})" + "".join(f"; {note}" for note in notes) + "."
    return entry


def limit_outcome(limit: Limit, gated: float, ci: list[float] | None) -> str:
    """``pass``, ``fail`` or ``not_enough_evidence`` for a defined gated bound.

    - pass: the gated bound is inside the limit (on the limit is inside: ``<=`` / ``>=``);
    - fail: the evidence puts the number outside: the whole interval is outside (its end
      nearest the inside, the lower end for a ``max`` limit, is strictly outside), or,
      without an interval, the gated point is outside;
    - not enough evidence: otherwise (the gated bound is outside, the interval reaches back inside).
    """
    def inside(value: float) -> bool:
        return bool(value <= limit.value) if limit.direction == "max" else bool(value >= limit.value)
    if inside(gated):
        return "pass"
    if ci is None or not inside(ci[0 if limit.direction == "max" else 1]):
        return "fail"
    return "not_enough_evidence"


def samples_to_decide(n: int, point: float, ci: list[float] | None, limit: float) -> int | None:
    r"""Test samples that would make an undecided limit decisive, if the interval narrows as 1/√n.

    With the point estimate :math:`p`, the half-width :math:`h` of the interval on the side
    facing the limit :math:`L` (:math:`h = hi - p` when :math:`L > p`, else :math:`p - lo`)
    and the distance :math:`d = |p - L|`, the interval's end reaches the limit at
    :math:`n' = n\,(h/d)^2`; one sample more decides it:

    .. math:: n_\text{needed} = \lfloor n\,(h/d)^2 \rfloor + 1

    Assumes the point estimate stays where it is, the data come from the same distribution,
    and the half-width shrinks as :math:`1/\sqrt{n}` (the bootstrap's standard error). ``None``
    when the point sits exactly on the limit, or a value is infinite or undefined.

    Examples
    --------
    >>> samples_to_decide(100, 0.04, [0.02, 0.08], 0.05)   # h = .04, d = .01: 100 * 16 + 1
    1601
    """
    if ci is None or not all(np.isfinite(v) for v in (point, limit, *ci)) or point == limit:
        return None
    half_width = ci[1] - point if limit > point else point - ci[0]
    boundary = round(n * (half_width / abs(point - limit)) ** 2, 9)   # no float noise at an integer
    return int(np.floor(boundary)) + 1
