"""The torch backend's training loop: task loss, optional distillation, pruning masks on a schedule.

Per step, in SparseML's order: forward, loss (task loss, or the distillation mix
of :mod:`.distill`), backward; then, before the optimizer step, the schedule is
consulted at the epoch reached so far (:func:`.schedule.step_epoch`, SparseML's
formula), and
masks are recomputed when it says so; the optimizer steps; the masks are applied
again (momentum and weight decay cannot revive a pruned weight). With QAT
(:class:`.qat.FakeQuantization`), before each forward pass the epoch reached so far
decides whether the student is swapped for its fake-quantized graph (same
parameters; the optimizer is rebuilt over them) and whether observers freeze.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.compress.torch_backend.masks import MaskSet
    from compress_gate.compress.torch_backend.qat import FakeQuantization
    from compress_gate.compress.torch_backend.schedule import GMPSchedule
    from compress_gate.config.torch_backend import DistillationConfig
    from compress_gate.models.checkpoint import EpochCheckpoint
    from compress_gate.models.device import Placement
    from compress_gate.models.training import ProgressCallback, Task

__all__ = ["fine_tune"]


def fine_tune(
    student: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    task: Task,
    epochs: float,
    lr: float,
    seed: int,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    teacher: torch.nn.Module | None = None,
    distillation: DistillationConfig | None = None,
    schedule: GMPSchedule | None = None,
    masks: MaskSet | None = None,
    qat: FakeQuantization | None = None,
    progress: ProgressCallback | None = None,
    checkpoint: EpochCheckpoint | None = None,
    placement: Placement | None = None,
) -> torch.nn.Module:
    """Train ``student`` in place for ``ceil(epochs · len(loader))`` steps and return it in eval mode.

    The returned module is ``student``, or with ``qat`` the fake-quantized graph that
    trained from ``qat``'s start on (sharing ``student``'s parameters).

    Optimizer and losses as :func:`compress_gate.models.train_model` (SGD with
    ``momentum`` or Adam, both with ``weight_decay``; BCE-with-logits or
    cross-entropy). With ``distillation``, ``teacher`` (kept in eval mode, no
    gradients) is mixed in by :class:`.distill.FeatureDistiller` (Hinton's
    :func:`.distill.combined_loss`, or task loss + a feature term). ``schedule`` needs
    ``masks`` (asked before each optimizer step, it recomputes them); ``masks`` alone are held
    fixed (re-applied after every step). ``torch.manual_seed(seed)`` first.

    With ``checkpoint``, after each finished epoch and after the last step the loop saves
    the student (the fake-quantized graph once QAT has started), the optimizer, the masks,
    the schedule's state, the distillation term's heads (CRD) and every random state
    (:mod:`compress_gate.models.checkpoint`). A state found there is restored first (QAT
    started again at the saved epoch when it had started) and training continues after its
    last finished epoch, ending with the weights of an uninterrupted run.

    ``placement`` (default the CPU) as in :func:`compress_gate.models.train_model`: student,
    teacher, distillation heads and batches on its device, forward and loss under its autocast.

    Raises
    ------
    InputError
        Empty loader, ``distillation`` without ``teacher``, ``schedule`` without ``masks``,
        an unknown ``optimizer``, or a checkpoint file made for another key.
    RuntimeFailure
        The loss became NaN or infinite (the message names the step; lower ``lr``).
    """
    import torch

    from compress_gate.compress.torch_backend.schedule import step_epoch
    from compress_gate.models.device import cpu_placement
    from compress_gate.models.training import build_optimizer, finite_loss_value, loader_steps, training_steps

    _check_arguments(optimizer, distillation, teacher, schedule, masks)
    steps_per_epoch = loader_steps(loader)
    total_steps = math.ceil(epochs * steps_per_epoch)
    placement = placement or cpu_placement()
    loader = placement.batches(loader)
    torch.manual_seed(seed)
    new_optimizer = functools.partial(build_optimizer, optimizer=optimizer, lr=lr, momentum=momentum,
                                      weight_decay=weight_decay)
    loop = _Loop(student, new_optimizer, task=task, teacher=teacher, distillation=distillation, masks=masks,
                 schedule=schedule, qat=qat, placement=placement)
    first_step = loop.resume(checkpoint, loader, steps_per_epoch)
    save = functools.partial(_save_checkpoint, checkpoint, loop, loader)
    for step, inputs, targets in training_steps(loader, total_steps, start=first_step, epoch_done=save):
        epoch = step_epoch(step, steps_per_epoch)
        loss = loop.loss(inputs, targets, epoch)
        value = finite_loss_value(loss, step, total_steps, "compression training", f"Lower compression.lr (now {lr}).")
        loop.backward_and_step(loss, epoch)
        if step + 1 == total_steps:
            save(total_steps)
        if progress is not None:
            progress(step + 1, total_steps, value)
    return loop.finish()


def _check_arguments(optimizer: str, distillation: DistillationConfig | None, teacher: torch.nn.Module | None,
                     schedule: GMPSchedule | None, masks: MaskSet | None) -> None:
    """Refuse (InputError) an unknown ``optimizer``, ``distillation`` without a ``teacher`` and a
    ``schedule`` without ``masks``."""
    if optimizer not in ("sgd", "adam"):
        raise InputError(f"compression.optimizer = {optimizer!r} must be 'sgd' or 'adam'.")
    if distillation is not None and teacher is None:
        raise InputError("compression.distillation needs the dense teacher; none was given.")
    if schedule is not None and masks is None:
        raise InputError("a pruning schedule needs its masks.")


def _save_checkpoint(checkpoint: EpochCheckpoint | None, loop: _Loop, loader: Any, done: int) -> None:
    """Save ``loop``'s state after ``done`` steps into ``checkpoint`` (nothing without one)."""
    if checkpoint is not None:
        checkpoint.save(loop.state(done, loader))


