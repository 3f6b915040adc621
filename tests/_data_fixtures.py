"""Tiny on-disk data sets for the data-loader tests: a CelebA folder and a CSV of images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# 4 attributes, 12 images: files 000001..000012; partitions 0 x4, 1 x4, 2 x4.
CELEBA_NAMES = ["Blond_Hair", "Smiling", "Male", "Young"]
CELEBA_PARTITIONS = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]
CELEBA_VALUES = np.array([  # -1/1 per image (row) and attribute (column)
    [1, -1, 1, 1], [-1, 1, -1, 1], [1, 1, -1, -1], [-1, -1, 1, -1],
    [1, -1, -1, 1], [-1, 1, 1, -1], [1, 1, 1, 1], [-1, -1, -1, -1],
    [1, 1, 1, -1], [-1, -1, -1, 1], [1, -1, 1, 1], [-1, 1, -1, -1],
])


def write_image(path: Path, *, size: tuple[int, int] = (20, 24), seed: int = 0,
                mode: str = "RGB") -> np.ndarray:
    """A random image (width, height) = ``size``; returns its pixels as saved (PNG: exact)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode=mode).save(path)
    return pixels


def write_celeba(root: Path, *, values: np.ndarray = CELEBA_VALUES,
                 partitions: list[int] = CELEBA_PARTITIONS, names: list[str] = CELEBA_NAMES) -> Path:
    """Write a CelebA folder in the original layout (JPEG images 20x24) under ``root``."""
    files = [f"{i + 1:06d}.jpg" for i in range(len(values))]
    for i, name in enumerate(files):
        write_image(root / "img_align_celeba" / name, seed=i)
    header = f"{len(files)}\n" + " ".join(names) + " \n"   # CelebA's header ends with a space
    body = "".join(f"{name} " + " ".join(f"{v:2d}" for v in row) + "\n"
                   for name, row in zip(files, values))
    (root / "list_attr_celeba.txt").write_text(header + body)
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(files, partitions)))
    return root
