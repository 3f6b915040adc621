"""Write the example's images as PNG files and the CSV that lists them, as a user's data would be.

The images are compress-gate's synthetic attributes (shapes, colours, textures drawn on
64 x 64 RGB images; identity groups ``warm`` and ``shadow``, correlated with some
attributes in the train split only). Each image becomes ``data/images/<split>-<n>.png``;
``data/attributes.csv`` has one row per image: ``path``, ``split``, the 10 attribute
columns and the 2 group columns (0/1).

    python make_data.py [--n-train 2000] [--n-calib 500] [--n-test 1500]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image

from compress_gate.config.data import SyntheticDataConfig
from compress_gate.data.synthetic import make_synthetic_data

HERE = Path(__file__).resolve().parent


def pixels(inputs: np.ndarray) -> np.ndarray:
    """(n, 3, S, S) inputs in [-1, 1] -> (n, S, S, 3) uint8 pixels: p = round(255 (x / 2 + 1/2))."""
    unit = np.clip(inputs * 0.5 + 0.5, 0.0, 1.0)
    return np.round(unit * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-calib", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=HERE / "data")
    args = parser.parse_args()
    data = make_synthetic_data(SyntheticDataConfig(image_size=64, n_train=args.n_train, n_calib=args.n_calib,
                                                   n_test=args.n_test, seed=0))
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (split, image) in enumerate(zip(data.split, pixels(data.inputs))):
        name = f"images/{split}-{i:05d}.png"
        Image.fromarray(image, mode="RGB").save(args.out / name)
        rows.append([name, split, *data.labels[i].tolist(), *data.groups[i].astype(int).tolist()])
    with open(args.out / "attributes.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "split", *data.attribute_names, *data.group_names])
        writer.writerows(rows)
    print(f"wrote {len(rows)} PNG images ({data.inputs.shape[-1]} px) and {args.out / 'attributes.csv'}")


if __name__ == "__main__":
    main()
