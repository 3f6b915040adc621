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
from collections.abc import Iterable
from typing import TYPE_CHECKING

from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

    from compress_gate.compress.torch_backend.masks import MaskSet
    from compress_gate.compress.torch_backend.qat import FakeQuantization
    from compress_gate.compress.torch_backend.schedule import GMPSchedule
    from compress_gate.config.torch_backend import DistillationConfig
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

    Raises
    ------
    InputError
        Empty loader, ``distillation`` without ``teacher``, ``schedule`` without ``masks``,
        or an unknown ``optimizer``.
    RuntimeFailure
        The loss became NaN or infinite (the message names the step; lower ``lr``).
    """
    import torch

    from compress_gate.compress.torch_backend.distill import FeatureDistiller
    from compress_gate.compress.torch_backend.schedule import step_epoch
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

    torch.manual_seed(seed)
    opt = build_optimizer(student, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if teacher is not None:
        teacher.eval()
    distiller = None if distillation is None else FeatureDistiller(distillation, student, teacher, task=task)
    if distiller is not None and distiller.parameters():   # CRD's projection heads train with the student
        opt.add_param_group({"params": distiller.parameters()})
    student.train()
    for step, inputs, targets in training_steps(loader, total_steps):
        if qat is not None:
            trained = qat.step(student, step_epoch(step, steps_per_epoch))
            if trained is not student:  # QAT starts: new module, new parameter set (folded BN biases)
                student = trained
                student.train()  # an exported graph's train() returns None
                opt = build_optimizer(student, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
        logits = student(inputs)
        loss = task_loss(logits, targets, task)
        if distiller is not None:
            loss = distiller.loss(loss, inputs, logits)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RuntimeFailure(f"compression training diverged: the loss is {value} at step {step + 1} of "
                                 f"{total_steps}. Lower compression.lr (now {lr}).")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if schedule is not None:
            sparsity = schedule.step(step_epoch(step, steps_per_epoch))
            if sparsity is not None:
                masks.update(sparsity)  # type: ignore[union-attr]
        opt.step()
        if masks is not None:
            masks.apply()
        if progress is not None:
            progress(step + 1, total_steps, value)
    if distiller is not None:
        distiller.close()
    student.eval()
    return student
