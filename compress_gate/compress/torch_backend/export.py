"""FP32 ONNX export of a torch-backend student, without SparseML.

:func:`compress_gate.compress.export.export_onnx` first applies the SparseML
compatibility shims (importing SparseML), which the torch backend's environment
does not have; this is the same TorchScript export (``dynamo=False``, constant
folding, so eval-mode BatchNorm folds into the preceding conv and zeros stay
zeros) with the same contract: one input ``"input"`` (N, C, H, W) float32 with a
dynamic batch axis, one output ``"scores"`` (sigmoid or softmax of the logits), and
``compress_gate.task`` / ``compress_gate.quantized = "false"`` in the metadata.
A structurally pruned student exports with its reduced channel counts.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from compress_gate._atomic import atomic_path
from compress_gate.compress.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    QUANTIZED_KEY,
    TASK_KEY,
    annotate_onnx,
)
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_OPSET", "export_fp32"]

#: Opset of the torch backend's graphs (ONNX Runtime's static QDQ quantizer needs >= 13).
DEFAULT_OPSET = 17


def export_fp32(model: torch.nn.Module, path: str | Path, *, input_shape: tuple[int, ...], task: str,
                opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` (logits, not modified) as an FP32 scores graph to ``path``, atomically; return ``path``.

    ``input_shape`` is one sample's (C, H, W).

    Raises
    ------
    InputError
        Unknown ``task`` or an ``input_shape`` that is not three positive integers.
    RuntimeFailure
        The exporter failed (nothing is written).
    """
    import torch

    from compress_gate.compress.scores import ScoresModel

    if task not in ("multilabel", "multiclass"):
        raise InputError(f"task = {task!r} must be 'multilabel' or 'multiclass'.")
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"input_shape = {input_shape!r} must be one sample's (C, H, W), e.g. (3, 32, 32).")
    wrapped = ScoresModel(copy.deepcopy(model), task).eval()
    path = Path(path)
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated, not gone
            torch.onnx.export(wrapped, (torch.zeros((1, *shape)),), str(tmp), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              do_constant_folding=True)
            annotate_onnx(tmp, {TASK_KEY: task, QUANTIZED_KEY: "false"})
    except Exception as err:  # the exporter raises many types; the user needs one message
        raise RuntimeFailure(f"ONNX export to {path} failed ({type(err).__name__}: {err}). Nothing was "
                             "written there.") from err
    return path
