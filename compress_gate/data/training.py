"""Rows to train on, without torch: :mod:`compress_gate.models.loaders` wraps them in a data loader."""

from __future__ import annotations

import numpy as np

from compress_gate.data.contract import SPLITS, EvalData
from compress_gate.data.image_files import ImageFiles
from compress_gate.errors import InputError

__all__ = ["training_arrays"]


def training_arrays(data: EvalData, *, split: str = "train") -> tuple[np.ndarray | ImageFiles, np.ndarray]:
    """Inputs and loss targets of the rows in ``split``.

    Returns
    -------
    inputs : ndarray of shape (n, C, H, W), float32, or ImageFiles
        The split's image files, still undecoded, when the data streams images.
    targets : ndarray
        Multi-class: (n,) int64 class indices (for cross-entropy).
        Multi-label: (n, K) float32 in {0.0, 1.0} (for binary cross-entropy with logits).

    Raises
    ------
    InputError
        The data has no ``inputs``, ``split`` is unknown, or it has no rows.
    """
    if split not in SPLITS:
        raise InputError(f"training_arrays: split {split!r} is not one of {list(SPLITS)}.")
    if data.inputs is None:
        raise InputError("training_arrays: this eval data has no `inputs` (a data.npz for judging "
                         "predictions made elsewhere). Training needs them: use a data source with "
                         "images (demo, celeba, csv) or an npz that holds `inputs`.")
    rows = data.mask(split)
    if not rows.any():
        raise InputError(f"training_arrays: the data has no rows with split {split!r}; add some (the "
                         "dense teacher and the compression schedule train on them).")
    inputs = (data.inputs[rows] if isinstance(data.inputs, ImageFiles)
              else np.ascontiguousarray(data.inputs[rows], dtype=np.float32))
    if data.task == "multiclass":
        return inputs, data.label_index[rows].astype(np.int64)
    return inputs, data.labels[rows].astype(np.float32)
