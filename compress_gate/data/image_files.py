"""Image files as model inputs, decoded on access: a lazy (N, C, S, S) float32 array.

``kind: csv`` and ``kind: celeba`` hold :class:`ImageFiles` in ``EvalData.inputs`` instead
of decoded pixels, so no stage holds every image at once: peak memory grows with the
batch, not with N. Selecting rows (a boolean mask or integer indices) gives another
``ImageFiles``; a slice, or :meth:`ImageFiles.read`, decodes those rows;
:meth:`ImageFiles.batches` decodes batch after batch, the next one read by a thread pool
while the caller works on the current one (Pillow releases the GIL while it decodes and
resizes). Converting the whole object to an array (``numpy.asarray``) is refused: that
is the materialisation this module exists to avoid.

The deterministic transform (:class:`ImageTransform`), per image:

1. centre crop to a square of side ``crop_size`` (``None``: the largest centred square),
   at offset (round((W - s)/2), round((H - s)/2));
2. resize to ``image_size`` squared, bilinear;
3. grey (``channels`` = 1) or RGB (3), u = p / 255 in [0, 1];
4. normalise per channel: x_c = (u_c - mean_c) / std_c (default mean = std = 0.5: x in [-1, 1]).

An image that is missing, not a readable image, or not 8 bits per channel (modes ``1``,
``I``, ``I;16``, ``F``: p / 255 would be wrong) is an :class:`InputError` naming the file
(:func:`check_image`); colour converts to grey for ``channels: 1``, and grey, palette,
CMYK or RGBA convert to RGB for ``channels: 3`` (Pillow's ``convert``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate.data._records import SkippedImage
from compress_gate.errors import InputError

__all__ = ["ImageTransform", "ImageFiles", "SkippedImage", "check_image", "decode_image", "input_batches",
           "scan_images"]

#: Pillow modes that are not 8 bits per channel: refused (their pixels are not p / 255).
WRONG_MODES = ("1", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
#: Rows whose files :func:`scan_images` checks at a time (a pending check costs about 1.7 kB).
SCAN_BLOCK = 4096


def _pillow_image():  # noqa: ANN202 - the PIL.Image module
    try:
        from PIL import Image
    except ImportError as err:
        raise InputError("Reading image files needs Pillow, which is not installed. Install it "
                         "(`pip install pillow`), or give the data as preprocessed arrays "
                         "(`kind: npz`).") from err
    return Image


@dataclass(frozen=True)
class ImageTransform:
    """The deterministic evaluation transform (also what training loads before its augmentation): centre
    crop to a square of side ``crop_size`` (None: the largest), bilinear resize to ``image_size``, grey or
    RGB, u = p / 255, then x_c = (u_c − mean_c) / std_c with one ``mean``/``std`` value per channel."""

    image_size: int
    channels: int = 3
    crop_size: int | None = None
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if len(self.mean) != self.channels:   # the default 3 values, for a grey source
            object.__setattr__(self, "mean", tuple(self.mean[:1]) * self.channels)
            object.__setattr__(self, "std", tuple(self.std[:1]) * self.channels)

    def describe(self) -> dict[str, object]:
        """JSON-able settings (cache keys, data.npz)."""
        return {"image_size": self.image_size, "channels": self.channels, "crop_size": self.crop_size,
                "mean": list(self.mean), "std": list(self.std)}

    def normalized(self, mean: Sequence[float], std: Sequence[float]) -> ImageTransform:
        """The same transform with the model's ``mean``/``std``."""
        return replace(self, mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std))

    def apply(self, img) -> np.ndarray:  # noqa: ANN001 - a PIL image
        """``img`` -> (C, S, S) float32 (steps 1-4)."""
        image_module = _pillow_image()
        width, height = img.size
        side = min(width, height) if self.crop_size is None else self.crop_size
        if side > min(width, height):
            raise InputError(f"crop_size = {self.crop_size} is larger than the image ({width}x{height}). Set "
                             f"`crop_size` <= {min(width, height)}, or leave it out to crop the largest "
                             "centred square.")
        left, top = round((width - side) / 2), round((height - side) / 2)
        square = img.convert("L" if self.channels == 1 else "RGB").crop((left, top, left + side, top + side))
        resized = square.resize((self.image_size, self.image_size), resample=image_module.Resampling.BILINEAR)
        unit = np.asarray(resized, dtype=np.float32).reshape(self.image_size, self.image_size, self.channels) / 255.0
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        return ((unit - mean) / std).transpose(2, 0, 1).astype(np.float32)


