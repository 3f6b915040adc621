"""The compressed student: the recipe's SparseML schedule run on the dense teacher.

One place turns the recipe's ``compression:`` section into a
:func:`compress_gate.compress.compress_model` call, so ``compress-gate run`` and
``compress-gate audit`` compress a teacher identically.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from compress_gate.config.run import RunConfig
from compress_gate.data.contract import EvalData

if TYPE_CHECKING:
    import torch

    from compress_gate.compress import CompressionResult

__all__ = ["compress_student"]


def compress_student(config: RunConfig, data: EvalData, teacher: torch.nn.Module, *,
                     progress: Callable[..., None] | None = None) -> CompressionResult:
    """Compress a copy of ``teacher`` with the recipe's SparseML schedule on the train split.

    The teacher is also the distillation source when ``compression.distillation`` is
    true; batches are shuffled with ``config.seed``. ``teacher`` itself is not modified.
    """
    from compress_gate.compress import compress_model
    from compress_gate.pipeline.teacher import training_loader

    spec = config.compression
    loader = training_loader(data, batch_size=spec.batch_size, seed=config.seed)
    return compress_model(teacher, loader, spec.source, task=data.task,
                          teacher=teacher if spec.distillation else None, seed=config.seed,
                          progress=progress, lr=spec.lr, optimizer=spec.optimizer)
