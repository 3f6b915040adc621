"""Pixels in [0, 1] -> model inputs of the in-memory sources (demo, synthetic), and their
re-normalisation with a model's ``mean``/``std``.

.. math:: x = (p / p_{max} - 0.5) / 0.5 \\in [-1, 1]

with ``p_max`` = 16 for the demo digits (1 for the drawn synthetic images). Image files
(csv, celeba) are decoded on access by :mod:`compress_gate.data.image_files` with the same
default normalisation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

PIXEL_MEAN = 0.5
PIXEL_STD = 0.5

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while images are read."""


def normalize_unit(unit: np.ndarray) -> np.ndarray:
    """Map pixel values in [0, 1] to model inputs: ``(unit - 0.5) / 0.5``, float32."""
    return ((np.asarray(unit, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD).astype(np.float32)


def renormalize_(inputs: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Re-express inputs normalised by :func:`normalize_unit` with per-channel ``mean``/``std``, in place.

    .. math:: x'_c = (u - \\mathrm{mean}_c) / \\mathrm{std}_c, \\quad u = 0.5\\,x + 0.5

    where u is the pixel in [0, 1]; so ``mean = std = 0.5`` leaves ``inputs`` unchanged.
    ``inputs`` is (n, C, H, W) float32 with C = ``len(mean)``; returns it.
    """
    scale = PIXEL_STD / np.asarray(std, dtype=np.float32)
    shift = (PIXEL_MEAN - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    for channel in range(inputs.shape[1]):   # one channel at a time: no second copy of the images
        inputs[:, channel] *= scale[channel]
        inputs[:, channel] += shift[channel]
    return inputs
