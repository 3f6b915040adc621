"""What a limit is judged on: the measured units (:class:`UnitValues`) and the compared quantity."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compress_gate.gate._paired import RateCounts
from compress_gate.metrics import percentile_interval

__all__ = ["UnitValues", "relative_change", "compared_change", "finite_interval"]


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
    (e.g. BA not computed: too few samples); ``by_definition``: the units among them that are
    undefined by the metric's definition, whatever the data's size (BA without a training
    direction): always left out and listed, never blocking a pass. ``rates``: the paired counts of a rate metric
    (:class:`~compress_gate.gate._paired.RateCounts`; None: bounds come from the bootstrap);
    ``members`` / ``positives``: each unit's test rows and positive labels (None: not counted).
    """

    units: tuple[str, ...]
    student: np.ndarray
    teacher: np.ndarray | None = None
    student_boot: np.ndarray | None = None
    teacher_boot: np.ndarray | None = None
    not_measured: dict[str, str] = field(default_factory=dict)
    undefined_reason: str = ""
    by_definition: frozenset[str] = frozenset()
    rates: RateCounts | None = None
    members: np.ndarray | None = None
    positives: np.ndarray | None = None


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


