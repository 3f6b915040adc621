"""INT8 graphs for ONNX Runtime: static QDQ quantization with ``onnxruntime.quantization``.

ONNX Runtime runs SparseML's converted QAT graph (ConvInteger + casts) slower
than FP32; it runs its own QDQ graphs (QuantizeLinear/DequantizeLinear pairs that
it fuses into integer kernels) fast. So the ONNX Runtime artefact of a student is
its FP32 export (for a QAT student: the float twin, whose weights are the
QAT-trained ones) quantized here, calibrated on calibration-split inputs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate.data.image_files import ImageFiles, input_batches
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["quantize_for_ort", "check_float_graph", "QUANTIZED_OPS", "CALIBRATION_BATCH_SIZE"]

#: Inputs per calibration batch fed to ONNX Runtime's MinMax calibrator. The calibrator keeps every
#: batch's activations until it computes the ranges, so its memory grows with the calib split; its
#: ``CalibMaxIntermediateOutputs`` option is not used: ONNX Runtime 1.18 to 1.32 discard each full
#: group of batches without folding it into the ranges (ranges from the last partial group only, or
#: "No data is collected." when the batches are a multiple of the group size).
CALIBRATION_BATCH_SIZE = 16


def quantize_for_ort(
    fp32_onnx: str | Path,
    out_path: str | Path,
    calibration_inputs: np.ndarray | ImageFiles,
    *,
    per_channel: bool = True,
    reduce_range: bool = True,
) -> Path:
    """Write a static INT8 QDQ version of ``fp32_onnx`` to ``out_path`` (atomically) and return it.

    Settings: ``QuantFormat.QDQ``; unsigned INT8 activations and signed INT8
    weights (U8S8), which ONNX Runtime runs with its fast x86 integer kernels
    (on this project's AVX-512 VNNI machine U8S8 beat FP32 while ONNX Runtime's
    default S8S8 ran slower than FP32; ``benchmarks/engines.py`` measures it);
    on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) the U8S8 kernels
    saturate on 8-bit weights, so weights use 7 bits by default
    (``reduce_range=True``): the shipped graph must be right on whichever x86 CPU
    runs it, not only on the one that quantized it (on an AVX2 machine the demo's
    8-bit student differed from its torch model by 0.395, past the 0.25
    tolerance); ``reduce_range=False`` keeps 8-bit weights for VNNI-only
    deployments; weights per output channel
    when ``per_channel`` (each filter gets its own scale, which keeps small
    pruned filters accurate); MinMax calibration of
    activation ranges over ``calibration_inputs`` (N, C, H, W; an array, or image files decoded
    batch by batch), fed in batches of :data:`CALIBRATION_BATCH_SIZE` (the calibrator holds every
    batch's activations until it computes the ranges). The graph is pre-processed first
    (``quant_pre_process``: shape inference and graph optimisation). The node
    that produces the graph output (the sigmoid/softmax) stays in float, so
    scores keep full precision instead of 1/256 steps. The source graph's
    metadata is kept, with ``compress_gate.quantized = "qdq"``.

    Raises
    ------
    InputError
        Missing/corrupt ``fp32_onnx``, an already quantized graph, or calibration
        inputs that are empty, non-finite or shaped unlike the graph's input.
    RuntimeFailure
        ONNX Runtime's quantizer failed (its error is in the message).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    from compress_gate.compress.export import QUANTIZED_KEY, annotate_onnx, load_onnx

    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    model = load_onnx(fp32_onnx)
    check_float_graph(model, fp32_onnx, needs="quantize_for_ort needs the FP32 export "
                      "(export_onnx(..., quantized=False))")
    input_name, inputs = _check_calibration(model, calibration_inputs, fp32_onnx)
    try:
        with tempfile.TemporaryDirectory(dir=out_path.parent if out_path.parent.exists() else None,
                                         prefix=".quantize-") as work:
            prepared = Path(work, "prepared.onnx")
            quant_pre_process(str(fp32_onnx), str(prepared))
            output_nodes = _name_nodes_and_find_outputs(prepared)
            with atomic_path(out_path) as tmp:
                quantize_static(
                    str(prepared), str(tmp), _BatchReader(input_name, inputs),
                    quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=output_nodes,
                )
                annotate_onnx(tmp, {**{p.key: p.value for p in model.metadata_props}, QUANTIZED_KEY: "qdq"})
    except (InputError, RuntimeFailure):
        raise
    except Exception as err:  # onnxruntime raises many types; one message for the user
        raise RuntimeFailure(f"ONNX Runtime could not quantize {fp32_onnx} ({type(err).__name__}: {err}). "
                             f"Nothing was written to {out_path}.") from err
    return out_path


#: Operators that only a quantized graph holds (QDQ and QOperator formats).
QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "ConvInteger", "MatMulInteger", "QLinearConv",
                           "QLinearMatMul"})


