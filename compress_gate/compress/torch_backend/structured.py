"""Structured channel pruning with Torch-Pruning (DepGraph, Fang et al. 2023).

Removing whole output channels shrinks every coupled tensor (the conv's filters, its
BatchNorm, the next layer's input channels, residual partners), so the exported
graph is smaller and faster on every engine, unlike unstructured zeros.

Torch-Pruning is chosen because it is maintained, pure PyTorch, and traces the
dependency graph itself (residual adds, concatenations), so no per-architecture
pruning code is needed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["ChannelPruning", "prune_channels", "count_params_and_macs"]


@dataclass(frozen=True)
class ChannelPruning:
    """What :func:`prune_channels` did: parameter and multiply-accumulate counts before and after."""

    params_before: int
    params_after: int
    macs_before: int
    macs_after: int


def count_params_and_macs(model: torch.nn.Module, example_inputs: torch.Tensor) -> tuple[int, int]:
    """(parameters, multiply-accumulates) of one forward pass on ``example_inputs`` (Torch-Pruning's counter)."""
    import torch_pruning as tp

    macs, params = tp.utils.count_ops_and_params(model, example_inputs)
    return int(params), int(macs)


def prune_channels(
    model: torch.nn.Module,
    example_inputs: torch.Tensor,
    *,
    ratio: float,
    importance: str = "l2",
    round_to: int | None = None,
) -> ChannelPruning:
    """Remove ``ratio`` of the output channels of every prunable layer of ``model``, in place.

    Channels are ranked per coupled group by the Lp norm (``importance``: ``"l1"`` or
    ``"l2"``) of all the weights that would be removed with them (Torch-Pruning's
    ``MagnitudeImportance`` over the group); the lowest go. Every layer loses the
    same share (local pruning, ``pruning_ratio = ratio``), rounded to multiples of
    ``round_to`` when given. The output layer keeps its outputs, so the task head is
    unchanged: the module at ``model.head_path`` (``model.head`` of the recipe) when the model
    carries one, else the last ``nn.Linear`` or conv in module order.

    Raises
    ------
    InputError
        Torch-Pruning is not installed (the message names the ``[torch]`` extra), or
        the model has no prunable layer besides its head.
    """
    try:
        import torch_pruning as tp
    except ImportError as err:
        raise InputError("compression.structured needs Torch-Pruning: install the torch backend extra "
                         "(`pip install 'compress-gate[torch]'`).") from err
    from torch import nn

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    if len(layers) < 2:
        raise InputError("compression.structured: the model has no prunable layer besides its output layer.")
    head_path = getattr(model, "head_path", None)
    head = model.get_submodule(head_path) if head_path else layers[-1]
    params_before, macs_before = count_params_and_macs(model, example_inputs)
    pruner = tp.pruner.MetaPruner(
        model, example_inputs, importance=tp.importance.MagnitudeImportance(p=1 if importance == "l1" else 2),
        pruning_ratio=ratio, ignored_layers=[head], round_to=round_to,
    )
    pruner.step()
    params_after, macs_after = count_params_and_macs(model, example_inputs)
    return ChannelPruning(params_before, params_after, macs_before, macs_after)
