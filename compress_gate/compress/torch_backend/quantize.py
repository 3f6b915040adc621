"""Post-training INT8 for ONNX Runtime, both ways Hooker et al. compare.

- **dynamic range** (:func:`quantize_dynamic_int8`): weights stored as INT8 once,
  activations quantized on the fly per batch from their observed range (no
  calibration data); ONNX Runtime's ``quantize_dynamic``, QOperator format
  (``ConvInteger`` / ``MatMulInteger``). Weights are unsigned (U8): ONNX Runtime's CPU
  ``ConvInteger`` kernel has no signed-weight implementation.
- **static fixed point** (:func:`quantize_static_int8`): weights and activations INT8 with
  activation ranges calibrated on calibration-split inputs; QDQ graph from
  :func:`compress_gate.compress.ort_quant.quantize_for_ort` (shared with the SparseML
  backend; see its docstring for the U8S8, per-channel and float-output choices).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    from compress_gate.data import ImageFiles

__all__ = ["DYNAMIC_KEY_VALUE", "quantize_dynamic_int8", "quantize_static_int8"]

#: ``compress_gate.quantized`` metadata value of a dynamic-range graph.
DYNAMIC_KEY_VALUE = "dynamic"


def quantize_dynamic_int8(fp32_onnx: str | Path, out_path: str | Path) -> Path:
    """Write a dynamic-range INT8 version of ``fp32_onnx`` to ``out_path`` (atomically) and return it.

    Every Conv, MatMul and Gemm gets U8 per-channel weights; the node producing the
    graph output (sigmoid/softmax) stays float. Metadata is kept, with
    ``compress_gate.quantized = "dynamic"``.

    Raises
    ------
    InputError
        Missing/corrupt ``fp32_onnx`` or an already quantized graph.
    RuntimeFailure
        ONNX Runtime's quantizer failed.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from compress_gate.compress.export import QUANTIZED_KEY, annotate_onnx, load_onnx
    from compress_gate.compress.ort_quant import check_float_graph

    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    model = load_onnx(fp32_onnx)
    check_float_graph(model, fp32_onnx, needs="dynamic quantization needs the FP32 export")
    try:
        with atomic_path(out_path) as tmp:
            quantize_dynamic(str(fp32_onnx), str(tmp), weight_type=QuantType.QUInt8, per_channel=True,
                             op_types_to_quantize=["Conv", "MatMul", "Gemm"])
            annotate_onnx(tmp, {**{p.key: p.value for p in model.metadata_props},
                                QUANTIZED_KEY: DYNAMIC_KEY_VALUE})
    except (InputError, RuntimeFailure):
        raise
    except Exception as err:  # onnxruntime raises many types; one message for the user
        raise RuntimeFailure(f"ONNX Runtime could not quantize {fp32_onnx} dynamically ({type(err).__name__}: "
                             f"{err}). Nothing was written to {out_path}.") from err
    return out_path


def quantize_static_int8(fp32_onnx: str | Path, out_path: str | Path, calib: np.ndarray | ImageFiles | None) -> Path:
    """Static QDQ INT8 of ``fp32_onnx`` calibrated on ``calib`` (N, C, H, W; an array or image files
    decoded batch by batch): weights and activations INT8 with activation ranges calibrated on
    ``calib``, the QDQ graph of :func:`compress_gate.compress.ort_quant.quantize_for_ort`.

    Raises
    ------
    InputError
        ``calib`` is ``None`` or unusable (static quantization needs calibration inputs).
    """
    from compress_gate.compress.ort_quant import quantize_for_ort

    if calib is None:
        raise InputError("compression.quantization = static needs calibration inputs (the data's `calib` split); "
                         "none were given. Add calib rows to the data, or use `quantization: dynamic`.")
    return quantize_for_ort(fp32_onnx, out_path, calib)
