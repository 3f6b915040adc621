"""One training loop for dense teachers and for SparseML compression schedules.

The loop follows SparseML 1.8's PyTorch integration: ``manager.modify`` wraps the
optimizer so every ``optimizer.step()`` first calls ``manager.update`` (GMP mask
updates, QAT start, LR modifiers) and ``manager.loss_update`` adds the
``DistillationModifier``'s term to the task loss before ``backward``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from compress_gate._task import TASKS, Task
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

    from compress_gate.models.checkpoint import EpochCheckpoint
    from compress_gate.models.device import Placement

__all__ = ["ProgressCallback", "Task", "train_model", "training_steps", "loader_steps", "finite_loss_value",
           "build_optimizer", "task_loss", "quiet_sparseml", "has_distillation_modifier"]

#: ``progress(done_steps, total_steps, loss)``, called after every optimizer step.
ProgressCallback = Callable[[int, int, float], None]


def train_model(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    task: Task,
    epochs: float,
    lr: float,
    seed: int,
    optimizer: Literal["sgd", "adam"] = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    manager: Any = None,
    teacher: torch.nn.Module | None = None,
    progress: ProgressCallback | None = None,
    checkpoint: EpochCheckpoint | None = None,
    placement: Placement | None = None,
) -> torch.nn.Module:
    """Train ``model`` in place for ``epochs`` passes over ``loader`` and return it (in eval mode).

    Loss: ``BCEWithLogitsLoss`` on (B, K) 0/1 targets for ``"multilabel"``; ``CrossEntropyLoss`` for
    ``"multiclass"`` (targets (B,) class indices, or (B, K) one-hot, reduced by argmax). ``epochs`` may
    be fractional: the loop runs ``ceil(epochs · len(loader))`` steps. Optimizer: SGD with Nesterov-free
    ``momentum`` or Adam, both with ``weight_decay``. ``torch.manual_seed(seed)`` is set first, so a
    loader whose shuffling draws from torch's default generator gives the same run for the same seed.

    With a SparseML ``ScheduledModifierManager`` (``manager``), the manager is initialised on ``model``
    inside :func:`quiet_sparseml` (its log messages go to the ``compress_gate.sparseml`` logger, not to
    the console or a ``sparse_logs/`` folder), steps the schedule with every optimizer step, and is
    finalized after the last step. ``teacher`` feeds the recipe's ``DistillationModifier`` (if the
    recipe has none, the teacher is unused). For ``"multilabel"`` the distillation term is a
    per-attribute binary KL: SparseML's softmax KL is applied to the pair ``(logit, 0)``, whose softmax
    is ``(sigmoid(logit), 1 - sigmoid(logit))``.

    With ``checkpoint`` (not with a ``manager``: SparseML's modifiers keep state it cannot restore),
    the model, the optimizer and every random state are saved after each finished epoch and after the
    last step; a saved state found there is restored first and training continues after its last
    finished epoch (:mod:`.checkpoint`).

    ``placement`` (:func:`compress_gate.models.device.select_device`; default the CPU) moves the model
    and every batch to its device and runs the forward pass and the loss under its autocast (``amp``),
    fp16 with loss scaling (not with a ``manager``: use bf16).

    Raises
    ------
    InputError
        Empty loader, non-positive ``epochs``/``lr``, unknown ``task``/``optimizer``, or a recipe with
        a ``DistillationModifier`` but no ``teacher``; a ``checkpoint`` with a ``manager``, or a
        checkpoint file made for another key.
    RuntimeFailure
        The loss became NaN or infinite (the message names the step; lower ``lr``).
    """
    import torch

    from compress_gate.models.device import cpu_placement

    _check_arguments(task, optimizer, epochs, lr)
    steps_per_epoch = loader_steps(loader)
    total_steps = math.ceil(epochs * steps_per_epoch)
    placement = placement or cpu_placement()
    _check_schedule_fits(manager, checkpoint, placement)
    loader = placement.batches(loader)
    model.to(placement.device)
    torch.manual_seed(seed)
    base_optimizer = build_optimizer(model, optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay)
    first_step = _resume(checkpoint, model, base_optimizer, loader, placement)
    save = functools.partial(_save_checkpoint, checkpoint, model, base_optimizer, placement, loader)
    with _scheduled_optimizer(manager, model, base_optimizer, steps_per_epoch, teacher, task) as step_optimizer:
        for step, inputs, targets in training_steps(loader, total_steps, start=first_step, epoch_done=save):
            with placement.autocast():
                loss = _step_loss(model, inputs, targets, task, manager, base_optimizer, step_optimizer, steps_per_epoch)
            value = finite_loss_value(loss, step, total_steps, "training", f"Lower the learning rate (lr = {lr}).")
            step_optimizer.zero_grad(set_to_none=True)
            placement.backward(loss)
            placement.step(step_optimizer)
            if step + 1 == total_steps:
                save(total_steps)
            if progress is not None:
                progress(step + 1, total_steps, value)
    return model.eval()


def _check_arguments(task: str, optimizer: str, epochs: float, lr: float) -> None:
    """Refuse (InputError) an unknown ``task`` or ``optimizer`` and a non-positive ``epochs`` or ``lr``."""
    if task not in TASKS:
        raise InputError(f"task = {task!r} must be 'multilabel' or 'multiclass'.")
    if optimizer not in ("sgd", "adam"):
        raise InputError(f"optimizer = {optimizer!r} must be 'sgd' or 'adam'.")
    if not epochs > 0 or not lr > 0:
        raise InputError(f"epochs = {epochs!r} and lr = {lr!r} must both be > 0.")


def _step_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, task: Task, manager: Any,
               optimizer: torch.optim.Optimizer, step_optimizer: Any, steps_per_epoch: int) -> torch.Tensor:
    """The forward pass and the batch's loss: :func:`task_loss`, plus, with a SparseML ``manager``, what
    ``manager.loss_update`` adds (the ``DistillationModifier``'s term) at the wrapped optimizer's epoch."""
    logits = model(inputs)
    loss = task_loss(logits, targets, task)
    if manager is not None:
        loss = manager.loss_update(
            loss, model, optimizer, step_optimizer.wrapped_epoch, steps_per_epoch,
            student_outputs=_distillation_view(logits, task), student_inputs=inputs,
        )
    return loss


def loader_steps(loader: Iterable[Any]) -> int:
    """``len(loader)``, the steps of one pass; InputError when the loader yields no batches."""
    steps = len(loader)  # type: ignore[arg-type]
    if steps == 0:
        raise InputError("the training loader yields no batches: give it at least one sample.")
    return steps


def finite_loss_value(loss: torch.Tensor, step: int, total_steps: int, what: str, fix: str) -> float:
    """The loss of step ``step`` (0-based) as a float.

    RuntimeFailure when it is NaN or infinite: "``what`` diverged: the loss is ... at step
    ``step + 1`` of ``total_steps``. ``fix``".
    """
    value = float(loss.detach())
    if not math.isfinite(value):
        raise RuntimeFailure(f"{what} diverged: the loss is {value} at step {step + 1} of {total_steps}. {fix}")
    return value


def _check_schedule_fits(manager: Any, checkpoint: EpochCheckpoint | None, placement: Placement) -> None:
    """Refuse (InputError) a SparseML ``manager`` with a ``checkpoint`` or with fp16 loss scaling."""
    if checkpoint is not None and manager is not None:
        raise InputError("a SparseML schedule cannot be checkpointed per epoch: train without `checkpoint`.")
    if placement.scaler is not None and manager is not None:
        raise InputError("`amp: fp16` scales the loss, which SparseML's wrapped optimizer does not take: set "
                         "`amp: bf16` (no scaling needed) or remove `amp` for a SparseML-backend recipe.")


@contextlib.contextmanager
def _scheduled_optimizer(manager: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                         steps_per_epoch: int, teacher: torch.nn.Module | None, task: Task) -> Iterator[Any]:
    """The optimizer the loop steps inside the block.

    Without a ``manager``: ``optimizer`` itself. With one: inside :func:`quiet_sparseml`, the
    optimizer ``manager.modify`` wraps (each step also steps the schedule), and the manager is
    finalized on ``model`` when the block ends, normally or by an exception. ``model`` is put in train
    mode first.
    """
    # train mode before the manager sees the model: a QAT start at epoch 0 fuses conv-BN-ReLU right
    # away, and torch fuses an eval-mode model by folding BN away, which SparseML's QAT does not expect
    model.train()
    if manager is None:
        yield optimizer
        return
    with quiet_sparseml() as sparseml_loggers:
        wrapped = _modify(manager, model, optimizer, steps_per_epoch, teacher, task, sparseml_loggers)
        try:
            yield wrapped
        finally:
            manager.finalize(model)


def _save_checkpoint(checkpoint: EpochCheckpoint | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     placement: Placement, loader: Any, done: int) -> None:
    """Save the model, the optimizer, the loss scaler and the random states after ``done`` steps into
    ``checkpoint`` (nothing without one)."""
    from compress_gate.models.checkpoint import random_states

    if checkpoint is not None:
        checkpoint.save({"step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scaler": placement.state_dict(), "random": random_states(loader)})


def training_steps(loader: Iterable[tuple[Any, Any]], total_steps: int, *, start: int = 0,
                   epoch_done: Callable[[int], None] | None = None) -> Iterator[tuple[int, Any, Any]]:
    """``(step, inputs, targets)`` for steps ``start .. total_steps - 1``, passing over ``loader`` again
    as often as needed (a fractional last epoch stops mid-pass). An empty loader yields nothing.

    ``start`` (a resumed loop's first step) begins a fresh pass over ``loader``: it is a
    multiple of the loader's length, or ``total_steps`` (then nothing is yielded).
    ``epoch_done(steps_done)`` is called when a pass has ended and another follows: after the
    loader is exhausted (its sampler may draw from its generator on that last fetch, so a
    checkpoint taken earlier would not see the state the next pass starts from) and after the
    caller finished the pass's last step.
    """
    step = start
    while step < total_steps:
        for inputs, targets in loader:
            yield step, inputs, targets
            step += 1
            if step >= total_steps:   # stop before fetching a batch that would not be used
                return
        if step == start:
            return
        if epoch_done is not None:
            epoch_done(step)


def _resume(checkpoint: EpochCheckpoint | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
            loader: Any, placement: Placement) -> int:
    """Restore the state ``checkpoint`` holds (if any) into the loop; the first step to run."""
    from compress_gate.models.checkpoint import restore_random_states

    saved = checkpoint.load() if checkpoint is not None else None
    if saved is None:
        return 0
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    placement.load_state_dict(saved["scaler"])
    restore_random_states(saved["random"], loader)
    return int(saved["step"])


def build_optimizer(model: torch.nn.Module, optimizer: str, *, lr: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """SGD (with ``momentum``) or Adam over ``model``'s trainable parameters."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def task_loss(logits: torch.Tensor, targets: torch.Tensor, task: Task) -> torch.Tensor:
    """Mean BCE-with-logits (multilabel) or cross-entropy (multiclass) of a batch.

    Raises InputError when the targets' shape does not fit the logits (B, K).
    """
    import torch.nn.functional as F

    if task == "multilabel":
        if targets.shape != logits.shape:
            raise InputError(f"multilabel targets have shape {tuple(targets.shape)}; they must match the "
                             f"model's outputs {tuple(logits.shape)} (one 0/1 column per attribute).")
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    if targets.ndim == 2:
        targets = targets.argmax(dim=1)
    if targets.ndim != 1 or targets.shape[0] != logits.shape[0]:
        raise InputError(f"multiclass targets have shape {tuple(targets.shape)}; they must be (B,) class "
                         f"indices or (B, K) one-hot for outputs {tuple(logits.shape)}.")
    return F.cross_entropy(logits, targets.long())


@contextlib.contextmanager
def quiet_sparseml(level: int = logging.WARNING) -> Iterator[Any]:
    """Keep SparseML off the console and out of the working directory inside the block.

    SparseML logs at INFO to the console (one line per modifier event and per graph
    transform of an export), which would break compress-gate's progress bars: the
    ``sparseml`` logger is raised to ``level`` inside the block and restored after. Its
    default ``PythonLogger`` creates ``./sparse_logs/<date>.log``: the block yields a
    ``LoggerManager`` that logs to ``compress_gate.sparseml`` instead, to pass as
    ``loggers=`` to ``manager.apply`` or ``manager.modify``. Import SparseML only after
    :func:`compress_gate.compress.apply_compat` (this imports its logger module).
    """
    from sparseml.pytorch.utils.logger import LoggerManager, PythonLogger

    logger = logging.getLogger("sparseml")
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield LoggerManager([PythonLogger(logger=logging.getLogger("compress_gate.sparseml"))])
    finally:
        logger.setLevel(previous)


def has_distillation_modifier(manager: Any) -> bool:
    """Whether a SparseML ``ScheduledModifierManager`` holds a distillation modifier."""
    from sparseml.pytorch.sparsification.distillation.modifier_distillation_base import (
        BaseDistillationModifier,
    )

    return any(isinstance(m, BaseDistillationModifier) for m in manager.iter_modifiers())


def _modify(manager: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps_per_epoch: int,
            teacher: torch.nn.Module | None, task: Task, loggers: Any) -> Any:
    distills = has_distillation_modifier(manager)
    if distills and teacher is None:
        raise InputError("the SparseML recipe has a DistillationModifier but no teacher was given: pass the "
                         "dense teacher, or remove the DistillationModifier from the recipe.")
    distillation_teacher: Any = "disable"
    if distills:
        teacher = teacher.eval()  # type: ignore[union-attr]
        if task == "multilabel":
            from compress_gate.models.binary_pairs import BinaryPairTeacher

            teacher = BinaryPairTeacher(teacher)
        distillation_teacher = teacher
    return manager.modify(model, optimizer, steps_per_epoch=steps_per_epoch, loggers=loggers,
                          distillation_teacher=distillation_teacher)


def _distillation_view(logits: torch.Tensor, task: Task) -> torch.Tensor:
    """Logits as SparseML's softmax KL should see them: (B, K, 2) pairs ``(z, 0)`` for multilabel."""
    if task == "multiclass":
        return logits
    from compress_gate.models.binary_pairs import binary_pairs

    return binary_pairs(logits)
