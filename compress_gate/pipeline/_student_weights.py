"""What ``compression.json`` records about the student's weights: the digest of every weight's zero
mask (the reproducibility check) and the sparsity measured on the shipped ONNX graph."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from compress_gate.compress import CompressionResult

__all__ = ["mask_digests", "shipped_sparsity"]


def mask_digests(model: torch.nn.Module) -> dict[str, str]:
    """SHA-256 of the zero mask (``w == 0``, bit-packed) of every weight with >= 2 dims.

    Two runs with the same seed must give equal digests (the reproducibility test).
    """
    import torch

    out = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() >= 2:
                mask = np.packbits((param.detach().cpu().numpy() == 0).reshape(-1))
                out[name] = hashlib.sha256(mask.tobytes()).hexdigest()
    return out


def shipped_sparsity(result: CompressionResult, shipped: Path) -> dict[str, Any]:
    """Sparsity of the weights the backend pruned, measured on the ``shipped`` ONNX graph.

    Per weight s = zeros / size (a quantized weight's zero is its zero point), keyed by
    the torch weight name the backend reports in ``result.sparsity``; ``overall_sparsity``
    pools them, Σ zeros / Σ sizes (``nan`` when the backend pruned nothing). A pruned
    weight the graph does not show under its name is listed in ``sparsity_not_in_graph``
    and left out of the pool.
    """
    from compress_gate.compress.sparsity import onnx_layer_zero_counts, pooled_sparsity

    counts = onnx_layer_zero_counts(shipped)
    found = {name: counts[name] for name in result.sparsity if name in counts}
    return {"measured_on": shipped.name, "overall_sparsity": pooled_sparsity(found.values()),
            "sparsity": {name: zeros / size for name, (zeros, size) in found.items()},
            "sparsity_not_in_graph": sorted(set(result.sparsity) - set(found))}
