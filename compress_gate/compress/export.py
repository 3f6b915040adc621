"""ONNX export of teachers and students, and the parity check of what was exported.

Which artefact serves which engine (DESIGN.md, "Engines"):

==========================================  =====================================  ==============
model                                       artefact                               engine
==========================================  =====================================  ==============
dense teacher, pruned (GMP) student         ``export_onnx(..., quantized=False)``  both (FP32)
QAT student                                 ``export_onnx(..., quantized=True)``:  DeepSparse
                                            SparseML's converted INT8 graph
                                            (ConvInteger / QLinear ops)
QAT student                                 ``export_onnx(..., quantized=False)``  ONNX Runtime
                                            (the float twin) then
                                            :func:`quantize_for_ort` (QDQ INT8)
==========================================  =====================================  ==============

SparseML's converted graph is what DeepSparse runs fast; ONNX Runtime runs it
slower than FP32, and wants QDQ graphs from its own quantizer instead.

Every exported graph has one input ``"input"`` (N, C, H, W) float32 with a
dynamic batch axis and one output ``"scores"`` (N, K): sigmoid of the logits for
``"multilabel"``, softmax over classes for ``"multiclass"``.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate._paths import require_regular_file
from compress_gate._task import TASKS
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    import onnx
    import torch

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "TASK_KEY", "QUANTIZED_KEY", "PARITY_ATOL_FP32", "PARITY_ATOL_QUANTIZED",
           "export_onnx", "check_parity", "load_onnx", "run_onnx_cpu", "annotate_onnx", "is_quantized_model",
           "float_twin", "freeze_quantization"]

INPUT_NAME = "input"
OUTPUT_NAME = "scores"
#: ONNX metadata keys: the task, and which quantization the graph carries:
#: "false" (FP32), "true" (SparseML's converted INT8) or "qdq" (ONNX Runtime's QDQ INT8).
TASK_KEY = "compress_gate.task"
QUANTIZED_KEY = "compress_gate.quantized"

#: Largest |score difference| accepted between an FP32 export and its torch model.
PARITY_ATOL_FP32 = 1e-4
#: ... between SparseML's converted INT8 export and its fake-quantized torch model: integer
#: kernels round differently from fake quantization, so one activation may move by a
#: quantization step; scores are probabilities, so 0.05 is still a tight bound.
PARITY_ATOL_QUANTIZED = 5e-2


def export_onnx(
    model: torch.nn.Module,
    path: str | Path,
    *,
    input_shape: tuple[int, ...],
    task: str,
    quantized: bool = False,
    opset: int = 13,
) -> Path:
    """Export ``model`` (logits) to an ONNX graph that outputs scores, atomically, and return ``path``.

    ``input_shape`` is one sample's shape ``(C, H, W)`` (a leading batch size, if
    given, only sets the tracing batch). ``quantized=True`` needs a QAT model and
    exports it through SparseML's ``ModuleExporter`` with ``convert_qat=True``
    (DeepSparse's INT8 graph). ``quantized=False`` exports FP32 with the
    TorchScript exporter (``dynamo=False``); for a QAT model that is its
    :func:`float_twin` (BN folded, fake quantization off), for :func:`quantize_for_ort`.
    The model is not modified. The graph's metadata records ``compress_gate.task``
    and ``compress_gate.quantized``.

    Raises
    ------
    InputError
        Unknown ``task``, a malformed ``input_shape``, ``quantized=True`` on a
        model without QAT, or ``opset`` outside 13–17.
    RuntimeFailure
        The exporter failed (the message names the path and the exporter's error).
    """
    import torch

    from compress_gate.compress.compat import apply_compat

    _check_task(task)
    sample_shape = _check_input_shape(input_shape)
    if not 13 <= opset <= 17:
        raise InputError(f"opset = {opset} is not supported: use 13 to 17 (the TorchScript exporter's range "
                         "that SparseML's QAT conversion and DeepSparse accept).")
    has_qat = is_quantized_model(model)
    if has_qat:  # SparseML's QAT modules need the shims; an FP32 export needs neither them nor SparseML
        apply_compat()
    if quantized and not has_qat:
        raise InputError("export_onnx(quantized=True) needs a model trained with QAT (a SparseML recipe with a "
                         "QuantizationModifier); this model has no fake-quantize modules.")
    from compress_gate.compress.scores import ScoresModel

    source = float_twin(model) if has_qat and not quantized else freeze_quantization(copy.deepcopy(model))
    wrapped = ScoresModel(source, task).eval()
    sample = torch.zeros(sample_shape, dtype=torch.float32)
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            if quantized:
                _export_converted_qat(wrapped, sample, tmp, opset)
            else:
                torch.onnx.export(wrapped, (sample,), str(tmp), input_names=[INPUT_NAME],
                                  output_names=[OUTPUT_NAME], opset_version=opset, dynamo=False,
                                  dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                                  do_constant_folding=True)
            annotate_onnx(tmp, {TASK_KEY: task, QUANTIZED_KEY: "true" if quantized else "false"})
    except (InputError, RuntimeFailure):
        raise
    except Exception as err:  # the exporters raise many types; the user needs one message
        raise RuntimeFailure(f"ONNX export to {path} failed ({type(err).__name__}: {err}). Nothing was "
                             "written there.") from err
    return path


def check_parity(
    model: torch.nn.Module,
    onnx_path: str | Path,
    inputs: np.ndarray,
    *,
    task: str,
    atol: float,
) -> float:
    """Largest absolute score difference between ``onnx_path`` (ONNX Runtime, CPU) and ``model`` (torch).

    .. math:: d = \\max_{n,k} |s^{\\mathrm{onnx}}_{nk} - s^{\\mathrm{torch}}_{nk}|

    where s are the scores (sigmoid/softmax of the logits) on ``inputs``
    (N, C, H, W) float32. The torch side runs a copy of ``model`` in eval mode with
    quantization observers frozen, so the check changes nothing; for a QAT model
    it keeps fake quantization only when the graph is SparseML's converted INT8
    export (metadata ``compress_gate.quantized = "true"``), and compares the float
    twin and its QDQ version with :func:`float_twin`. Use :data:`PARITY_ATOL_FP32` or
    :data:`PARITY_ATOL_QUANTIZED` as ``atol`` (a QDQ graph from
    :func:`quantize_for_ort` needs a tolerance for post-training quantization).

    Returns ``d`` when ``d <= atol``.

    Raises
    ------
    InputError
        Missing/corrupt ONNX file, empty or non-finite ``inputs``, a shape the graph rejects.
    RuntimeFailure
        ``d > atol`` (the message names the model file, ``d`` and ``atol``) or
        the graph produced non-finite scores.
    """
    import torch

    _check_task(task)
    inputs = _check_batch(inputs, "inputs")
    from compress_gate.compress.scores import ScoresModel

    onnx_scores = run_onnx_cpu(onnx_path, inputs)
    metadata = {p.key: p.value for p in load_onnx(onnx_path).metadata_props}
    if metadata.get(QUANTIZED_KEY) == "true":
        reference = ScoresModel(freeze_quantization(copy.deepcopy(model)), task).eval()
    else:
        reference = ScoresModel(float_twin(model), task).eval()
    with torch.no_grad():
        torch_scores = reference(torch.from_numpy(inputs)).numpy()
    if onnx_scores.shape != torch_scores.shape:
        raise RuntimeFailure(f"{onnx_path}: the ONNX graph outputs shape {onnx_scores.shape} but the torch "
                             f"model outputs {torch_scores.shape}; re-export the model.")
    if not np.isfinite(onnx_scores).all():
        raise RuntimeFailure(f"{onnx_path}: the ONNX graph produced NaN or infinite scores.")
    difference = float(np.max(np.abs(onnx_scores - torch_scores)))
    if not difference <= atol:
        raise RuntimeFailure(f"{onnx_path}: exported scores differ from the torch model by up to {difference:.3g} "
                             f"(tolerance {atol:.3g}) on {len(inputs)} inputs. The export does not reproduce "
                             "the model; check the opset and the exporter warnings.")
    return difference


def run_onnx_cpu(onnx_path: str | Path, inputs: np.ndarray) -> np.ndarray:
    """Scores of ``onnx_path`` on ``inputs`` with ONNX Runtime's CPU provider (one thread pool, one run)."""
    import onnxruntime as ort

    load_onnx(onnx_path)  # a clear InputError for a missing or corrupt file
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    try:
        return np.asarray(session.run(None, {name: inputs})[0])
    except Exception as err:  # onnxruntime raises its own exception types for bad shapes
        raise InputError(f"{onnx_path}: ONNX Runtime rejected inputs of shape {inputs.shape} ({err}). "
                         "Give inputs shaped like the model's input.") from err


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load and check an ONNX model (``onnx.checker``, so no engine ever sees a corrupt graph).

    Raises :class:`InputError` for a missing, unreadable or invalid file, quoting the
    first line of the parser's complaint.
    """
    import onnx

    path = require_regular_file(path, "ONNX model", missing_hint="Check the path, or export the model first "
                                "(compress_gate.compress.export_onnx).")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf DecodeError, onnx ValidationError, OSError, ...
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        raise InputError(f"{path}: not a valid ONNX model ({type(err).__name__}: {first_line}). Re-export "
                         "it; the file may be truncated or not an ONNX file.") from err
    return model


def is_quantized_model(model: torch.nn.Module) -> bool:
    """Whether ``model`` contains fake-quantize modules (QAT was applied)."""
    from torch.ao.quantization import FakeQuantizeBase

    return any(isinstance(m, FakeQuantizeBase) for m in model.modules())


def float_twin(model: torch.nn.Module) -> torch.nn.Module:
    r"""A float copy of a QAT model: the QAT-trained weights without fake quantization, BN folded in.

    Every QAT module (one with a ``weight_fake_quant``) becomes its float module
    through torch's ``to_float()``, which folds a fused BatchNorm into the conv
    with its running statistics, :math:`W' = W\,\gamma/\sqrt{\sigma^2+\epsilon}`,
    :math:`b' = \beta + (b - \mu)\,\gamma/\sqrt{\sigma^2+\epsilon}` (zeros stay
    zeros, so sparsity is kept); the remaining fake-quantize modules (inputs,
    residual adds) are switched off. Without the folding, the exported graph keeps
    QAT's Conv → Div → BatchNormalization per layer, which ONNX Runtime cannot
    fuse and runs several times slower than the teacher. A model without QAT
    comes back as an eval-mode copy.
    """
    import torch

    twin = freeze_quantization(copy.deepcopy(model))
    _replace_qat_modules(twin)
    twin.apply(torch.ao.quantization.disable_fake_quant)
    return twin.eval()


def _replace_qat_modules(module: torch.nn.Module) -> None:
    for name, child in module.named_children():
        if hasattr(child, "weight_fake_quant") and hasattr(child, "to_float"):
            setattr(module, name, child.to_float())
        else:
            _replace_qat_modules(child)


def freeze_quantization(model: torch.nn.Module) -> torch.nn.Module:
    """Stop QAT observers and BatchNorm statistics from updating, in place; returns ``model``.

    After this, eval-mode forward passes do not change the quantization scales.
    A model without QAT is returned unchanged.
    """
    import torch
    from torch.ao.nn.intrinsic import qat as intrinsic_qat

    if is_quantized_model(model):
        model.apply(torch.ao.quantization.disable_observer)
        model.apply(intrinsic_qat.freeze_bn_stats)
    return model


def _export_converted_qat(wrapped: torch.nn.Module, sample: torch.Tensor, target: Path, opset: int) -> None:
    """SparseML's ModuleExporter with ``convert_qat=True`` (QAT graph -> DeepSparse INT8 graph)."""
    from sparseml.pytorch.utils import ModuleExporter

    from compress_gate.models.training import quiet_sparseml

    with quiet_sparseml(), tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as out_dir:
        ModuleExporter(wrapped, output_dir=out_dir).export_onnx(
            sample, name="model.onnx", opset=opset, convert_qat=True,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
        Path(out_dir, "model.onnx").replace(target)


def annotate_onnx(path: str | Path, metadata: dict[str, str]) -> None:
    """Set ``metadata`` keys in the ONNX file's ``metadata_props`` (in place)."""
    import onnx

    model = onnx.load(str(path))
    existing = {p.key: p for p in model.metadata_props}
    for key, value in metadata.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise InputError(f"task = {task!r} must be 'multilabel' or 'multiclass'.")


def _check_input_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) != 4 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise InputError(f"input_shape = {input_shape!r} must be (C, H, W) or (N, C, H, W) positive integers, "
                         "e.g. (3, 32, 32).")
    return shape


def _check_batch(inputs: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(inputs)
    if array.ndim != 4 or array.shape[0] == 0:
        raise InputError(f"{name} has shape {array.shape}; it must be a non-empty (N, C, H, W) batch.")
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{name} has dtype {array.dtype}; it must hold floating-point model inputs.")
    if not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values; give finite model inputs.")
    return np.ascontiguousarray(array, dtype=np.float32)
