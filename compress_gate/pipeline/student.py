"""The compressed student: the recipe's compression backend run on the dense teacher.

One place turns the recipe's ``compression:`` section into a
:class:`~compress_gate.compress.backend.Compressor` call, so ``compress-gate run`` and
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
    from compress_gate.compress.backend import Compressor
    from compress_gate.models.checkpoint import EpochCheckpoint
    from compress_gate.models.device import Placement

__all__ = ["compress_student", "compressor_for"]


def compressor_for(config: RunConfig) -> Compressor:
    """The backend that ``compression.backend`` names, set up with the recipe's ``export`` section.

    Raises
    ------
    InputError
        The backend's packages are not installed (the message names the extra).
    """
    from compress_gate.compress.backend import get_compressor

    return get_compressor(config.compression, config.export)


def compress_student(config: RunConfig, data: EvalData, teacher: torch.nn.Module, *,
                     compressor: Compressor | None = None,
                     progress: Callable[..., None] | None = None,
                     checkpoint: EpochCheckpoint | None = None,
                     placement: Placement | None = None) -> CompressionResult:
    """Compress a copy of ``teacher`` with the recipe's backend on the train split.

    ``compressor`` defaults to :func:`compressor_for` ``(config)``. Batches of
    ``compression.batch_size`` are shuffled with ``config.seed``; ``teacher`` itself is
    not modified (the backend may distil from it). ``checkpoint`` is passed to the backend
    (:meth:`~compress_gate.compress.backend.Compressor.compress`), and so is ``placement`` (the
    device the student trains on; default the CPU).
    """
    from compress_gate.pipeline.teacher import training_loader

    compressor = compressor or compressor_for(config)
    if compressor.needs_groups:  # e.g. FairGRAPE: batches carry the joint identity groups
        from compress_gate.compress.saliency import group_training_loader

        loader = group_training_loader(data, batch_size=config.compression.batch_size, seed=config.seed)
    else:
        loader = training_loader(data, batch_size=config.compression.batch_size, seed=config.seed,
                                 augment=config.augment)
    return compressor.compress(teacher, loader, task=data.task, seed=config.seed, progress=progress,
                               checkpoint=checkpoint, placement=placement)
