"""Zhu & Gupta's gradual pruning schedule, stepped exactly as SparseML 1.8's ``GMPruningModifier``.

Interpolation (``sparseml.utils.helpers.interpolate``): with
:math:`x = (e - e_0)/(e_1 - e_0)` for the current epoch e between ``start_epoch``
e_0 and ``end_epoch`` e_1,

.. math::

    y = \\begin{cases} 1 - (1 - x)^3 & \\text{cubic} \\\\ x & \\text{linear} \\end{cases}
    \\qquad s(e) = \\begin{cases} s_0 & y \\le \\varepsilon \\\\ s_1 & y \\ge 1 - \\varepsilon \\\\
    s_0 + y\\,(s_1 - s_0) & \\text{otherwise} \\end{cases}

with ε the float64 machine epsilon, s_0 ``init_sparsity`` and s_1 ``final_sparsity``.

When masks change (SparseML's ``ScheduledUpdateModifier.update_ready``): the
schedule is consulted before every optimizer step with the epoch reached so far,
e = steps_done / steps_per_epoch. It updates when it has not started and
e ≥ e_0 (start); when it has started, not ended and e ≥ e_1 (end: s_1 applied);
and in between when e > e_0 and e ≥ e_last + ``update_frequency``, where e_last is
the epoch of the previous update.
"""

from __future__ import annotations

import sys

__all__ = ["interpolate", "step_epoch", "GMPSchedule"]


def step_epoch(steps_done: int, steps_per_epoch: int) -> float:
    """The epoch reached after ``steps_done`` optimizer steps, as SparseML's ``RecipeManagerStepWrapper`` computes it.

    .. math:: e = \\lfloor k / S \\rfloor + (k \\bmod S) / S

    >>> step_epoch(6, 4)
    1.5
    """
    return float(steps_done // steps_per_epoch) + float(steps_done % steps_per_epoch) / float(steps_per_epoch)


def interpolate(epoch: float, start: float, end: float, init: float, final: float, inter_func: str) -> float:
    """Sparsity at ``epoch``; identical to SparseML's ``interpolate``.

    With x = (epoch − start)/(end − start), y = 1 − (1 − x)³ (``cubic``) or x (``linear``); the
    result is ``init`` when y <= ε, ``final`` when y >= 1 − ε (ε the float64 epsilon), else
    init + y·(final − init).

    >>> interpolate(2.0, 0.0, 4.0, 0.0, 0.8, "cubic")  # 0.8 * (1 - 0.5**3)
    0.7
    """
    x = (epoch - start) / (end - start)
    if inter_func == "cubic":
        y = 1 - (1 - x) ** 3
    elif inter_func == "linear":
        y = x
    else:
        raise ValueError(f"inter_func = {inter_func!r} must be 'cubic' or 'linear'")
    if y <= 0.0 + sys.float_info.epsilon:
        return init
    if y >= 1.0 - sys.float_info.epsilon:
        return final
    return y * (final - init) + init


class GMPSchedule:
    """The mask-update state machine of one ``GMPruningModifier``.

    ``step(epoch)`` is called before every optimizer step; it returns the sparsity
    to prune to now, or ``None`` when the masks stay as they are.
    """

    def __init__(self, *, init_sparsity: float, final_sparsity: float, start_epoch: float, end_epoch: float,
                 update_frequency: float, inter_func: str = "cubic") -> None:
        self.init_sparsity, self.final_sparsity = init_sparsity, final_sparsity
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.update_frequency, self.inter_func = update_frequency, inter_func
        self.started = self.ended = False
        self._last_update = -1.0

    def step(self, epoch: float) -> float | None:
        """The sparsity to apply before the optimizer step at ``epoch``, or ``None``."""
        start_pending = not self.started and not self.ended and epoch >= self.start_epoch
        end_pending = self.started and not self.ended and epoch >= self.end_epoch
        periodic = (self.started and not self.ended and epoch > self.start_epoch and self._last_update >= 0.0
                    and epoch >= self._last_update + self.update_frequency)
        if not (start_pending or end_pending or periodic):
            return None
        self._last_update = epoch
        sparsity = interpolate(epoch, self.start_epoch, self.end_epoch, self.init_sparsity, self.final_sparsity,
                               self.inter_func)
        self.started = True
        if epoch >= self.end_epoch:  # SparseML re-checks end_pending after marking the start
            self.ended = True
        return sparsity