def _opened(path: Path, where: str):  # noqa: ANN202 - an open PIL image
    """Open ``path`` (header only), refusing a missing file, a non-image or a wrong mode."""
    image_module = _pillow_image()
    context = f" ({where})" if where else ""
    if not path.is_file():
        raise InputError(f"{path}{context}: no such image file. Check the path (relative paths are relative to "
                         "the folder of the file that lists them), drop the row, or set `data.on_bad_image: "
                         "skip` to leave such images out (they are listed in run.json and report.json).")
    try:
        img = image_module.open(path)
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as err:
        raise _unreadable(path, context, err) from err
    if img.mode in WRONG_MODES:
        img.close()
        raise InputError(f"{path}{context}: the image has mode {img.mode!r}, not 8 bits per channel, so its "
                         "pixels cannot be read as p / 255. Convert it to 8-bit RGB or grey (e.g. "
                         "`Image.open(f).convert('RGB').save(f)`), drop the row, or set `data.on_bad_image: "
                         "skip`.")
    return img


def _unreadable(path: Path, context: str, err: BaseException) -> InputError:
    return InputError(f"{path}{context}: cannot read the image ({err}). Replace the file with a readable JPEG "
                      "or PNG, drop the row, or set `data.on_bad_image: skip` to leave such images out (they are "
                      "listed in run.json and report.json).")


def check_image(path: Path, *, where: str = "", decode: bool = False, crop_size: int | None = None) -> None:
    """Refuse a missing or unreadable image, one not 8 bits per channel (modes ``1``, ``I``, ``I;16``,
    ``F``), or one smaller than
    ``crop_size``, by its header, in microseconds; with ``decode``, decode its pixels too (a
    truncated file shows only then)."""
    image_module = _pillow_image()
    with _opened(path, where) as img:
        if crop_size is not None and crop_size > min(img.size):
            raise InputError(f"{path}{f' ({where})' if where else ''}: crop_size = {crop_size} is larger than the "
                             f"image ({img.size[0]}x{img.size[1]}). Set `crop_size` <= {min(img.size)}, or leave "
                             "it out to crop the largest centred square.")
        if decode:
            try:
                img.load()
            except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as err:
                raise _unreadable(path, f" ({where})" if where else "", err) from err


def decode_image(path: Path, transform: ImageTransform, *, where: str = "") -> np.ndarray:
    """One file through ``transform``: (C, S, S) float32; an :class:`InputError` names the file."""
    image_module = _pillow_image()
    context = f" ({where})" if where else ""
    try:
        with _opened(path, where) as img:
            return transform.apply(img)
    except InputError as err:
        if str(err).startswith(str(path)):
            raise
        raise InputError(f"{path}{context}: {err}") from err
    except (OSError, ValueError, SyntaxError, image_module.DecompressionBombError) as err:
        raise _unreadable(path, context, err) from err


