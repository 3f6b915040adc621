"""Weight sparsity of torch models and of exported ONNX graphs.

Sparsity of one weight tensor W is the share of its entries that are exactly zero:

.. math:: s(W) = \\#\\{w \\in W : w = 0\\} / |W|

and the sparsity of a set of tensors is pooled over entries (not averaged over
tensors): :math:`\\sum_i \\#\\text{zeros}(W_i) / \\sum_i |W_i|`. For a quantized ONNX
weight, "zero" means equal to its zero point (the integer that dequantizes to 0).
An empty set of tensors has undefined sparsity: ``nan``, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["pooled_sparsity", "per_weight_sparsity", "zero_count", "model_sparsity", "weight_zero_counts",
           "onnx_sparsity", "onnx_layer_zero_counts"]


def pooled_sparsity(zeros_and_sizes: Iterable[tuple[int, int]]) -> float:
    """Pooled sparsity Σ zeros / Σ sizes of (zeros, size) pairs; ``nan`` when Σ sizes = 0.

    >>> pooled_sparsity([(9, 10), (0, 10)])
    0.45
    """
    zeros = total = 0
    for z, n in zeros_and_sizes:
        zeros += int(z)
        total += int(n)
    return zeros / total if total else math.nan


def per_weight_sparsity(zeros_and_sizes: Mapping[str, tuple[int, int]]) -> dict[str, float]:
    """s(W) = zeros / size of each named (zeros, size) pair (sizes are > 0: a weight has entries).

    >>> per_weight_sparsity({"a": (3, 4), "b": (0, 2)})
    {'a': 0.75, 'b': 0.0}
    """
    return {name: zeros / size for name, (zeros, size) in zeros_and_sizes.items()}


def zero_count(weight: torch.Tensor) -> tuple[int, int]:
    """(number of entries exactly 0, number of entries) of one torch tensor."""
    return int((weight.detach() == 0).sum()), weight.numel()


def weight_zero_counts(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """(zeros, size) of the weight of every convolution and linear layer, keyed ``"<layer>.weight"``.

    Covers ``nn.Conv1d/2d/3d``, ``nn.Linear`` and their QAT / fused variants
    (which subclass them); biases and BatchNorm parameters are not counted.
    """
    from torch import nn

    out: dict[str, tuple[int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, (nn.modules.conv._ConvNd, nn.Linear)):
            out[f"{name}.weight"] = zero_count(module.weight)
    return out


def model_sparsity(model: torch.nn.Module) -> dict[str, float]:
    """Sparsity s(W) of the weight of every convolution and linear layer (see :func:`weight_zero_counts`).

    Pool them with ``pooled_sparsity(weight_zero_counts(model).values())``.
    """
    return per_weight_sparsity(weight_zero_counts(model))


def onnx_sparsity(onnx_path: str | Path) -> dict[str, float]:
    """Sparsity of the weight initializer of every Conv/Gemm/MatMul node of an ONNX graph.

    Handles float graphs (``Conv``, ``Gemm``, ``MatMul``), SparseML's converted
    INT8 graphs (``ConvInteger``, ``MatMulInteger``, ``QLinearConv``,
    ``QLinearMatMul``: zero = the weight's zero point) and QDQ graphs (a weight
    reached through ``DequantizeLinear``: zero = that node's zero point). Keys are
    initializer names; weights computed at run time are skipped.

    Raises
    ------
    InputError
        The file is missing or not a valid ONNX model.
    """
    return {name: zeros / size for _, name, zeros, size in _graph_weight_zeros(onnx_path)}


def onnx_layer_zero_counts(onnx_path: str | Path) -> dict[str, tuple[int, int]]:
    """(zeros, size) of each Conv/Gemm/MatMul weight of an ONNX graph, keyed by the torch weight it exports.

    Zeros are counted as in :func:`onnx_sparsity` (a quantized weight's zero is its zero
    point). The key is rebuilt from the node's scope name, which the TorchScript exporter
    writes as ``/<child>/<grandchild>/.../<OpType>``: the leading ``model`` component
    (:class:`compress_gate.compress.scores.ScoresModel`'s wrapped model) is dropped, a
    component that extends the one before it replaces it (``layer1`` then ``layer1.0``),
    wrapper components (``module``, ``module.<i>``: SparseML's QAT wrapper and the fused
    conv-BN-ReLU inside it) are dropped, and ``.weight`` is appended::

        /model/layer2/layer2.0/downsample/downsample.0/Conv  ->  layer2.0.downsample.0.weight
        /model/layer1/layer1.0/conv1/module/module.0/Conv    ->  layer1.0.conv1.weight

    A node without a scope name is keyed by its weight initializer's name. So the
    sparsity of a layer is read off the graph that ships, whichever backend wrote it
    (BN folded into the convolution keeps a zero a zero).

    Raises
    ------
    InputError
        The file is missing or not a valid ONNX model.
    """
    return {_torch_weight_name(node.name) or name: (zeros, size)
            for node, name, zeros, size in _graph_weight_zeros(onnx_path)}


def _torch_weight_name(scope: str) -> str | None:
    parts = [p for p in scope.split("/") if p][:-1]       # drop the op name ("Conv", "Gemm")
    if not parts:
        return None
    if parts[0] == "model":
        parts = parts[1:]
    names: list[str] = []
    for part in parts:
        if names and part.startswith(names[-1] + "."):
            names[-1] = part
        else:
            names.append(part)
    names = [name for name in names if name != "module" and not name.startswith("module.")]
    return ".".join(names + ["weight"]) if names else None


def _graph_weight_zeros(onnx_path: str | Path) -> list[tuple[Any, str, int, int]]:
    """(node, weight initializer name, zeros, size) for each weighted node of the graph."""
    from onnx import numpy_helper

    from compress_gate.compress.export import load_onnx

    graph = load_onnx(onnx_path).graph
    initializers = {init.name: init for init in graph.initializer}
    dequantized_by = {node.output[0]: node for node in graph.node if node.op_type == "DequantizeLinear"}
    # op type -> (weight input index, weight zero-point input index or None)
    weight_inputs = {"Conv": (1, None), "Gemm": (1, None), "MatMul": (1, None), "ConvInteger": (1, 3),
                     "MatMulInteger": (1, 3), "QLinearConv": (3, 5), "QLinearMatMul": (3, 5)}

    def zero_point(name: str | None) -> np.ndarray | int:
        if name and name in initializers:
            return numpy_helper.to_array(initializers[name])
        return 0

    out = []
    for node in graph.node:
        if node.op_type not in weight_inputs:
            continue
        index, zp_index = weight_inputs[node.op_type]
        if len(node.input) <= index:
            continue
        name = node.input[index]
        zp_name = node.input[zp_index] if zp_index is not None and len(node.input) > zp_index else None
        axis = 0 if node.op_type in ("ConvInteger", "QLinearConv") else 1
        if name in dequantized_by:
            dq = dequantized_by[name]
            name, zp_name = dq.input[0], (dq.input[2] if len(dq.input) > 2 else None)
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if name not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[name])
        zp = _broadcast_zero_point(np.asarray(zero_point(zp_name)), weight.ndim, axis)
        out.append((node, name, int((weight == zp).sum()), int(weight.size)))
    return out


def _broadcast_zero_point(zp: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-tensor zero point as a scalar; a per-channel one shaped to broadcast along ``axis``."""
    if zp.size == 1:
        return zp.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = zp.size
    return zp.reshape(shape)
