"""Compression backends behind one seam, and the SparseML glue: shims, recipes, ONNX export, quantization.

:func:`get_compressor` returns the :class:`Compressor` that ``compression.backend`` names
(:mod:`compress_gate.compress.backend`; SparseML's is :mod:`compress_gate.compress.sparseml_backend`).
Importing this package imports neither torch nor SparseML; each function imports
what it needs (after :func:`apply_compat`, which every SparseML entry point calls).

Which artefact serves which engine: see :mod:`compress_gate.compress.export`.
"""

from compress_gate.compress.backend import CompressionResult, Compressor, get_compressor
from compress_gate.compress.compat import apply_compat
from compress_gate.compress.export import (
    PARITY_ATOL_FP32,
    PARITY_ATOL_QUANTIZED,
    check_parity,
    export_onnx,
    float_twin,
    is_quantized_model,
    load_onnx,
)
from compress_gate.compress.ort_quant import quantize_for_ort
from compress_gate.compress.sparsify import check_recipe, compress_model, load_recipe
from compress_gate.compress.sparsity import model_sparsity, onnx_sparsity, pooled_sparsity

__all__ = [
    "PARITY_ATOL_FP32",
    "PARITY_ATOL_QUANTIZED",
    "CompressionResult",
    "Compressor",
    "apply_compat",
    "check_parity",
    "check_recipe",
    "compress_model",
    "export_onnx",
    "float_twin",
    "get_compressor",
    "is_quantized_model",
    "load_onnx",
    "load_recipe",
    "model_sparsity",
    "onnx_sparsity",
    "pooled_sparsity",
    "quantize_for_ort",
]
