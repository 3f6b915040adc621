"""The maintained torch compression backend (``compression: {backend: torch}``).

Gradual magnitude pruning on SparseML's schedule (unstructured or N:M masks),
structured channel pruning with Torch-Pruning, Hinton distillation,
post-training INT8 (dynamic or static QDQ) with ONNX Runtime's quantizer, and
quantization-aware training with torchao (:mod:`.qat`); no SparseML import anywhere. Importing this package imports neither torch nor
onnxruntime; each function imports what it needs.
"""

from compress_gate.compress.torch_backend.compressor import PARITY_ATOL_REQUANTIZED, TorchCompressor
from compress_gate.compress.torch_backend.schedule import GMPSchedule, interpolate

__all__ = ["PARITY_ATOL_REQUANTIZED", "GMPSchedule", "TorchCompressor", "interpolate"]