class _Loop:
    """The state :func:`fine_tune`'s loop trains and its step.

    The state is what a checkpoint saves and restores: the student (the fake-quantized graph once QAT
    has started), the optimizer, the masks, the schedule's state, the distillation term's heads, the
    loss scaler and the random states.
    """

    def __init__(self, student: torch.nn.Module, new_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
                 *, task: Task, teacher: torch.nn.Module | None, distillation: DistillationConfig | None,
                 masks: MaskSet | None, schedule: GMPSchedule | None, qat: FakeQuantization | None,
                 placement: Placement) -> None:
        """Put ``student`` and ``teacher`` (eval mode) on ``placement``'s device, build the optimizer
        (``new_optimizer``) and the :class:`.distill.FeatureDistiller` for ``distillation`` (whose
        trainable heads, CRD's projections, go to the device and into the optimizer), and put
        ``student`` in train mode."""
        from compress_gate.compress.torch_backend.distill import FeatureDistiller

        student.to(placement.device)
        self.opt = new_optimizer(student)
        if teacher is not None:
            teacher.to(placement.device).eval()
        self.distiller = None if distillation is None else FeatureDistiller(distillation, student, teacher, task=task)
        if self.distiller is not None and self.distiller.parameters():   # CRD's heads train with the student
            self.distiller.term.to(placement.device)
            self.opt.add_param_group({"params": self.distiller.parameters()})
        student.train()
        self.student, self.new_optimizer, self.task = student, new_optimizer, task
        self.masks, self.schedule, self.qat, self.placement = masks, schedule, qat, placement

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, epoch: float) -> torch.Tensor:
        """The batch's loss at ``epoch`` under the placement's autocast: task loss
        (:func:`compress_gate.models.training.task_loss`), mixed with the teacher's by the distiller
        when there is one. With QAT, the student is first swapped for its fake-quantized graph if QAT
        starts at ``epoch``."""
        from compress_gate.models.training import task_loss

        if self.qat is not None:
            self._quantize_when_due(epoch)
        with self.placement.autocast():
            logits = self.student(inputs)
            loss = task_loss(logits, targets, self.task)
            if self.distiller is not None:
                loss = self.distiller.loss(loss, inputs, logits)
        return loss

    def _quantize_when_due(self, epoch: float) -> None:
        """When QAT starts at ``epoch``, train its fake-quantized graph from now on (a new module with a
        new parameter set: folded BN biases) in train mode, with a new optimizer over it; otherwise keep
        the student (``qat.step`` may still freeze its observers)."""
        trained = self.qat.step(self.student, epoch)  # type: ignore[union-attr]
        if trained is not self.student:
            self.student = trained
            self.student.train()  # an exported graph's train() returns None
            self.opt = self.new_optimizer(self.student)

    def backward_and_step(self, loss: torch.Tensor, epoch: float) -> None:
        """Backward pass, then: recompute the masks when the schedule says so at ``epoch``, step the
        optimizer (through the placement's loss scaler), apply the masks again (momentum and weight decay
        cannot revive a pruned weight)."""
        self.opt.zero_grad(set_to_none=True)
        self.placement.backward(loss)
        if self.schedule is not None:
            sparsity = self.schedule.step(epoch)
            if sparsity is not None:
                self.masks.update(sparsity)  # type: ignore[union-attr]
        self.placement.step(self.opt)
        if self.masks is not None:
            self.masks.apply()

    def finish(self) -> torch.nn.Module:
        """Close the distiller (if any); the trained student, in eval mode."""
        if self.distiller is not None:
            self.distiller.close()
        self.student.eval()
        return self.student

    def state(self, done: int, loader: Any) -> dict[str, Any]:
        """What to save after ``done`` steps."""
        from compress_gate.models.checkpoint import random_states

        term = getattr(self.distiller, "term", None)
        return {"step": done, "model": self.student.state_dict(), "optimizer": self.opt.state_dict(),
                "qat_started": self.qat is not None and self.qat.fake_quant is not None,
                "masks": None if self.masks is None else dict(self.masks.masks),
                "schedule": None if self.schedule is None else dict(vars(self.schedule)),
                "distiller": term.state_dict() if hasattr(term, "state_dict") else None,
                "scaler": self.placement.state_dict(),
                "random": random_states(loader)}

    def resume(self, checkpoint: EpochCheckpoint | None, loader: Any, steps_per_epoch: int) -> int:
        """Restore a saved state (if ``checkpoint`` holds one); the first step to run."""
        from compress_gate.compress.torch_backend.schedule import step_epoch
        from compress_gate.models.checkpoint import restore_random_states

        saved = checkpoint.load() if checkpoint is not None else None
        if saved is None:
            return 0
        if saved["qat_started"]:  # the fake-quantized graph, built as the interrupted run built it
            qat: Any = self.qat
            self.student = qat.step(self.student, step_epoch(saved["step"], steps_per_epoch))
            self.student.train()
            self.opt = self.new_optimizer(self.student)   # as the loop rebuilds it when QAT starts
        self.student.load_state_dict(saved["model"])
        self.opt.load_state_dict(saved["optimizer"])
        self.placement.load_state_dict(saved["scaler"])
        if self.masks is not None:
            self.masks.masks = dict(saved["masks"])
        if self.schedule is not None:
            vars(self.schedule).update(saved["schedule"])
        term = getattr(self.distiller, "term", None)
        if saved["distiller"] is not None:
            term.load_state_dict(saved["distiller"])  # type: ignore[union-attr]
        restore_random_states(saved["random"], loader)
        return int(saved["step"])