def check_float_graph(model: Any, path: Path, *, needs: str) -> None:
    """InputError naming ``path`` when the ONNX ``model`` is already quantized (holds a :data:`QUANTIZED_OPS` node).

    ``needs`` ends the message: what the caller needs instead.
    """
    if any(node.op_type in QUANTIZED_OPS for node in model.graph.node):
        raise InputError(f"{path}: the graph is already quantized; {needs}.")


def _name_nodes_and_find_outputs(path: Path) -> list[str]:
    """Name every unnamed node of the graph at ``path`` (in place); return the output nodes' names.

    The quantizer excludes nodes *by name*: with unnamed nodes, excluding the output node
    (name ``""``) would exclude every node and leave an FP32 graph labelled INT8.
    """
    import onnx

    model = onnx.load(str(path))
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            node.name = next(name for name in (f"{node.op_type}_{index}_{k}" for k in range(len(taken) + 1))
                             if name not in taken)
            taken.add(node.name)
    onnx.save(model, str(path))
    graph_outputs = {output.name for output in model.graph.output}
    return [node.name for node in model.graph.node if set(node.output) & graph_outputs]


class _BatchReader:
    """``CalibrationDataReader`` protocol: ``get_next()`` yields ``{input_name: batch}`` then ``None``;
    batches are sliced (or decoded) one at a time, each checked finite."""

    def __init__(self, input_name: str, inputs: np.ndarray | ImageFiles) -> None:
        self._name = input_name
        self._batches = input_batches(inputs, CALIBRATION_BATCH_SIZE)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is not None and not np.isfinite(batch).all():
            raise InputError("calibration inputs must be finite floating-point values.")
        return None if batch is None else {self._name: batch}


def _check_calibration(model: Any, calibration_inputs: np.ndarray | ImageFiles,
                       source: Path) -> tuple[str, np.ndarray | ImageFiles]:
    """The graph's input name and the calibration inputs (contiguous float32, or the image files), after
    the shape checks (an array's values are checked here; decoded images batch by batch)."""
    graph_input = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in graph_input.type.tensor_type.shape.dim]
    array = calibration_inputs if isinstance(calibration_inputs, ImageFiles) else np.asarray(calibration_inputs)
    if array.ndim != len(dims) or array.shape[0] == 0:
        raise InputError(f"calibration inputs have shape {array.shape}; {source} takes a non-empty batch of "
                         f"rank {len(dims)} (input {graph_input.name!r}).")
    expected = tuple(dims[1:])
    if any(d is not None and d != s for d, s in zip(expected, array.shape[1:])):
        raise InputError(f"calibration inputs have per-sample shape {array.shape[1:]}; {source} expects "
                         f"{expected}. Use inputs preprocessed like the model's.")
    if isinstance(array, ImageFiles):
        return graph_input.name, array
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise InputError("calibration inputs must be finite floating-point values.")
    return graph_input.name, np.ascontiguousarray(array, dtype=np.float32)
