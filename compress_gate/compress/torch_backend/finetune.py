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

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from compress_gate.errors import InputError, RuntimeFailure

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

    from compress_gate.compress.torch_backend.distill import FeatureDistiller
    from compress_gate.compress.torch_backend.schedule import step_epoch
    from compress_gate.models.device import cpu_placement
    from compress_gate.models.training import build_optimizer, task_loss, training_steps

    if optimizer not in ("sgd", "adam"):
        raise InputError(f"compression.optimizer = {optimizer!r} must be 'sgd' or 'adam'.")
    if distillation is not None and teacher is None:
        raise InputError("compression.distillation needs the dense teacher; none was given.")
    if schedule is not None and masks is None:
        raise InputError("a pruning schedule needs its masks.")
    steps_per_epoch = len(loader)  # type: ignore[arg-type]
    if steps_per_epoch == 0:
        raise InputError("the training loader yields no batches: give it at least one sample.")
    total_steps = math.ceil(epochs * steps_per_epoch)

    placement = placement or cpu_placement()
    loader = placement.batches(loader)
    torch.manual_seed(seed)
    student.to(placement.device)
    opt = build_optimizer(student, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if teacher is not None:
        teacher.to(placement.device).eval()
    distiller = None if distillation is None else FeatureDistiller(distillation, student, teacher, task=task)
    if distiller is not None and distiller.parameters():   # CRD's projection heads train with the student
        distiller.term.to(placement.device)
        opt.add_param_group({"params": distiller.parameters()})
    student.train()
    loop = _Loop(student, opt, masks, schedule, distiller, qat, placement)
    first_step = loop.resume(checkpoint, loader, steps_per_epoch,
                             lambda model: build_optimizer(model, optimizer, lr=lr, momentum=momentum,
                                                           weight_decay=weight_decay))
    student, opt = loop.student, loop.opt

    def save(done: int) -> None:
        if checkpoint is not None:
            loop.student, loop.opt = student, opt
            checkpoint.save(loop.state(done, loader))

    for step, inputs, targets in training_steps(loader, total_steps, start=first_step, epoch_done=save):
        if qat is not None:
            trained = qat.step(student, step_epoch(step, steps_per_epoch))
            if trained is not student:  # QAT starts: new module, new parameter set (folded BN biases)
                student = trained
                student.train()  # an exported graph's train() returns None
                opt = build_optimizer(student, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
        with placement.autocast():
            logits = student(inputs)
            loss = task_loss(logits, targets, task)
            if distiller is not None:
                loss = distiller.loss(loss, inputs, logits)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeFailure(f"compression training diverged: the loss is {value} at step {step + 1} of "
                                 f"{total_steps}. Lower compression.lr (now {lr}).")
        opt.zero_grad(set_to_none=True)
        placement.backward(loss)
        if schedule is not None:
            sparsity = schedule.step(step_epoch(step, steps_per_epoch))
            if sparsity is not None:
                masks.update(sparsity)  # type: ignore[union-attr]
        placement.step(opt)
        if masks is not None:
            masks.apply()
        if step + 1 == total_steps:
            save(total_steps)
        if progress is not None:
            progress(step + 1, total_steps, value)
    if distiller is not None:
        distiller.close()
    student.eval()
    return student


class _Loop:
    """What a checkpoint of :func:`fine_tune`'s loop saves and restores: the student (the fake-quantized
    graph once QAT has started), the optimizer, the masks, the schedule's state, the distillation term's
    heads, the loss scaler and the random states."""

    def __init__(self, student: torch.nn.Module, opt: torch.optim.Optimizer, masks: MaskSet | None,
                 schedule: GMPSchedule | None, distiller: Any, qat: FakeQuantization | None,
                 placement: Placement) -> None:
        self.student, self.opt, self.masks, self.schedule = student, opt, masks, schedule
        self.distiller, self.qat, self.placement = distiller, qat, placement

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

    def resume(self, checkpoint: EpochCheckpoint | None, loader: Any, steps_per_epoch: int,
               new_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer]) -> int:
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
            self.opt = new_optimizer(self.student)   # as the loop rebuilds it when QAT starts
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
