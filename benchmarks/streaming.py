"""Streamed image sources at 224 px: peak memory and images/s, against a plain PyTorch DataLoader.

Two steps, so the long image writing can start before the measurements:

    PYTHONPATH=$PWD python benchmarks/streaming.py write --root /tmp/streaming-images --n 100000
    PYTHONPATH=$PWD nice -n 5 python benchmarks/streaming.py measure --root /tmp/streaming-images \\
        --sizes 20000 100000 --workers 2

``write`` draws ``--n`` synthetic 224x224 RGB JPEG files (quality 90; a random 7x7 colour field
upsampled bilinearly, so they decode like photographs, not like noise) and CSVs ``images-<n>.csv``
of the first n of them (split test, 4 random 0/1 attributes, one 0/1 group).

``measure`` runs, for each size and each of the two jobs, the project's streaming path and the
baseline, each in a fresh child process whose peak resident memory is measured:

- **score**: the scores of a small network (below) over every image, exported to ONNX and run
  on ONNX Runtime in batches of 64. Project: ``load_dataset`` of the CSV (a lazy
  :class:`compress_gate.data.ImageFiles`) and :func:`compress_gate.engines.score_model`, what
  ``run``'s predict stage, ``score`` and ``gate --*-model`` run. Baseline: a minimal
  ``torch.utils.data.Dataset`` that opens, centre-crops, resizes and normalises each file with
  Pillow and NumPy, a ``DataLoader`` with ``--workers`` worker processes, and the same ONNX
  Runtime session per batch.
- **train**: one epoch of SGD (batch 64, BCE with logits) of the same network. Project:
  :func:`compress_gate.pipeline.teacher.training_loader` (shuffled, ``--workers`` DataLoader
  workers) and :func:`compress_gate.models.train_model`. Baseline: the minimal Dataset in a
  shuffled ``DataLoader`` with ``--workers`` workers and a plain training loop. Neither side
  augments (the baseline is minimal; like for like).

The network (the decode pipeline is what is measured, not the model): conv 7x7/4 (3->16), ReLU,
conv 3x3/2 (16->32), ReLU, global average pool, linear 32 -> 4; 8k parameters.

Peak memory: the child's own ``ru_maxrss`` (RUSAGE_SELF) and the largest of its reaped
DataLoader workers (RUSAGE_CHILDREN); ``peak_rss_total_mb`` is their sum plus, for the
baseline and the training loader, the other workers (workers x the largest one): an upper bound
of what the job held at once. Images/s is the number of images over the job's wall time (data
loading included, the project's up-front check of every file included, model export excluded).
Writes benchmarks/results/streaming.json (rewritten after each pair).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIZE = 224
BATCH = 64
N_ATTRIBUTES = 4
_RESULTS = Path(__file__).resolve().parent / "results" / "streaming.json"


# --- writing the images -------------------------------------------------------------------------
def _write_range(root: str, start: int, stop: int) -> None:
    import numpy as np
    from PIL import Image

    for i in range(start, stop):
        rng = np.random.default_rng(i)
        field = rng.integers(0, 256, size=(7, 7, 3), dtype=np.uint8)
        image = Image.fromarray(field, mode="RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        path = Path(root, "img", f"{i // 10000:02d}", f"{i:06d}.jpg")
        image.save(path, quality=90)


def write_images(root: Path, n: int, sizes: list[int], processes: int) -> None:
    """The JPEG files and one CSV per size (module docstring)."""
    import numpy as np
    from concurrent.futures import ProcessPoolExecutor

    for block in range((n + 9999) // 10000):
        (root / "img" / f"{block:02d}").mkdir(parents=True, exist_ok=True)
    chunk = 2000
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_write_range, [str(root)] * len(range(0, n, chunk)), range(0, n, chunk),
                      [min(s + chunk, n) for s in range(0, n, chunk)]))
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(n, N_ATTRIBUTES + 1))
    for size in sorted({*sizes, n}):
        with open(root / f"images-{size}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "split", *[f"a{j}" for j in range(N_ATTRIBUTES)], "g"])
            for i in range(size):
                writer.writerow([f"img/{i // 10000:02d}/{i:06d}.jpg", "test", *labels[i].tolist()])


# --- the network ---------------------------------------------------------------------------------
def small_network() -> Any:
    """The benchmark's network (module docstring), seeded."""
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 16, 7, stride=4, padding=3), torch.nn.ReLU(),
                               torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, N_ATTRIBUTES))


class PlainImages:
    """The baseline's minimal Dataset: open, centre-crop, resize, normalise one file per item."""

    def __init__(self, root: Path, csv_path: Path) -> None:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        self.paths = [str(root / row["path"]) for row in rows]
        self.labels = [[float(row[f"a{j}"]) for j in range(N_ATTRIBUTES)] for row in rows]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Any:
        import numpy as np
        import torch
        from PIL import Image

        with Image.open(self.paths[index]) as img:
            width, height = img.size
            side = min(width, height)
            left, top = (width - side) // 2, (height - side) // 2
            img = img.convert("RGB").crop((left, top, left + side, top + side))
            pixels = np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.float32)
        tensor = torch.from_numpy(((pixels / 255.0 - 0.5) / 0.5).transpose(2, 0, 1).copy())
        return tensor, torch.tensor(self.labels[index])