class ImageFiles:
    """A lazy (N, C, S, S) float32 array of image files: rows select without decoding, a slice or
    :meth:`read` decodes (centre crop, bilinear resize, p / 255, per-channel normalisation).

    Parameters
    ----------
    paths : sequence of path, one per row
    transform : ImageTransform
    where : sequence of str, default=None
        One context string per row (e.g. ``"data.csv line 12, column path"``) for messages.
    workers : int, default=2
        Threads that decode a batch (and DataLoader worker processes when training).
    """

    ndim = 4
    dtype = np.dtype(np.float32)

    def __init__(self, paths: Sequence[str | Path] | np.ndarray, transform: ImageTransform, *,
                 where: Sequence[str] | np.ndarray | None = None, workers: int = 2) -> None:
        self.paths = np.asarray([str(p) for p in paths], dtype=str) if not isinstance(paths, np.ndarray) else paths
        self.where = None if where is None else np.asarray(where, dtype=str)
        self.transform = transform
        self.workers = max(1, int(workers))

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(N, C, S, S)."""
        size = self.transform.image_size
        return (len(self.paths), self.transform.channels, size, size)

    def __len__(self) -> int:
        return len(self.paths)

    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise TypeError("ImageFiles are decoded batch by batch (ImageFiles.batches / read); converting all of "
                        "them to one array is what streaming avoids. This is a bug in the caller.")

    def __getitem__(self, key: object) -> ImageFiles | np.ndarray:
        """A slice or an int decodes; a boolean mask or integer index array selects rows, lazily."""
        if isinstance(key, slice):
            return self.read(np.arange(len(self))[key])
        if isinstance(key, (int, np.integer)):
            return self.read([int(key)])[0]
        rows = np.arange(len(self))[np.asarray(key)]
        return ImageFiles(self.paths[rows], self.transform, where=None if self.where is None else self.where[rows],
                          workers=self.workers)

    def with_transform(self, transform: ImageTransform) -> ImageFiles:
        """The same files through another transform (e.g. the model's normalisation)."""
        return ImageFiles(self.paths, transform, where=self.where, workers=self.workers)

    def update_digest(self, digest: Any) -> None:
        """Feed a ``hashlib`` object the transform, then each row's path and file bytes (one file
        in memory at a time): equal digests mean the same images through the same transform."""
        digest.update(json.dumps(self.transform.describe(), sort_keys=True).encode())
        for path in self.paths:
            digest.update(str(path).encode() + b"\0")
            try:
                digest.update(Path(path).read_bytes())
            except OSError as err:
                raise InputError(f"{path}: cannot read the image ({err}). Restore the file, or drop its row.") from err

    def context(self, row: int) -> str:
        """The message context of ``row`` (empty when none was given)."""
        return "" if self.where is None else str(self.where[row])

    def decode(self, row: int) -> np.ndarray:
        """Row ``row``: (C, S, S) float32."""
        return decode_image(Path(self.paths[row]), self.transform, where=self.context(row))

    def read(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows ``rows`` decoded: (len(rows), C, S, S) float32, by ``workers`` threads."""
        rows = [int(r) for r in rows]
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.float32)
        if self.workers == 1 or len(rows) < 2:
            for i, row in enumerate(rows):
                out[i] = self.decode(row)
            return out
        with ThreadPoolExecutor(self.workers) as pool:
            for i, image in enumerate(pool.map(self.decode, rows)):
                out[i] = image
        return out

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        """Consecutive batches of at most ``batch_size`` rows, decoded; the next batch is read in a
        background thread while the caller uses the current one (two batches in memory at most)."""
        starts = range(0, len(self), batch_size)
        with ThreadPoolExecutor(1) as ahead:
            pending = ahead.submit(self.read, range(0, min(batch_size, len(self)))) if len(self) else None
            for start in starts:
                batch = pending.result()  # type: ignore[union-attr]
                following = start + batch_size
                pending = (ahead.submit(self.read, range(following, min(following + batch_size, len(self))))
                           if following < len(self) else None)
                yield batch


def input_batches(inputs: np.ndarray | ImageFiles, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive batches of at most ``batch_size`` rows of ``inputs``: slices of an array, or
    :meth:`ImageFiles.batches` (decoded, the next one read ahead) for image files."""
    if isinstance(inputs, ImageFiles):
        return inputs.batches(batch_size)
    return (inputs[start:start + batch_size] for start in range(0, len(inputs), batch_size))


def scan_images(files: ImageFiles, ids: np.ndarray, *, skip: bool,
                progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, tuple[SkippedImage, ...]]:
    """Check every file before any stage reads one, so a bad image stops the run before training.

    Without ``skip`` (``on_bad_image: fail``) each file's header is read (exists, is an image,
    8 bits per channel: microseconds per file) and the first bad file in row order is the
    :class:`InputError`; a file whose pixel data is truncated shows only when it is decoded,
    with the same message. With ``skip`` every file is decoded once, and the bad ones are
    returned instead of raised. ``progress(done, total)`` is called as files are checked.

    The files are checked in blocks of :data:`SCAN_BLOCK` rows, so the pending checks' memory is
    bounded (one future per row of a block), not proportional to N.

    Returns
    -------
    keep : ndarray of shape (N,), bool
        False for the skipped rows.
    skipped : tuple of SkippedImage
        Id, path and the refusal's message of each skipped row, in row order.
    """
    keep = np.ones(len(files), dtype=bool)
    skipped: list[SkippedImage] = []

    def check(row: int) -> str | None:
        try:
            check_image(Path(files.paths[row]), where=files.context(row), decode=skip,
                        crop_size=files.transform.crop_size)
        except InputError as err:
            if not skip:
                raise
            return str(err)
        return None

    with ThreadPoolExecutor(files.workers) as pool:
        for start in range(0, len(files), SCAN_BLOCK):   # Executor.map submits all its rows at once
            rows = range(start, min(start + SCAN_BLOCK, len(files)))
            for row, problem in zip(rows, pool.map(check, rows)):
                if problem is not None:
                    keep[row] = False
                    skipped.append(SkippedImage(id=str(ids[row]), path=str(files.paths[row]), reason=problem))
                if progress is not None:
                    progress(row + 1, len(files))
    return keep, tuple(skipped)


def open_image_files(paths: Sequence[str | Path], ids: np.ndarray, *, transform: ImageTransform, workers: int,
                     on_bad_image: str, where: Sequence[str] | None = None,
                     progress: Callable[[int, int], None] | None = None
                     ) -> tuple[ImageFiles, np.ndarray, tuple[SkippedImage, ...]]:
    """An image source's files, scanned (:func:`scan_images`; ``on_bad_image``: ``fail`` or
    ``skip``): the kept rows' :class:`ImageFiles`, the (N,) keep mask and the skipped rows."""
    files = ImageFiles(paths, transform, where=where, workers=workers)
    keep, skipped = scan_images(files, ids, skip=on_bad_image == "skip", progress=progress)
    return (files[keep] if skipped else files), keep, skipped  # type: ignore[return-value]
