"""Sample identity: the id an override is keyed by when a dataset has no id of its own."""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["sample_id"]


def sample_id(tensor: np.ndarray) -> str:
    """SHA-256 hex digest of one preprocessed input tensor, dtype and shape included.

    .. math:: \\mathrm{id} = \\mathrm{sha256}(\\text{dtype.str} \\| \\text{"|"} \\| \\text{shape} \\| \\text{"|"} \\| \\text{C-order bytes})

    The dtype string (e.g. ``<f4``) and shape (e.g. ``(1, 32, 32)``) are hashed with
    the bytes, so the same values in another dtype or shape get another id. The
    runtime recomputes it from the tensor it is given.

    Examples
    --------
    >>> sample_id(np.zeros((1, 2, 2), dtype=np.float32))[:12]
    '1d3e03a46585'
    """
    arr = np.ascontiguousarray(tensor)
    header = f"{arr.dtype.str}|{tuple(int(s) for s in arr.shape)}|".encode("ascii")
    return hashlib.sha256(header + arr.tobytes()).hexdigest()