# --- one measurement (in a child process) --------------------------------------------------------
def _project_data(root: Path, csv_path: Path, workers: int) -> Any:
    from compress_gate.config.data import CsvDataConfig
    from compress_gate.data import load_dataset

    config = CsvDataConfig(path=csv_path, task="multilabel", label_columns=tuple(f"a{j}" for j in range(N_ATTRIBUTES)),
                           group_columns=("g",), image_size=SIZE, channels=3, workers=workers)
    return load_dataset(config, base_dir=root)


def _score(impl: str, root: Path, csv_path: Path, workers: int, onnx_path: Path) -> int:
    if impl == "project":
        from compress_gate.engines import score_model

        data = _project_data(root, csv_path, workers)
        return len(score_model(onnx_path, data.inputs, engine="onnxruntime", batch_size=BATCH).scores)
    import onnxruntime as ort
    from torch.utils.data import DataLoader

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    done = 0
    for inputs, _ in DataLoader(PlainImages(root, csv_path), batch_size=BATCH, num_workers=workers):
        done += len(session.run(None, {name: inputs.numpy()})[0])
    return done


def _train(impl: str, root: Path, csv_path: Path, workers: int) -> int:
    import torch

    model = small_network()
    if impl == "project":
        from compress_gate.models import train_model
        from compress_gate.pipeline.teacher import training_loader

        data = _project_data(root, csv_path, workers)
        data = type(data)(**{**data.__dict__, "split": data.split.copy()})
        data.split[:] = "train"             # the CSV's rows are test rows: train on all of them
        train_model(model, training_loader(data, batch_size=BATCH, seed=0), task="multilabel", epochs=1, lr=0.01,
                    seed=0)
        return len(data.ids)
    from torch.utils.data import DataLoader

    dataset = PlainImages(root, csv_path)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    model.train()
    for inputs, targets in loader:
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(dataset)


def measure_one(job: str, impl: str, root: Path, csv_path: Path, workers: int, onnx_path: Path) -> dict[str, Any]:
    """Run one job in this process; its wall time, images and peak memory."""
    start = time.perf_counter()
    images = (_score(impl, root, csv_path, workers, onnx_path) if job == "score"
              else _train(impl, root, csv_path, workers))
    seconds = time.perf_counter() - start
    gc.collect()          # a persistent DataLoader's workers are joined (reaped) before the counts are read
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    uses_workers = impl == "baseline" or job == "train"
    total = self_mb + (workers if uses_workers else 0) * worker_mb
    return {"job": job, "impl": impl, "images": images, "seconds": round(seconds, 2),
            "images_per_s": round(images / seconds, 1), "peak_rss_self_mb": round(self_mb, 1),
            "peak_rss_worker_mb": round(worker_mb, 1), "peak_rss_total_mb": round(total, 1)}


def _child(job: str, impl: str, root: Path, csv_path: Path, workers: int, onnx_path: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "_one", job, impl, str(root), str(csv_path), str(workers), str(onnx_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{job}/{impl} on {csv_path.name} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(root: Path, sizes: list[int], workers: int, out: Path, jobs: tuple[str, ...] = ("score", "train")
            ) -> dict[str, Any]:
    """Every (job, size, implementation) in a child process, scoring first; the project/baseline
    ratios. ``out`` is rewritten after each pair, so a stopped run keeps what it measured."""
    from compress_gate.compress import export_onnx

    onnx_path = export_onnx(small_network().eval(), out.with_suffix(".onnx"), input_shape=(3, SIZE, SIZE),
                            task="multilabel")
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": list(os.getloadavg())},
        "workers": workers, "batch_size": BATCH, "image_size": SIZE, "augmentation": "none (both sides)",
        "network": "conv7x7/4(3->16) relu conv3x3/2(16->32) relu avgpool linear(32->4)", "results": []}
    rows = result["results"]
    for job in jobs:
        for size in sizes:
            pair = {impl: _child(job, impl, root, root / f"images-{size}.csv", workers, onnx_path)
                    for impl in ("project", "baseline")}
            for measured in pair.values():
                rows.append({"n_images": size, **measured})
                print(json.dumps(rows[-1]), flush=True)
            rows[-1]["speed_ratio_project_over_baseline"] = round(
                pair["project"]["images_per_s"] / pair["baseline"]["images_per_s"], 3)
            out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write")
    write.add_argument("--root", type=Path, required=True)
    write.add_argument("--n", type=int, default=100_000)
    write.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    write.add_argument("--processes", type=int, default=2)
    run = sub.add_parser("measure")
    run.add_argument("--root", type=Path, required=True)
    run.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--out", type=Path, default=_RESULTS)
    run.add_argument("--jobs", nargs="+", choices=("score", "train"), default=["score", "train"])
    one = sub.add_parser("_one")
    for name in ("job", "impl", "root", "csv_path", "workers", "onnx_path"):
        one.add_argument(name)
    args = parser.parse_args()
    if args.command == "write":
        write_images(args.root, args.n, args.sizes, args.processes)
    elif args.command == "measure":
        measure(args.root, args.sizes, args.workers, args.out, tuple(args.jobs))
        print(f"wrote {args.out}")
    else:
        print(json.dumps(measure_one(args.job, args.impl, Path(args.root), Path(args.csv_path), int(args.workers),
                                     Path(args.onnx_path))))


if __name__ == "__main__":
    main()
