"""Image files -> model inputs: centre crop, resize, scale to [-1, 1] (Pillow, imported lazily).

Every image source uses the same preprocessing, so a model trained on one is fed
the same way at run time:

.. math:: x = (p / p_{max} - 0.5) / 0.5 \\in [-1, 1]

with ``p_max`` = 255 for 8-bit images (16 for the demo digits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from compress_gate.errors import InputError

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


def _pillow_image():  # noqa: ANN202 - the PIL.Image module
    try:
        from PIL import Image
    except ImportError as err:
        raise InputError("Reading image files needs Pillow, which is not installed. Install it "
                         "(`pip install pillow`), or give the data as preprocessed arrays "
                         "(`kind: npz`).") from err
    return Image


def load_images(paths: Sequence[Path], *, image_size: int, channels: int, crop_size: int | None,
                where: Sequence[str] | None = None, progress: Progress | None = None) -> np.ndarray:
    """Read image files into an (n, channels, image_size, image_size) float32 array in [-1, 1].

    Each image is centre-cropped to a ``crop_size`` square (``None``: the largest
    centred square), resized with bilinear filtering, converted to grey (``channels``
    = 1) or RGB (3) and normalised with :func:`normalize_unit`.

    ``where`` (one string per path, e.g. ``"row 12"``) is added to error messages.

    Raises
    ------
    InputError
        A file is missing or unreadable, or ``crop_size`` is larger than the image.
    """
    image_module = _pillow_image()
    mode = "L" if channels == 1 else "RGB"
    out = np.empty((len(paths), channels, image_size, image_size), dtype=np.float32)
    for i, path in enumerate(paths):
        context = f" ({where[i]})" if where is not None else ""
        if not path.is_file():
            raise InputError(f"{path}{context}: no such image file. Check the path (relative paths "
                             "are relative to the folder of the file that lists them) or drop the row.")
        try:
            with image_module.open(path) as img:
                pixels = _crop_resize(img, image_size=image_size, mode=mode, crop_size=crop_size,
                                      resample=image_module.Resampling.BILINEAR)
        except InputError as err:
            raise InputError(f"{path}{context}: {err}") from err
        except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as err:
            raise InputError(f"{path}{context}: cannot read the image ({err}). Replace the file with "
                             "a readable JPEG or PNG, or drop the row.") from err
        unit = pixels.astype(np.float32) / 255.0
        out[i] = normalize_unit(unit.reshape(image_size, image_size, channels).transpose(2, 0, 1))
        if progress is not None:
            progress(i + 1, len(paths))
    return out


def _crop_resize(img, *, image_size: int, mode: str, crop_size: int | None,  # noqa: ANN001
                 resample: int) -> np.ndarray:
    """Centre-crop ``img`` to a square and resize it; returns uint8 (H, W) or (H, W, 3)."""
    width, height = img.size
    side = min(width, height) if crop_size is None else crop_size
    if side > min(width, height):
        raise InputError(f"crop_size = {crop_size} is larger than the image ({width}x{height}). Set "
                         f"`crop_size` <= {min(width, height)}, or leave it out to crop the largest "
                         "centred square.")
    left, top = round((width - side) / 2), round((height - side) / 2)
    square = img.convert(mode).crop((left, top, left + side, top + side))
    resized = square.resize((image_size, image_size), resample=resample)
    return np.asarray(resized, dtype=np.uint8)
