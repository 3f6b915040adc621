"""GPU run: a ResNet-50 at 224 px through ``compress-gate run`` on CUDA, with the ONNX Runtime GPU engines.

Prepared for a machine with an NVIDIA GPU and the ``[torch]`` world (plus ``onnxruntime-gpu``
for the CUDA and TensorRT providers). It writes, under ``--out``:

- ``data.npz``: compress-gate's synthetic attributes (10 attributes, 2 identity groups) drawn at
  56 px and enlarged 4x to 224 px (nearest neighbour), ``--n-train``/``--n-calib``/``--n-test`` rows;
- ``recipe.yaml``: the ResNet-50 (``torchvision: resnet50`` when torchvision imports, else the
  same network from the file ``benchmarks/gpu/resnet50.py``, copied beside the recipe), trained
  for one epoch on ``device: cuda`` with ``amp: bf16``; the torch backend prunes 50 % of the
  bottleneck convolutions with GMP over one fine-tuning epoch; the benchmark stage measures
  teacher and student on every ONNX Runtime engine present here (``onnxruntime`` on the CPU,
  ``onnxruntime-cuda``, ``onnxruntime-tensorrt``), batch 1 and 32;
- ``run/``: the run directory; the script prints run.json's device and stage times and the
  benchmark's latency table.

Where no GPU is usable (torch missing, ``torch.cuda.is_available()`` false) the script prints
``skip:`` with the reason and exits 0, so CI and CPU machines can call it. Otherwise it exits
with ``compress-gate run``'s code (0 released, 1 refused: both are a finished measurement).

    python benchmarks/gpu_run.py [--out runs/gpu-run] [--n-train 512 --n-calib 128 --n-test 512]

At the defaults it needs about 2 GB of host memory and a few minutes on one GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
GPU_ENGINES = ("onnxruntime", "onnxruntime-cuda", "onnxruntime-tensorrt")
_CLI = "import sys; from compress_gate.cli import main; sys.argv = ['compress-gate', *sys.argv[1:]]; main()"


def skip_reason() -> str | None:
    """Why this machine cannot run the GPU benchmark, or ``None`` when it can."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (the [torch] world: make install-torch)"
    import torch

    if not torch.cuda.is_available():
        return (f"no CUDA GPU: torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build "
                f"{torch.version.cuda})")
    return None


def benchmark_engines(availability: dict[str, str | None]) -> tuple[list[str], dict[str, str]]:
    """The ONNX Runtime engines to benchmark (those available) and the reason for each left out."""
    usable = [kind for kind in GPU_ENGINES if availability.get(kind, "unknown engine") is None]
    skipped = {kind: str(availability.get(kind, "unknown engine")) for kind in GPU_ENGINES if kind not in usable}
    return usable, skipped


def write_data(path: Path, *, n_train: int, n_calib: int, n_test: int) -> None:
    """The synthetic attributes at 56 px, each pixel repeated 4x4 (224 px), as an eval-data npz."""
    from compress_gate.config.data import SyntheticDataConfig
    from compress_gate.data import save_eval_data
    from compress_gate.data.synthetic import make_synthetic_data

    data = make_synthetic_data(SyntheticDataConfig(image_size=56, n_train=n_train, n_calib=n_calib,
                                                   n_test=n_test, seed=0))
    big = np.repeat(np.repeat(data.inputs, 4, axis=2), 4, axis=3)
    save_eval_data(dataclasses.replace(data, inputs=big), path)


def model_section(out: Path) -> dict[str, object]:
    """torchvision's ResNet-50 when torchvision imports, else benchmarks/gpu/resnet50.py beside the recipe."""
    if importlib.util.find_spec("torchvision") is not None:
        return {"torchvision": "resnet50", "head": "fc"}
    shutil.copyfile(HERE / "gpu" / "resnet50.py", out / "resnet50.py")
    return {"factory": "resnet50.py:build", "head": "fc"}


def recipe(out: Path, engines: list[str]) -> dict[str, object]:
    """The run recipe: a ResNet-50 trained one epoch on ``device: cuda`` with ``amp: bf16``, GMP to 50 % of the
    bottleneck convolutions in one fine-tuning epoch, benchmarked on ``engines``, gated on accuracy only."""
    return {
        "seed": 0, "output": "run", "device": "cuda", "amp": "bf16",
        "model": {**model_section(out), "input_size": 224, "cache_dir": "cache",
                  "train": {"epochs": 1, "lr": 0.01, "batch_size": 32}},
        "data": {"kind": "npz", "path": "data.npz"},
        "compression": {"backend": "torch", "epochs": 1, "lr": 0.005, "batch_size": 32,
                        "pruning": {"params": [r"re:^layer\d\.\d+\.conv[123]\.weight$"], "init_sparsity": 0.05,
                                    "final_sparsity": 0.5, "start_epoch": 0.0, "end_epoch": 0.5,
                                    "update_frequency": 0.25}},
        "engines": {"deployment": "onnxruntime", "check": [],
                    "benchmark": {"engines": engines, "batch_sizes": [1, 32], "warmup": 5, "iterations": 20}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                 "limits": [{"metric": "accuracy", "change": "absolute", "min": -1.0, "bound": "point"}]},
    }


def report(run_dir: Path) -> None:
    """Print the device, the stage times and the benchmark table of a finished run."""
    record = json.loads((run_dir / "run.json").read_text())
    print("device:", json.dumps(record.get("device")))
    print("versions:", json.dumps(record.get("machine", {}).get("versions")))
    print("stage seconds:", json.dumps(record.get("stage_seconds")))
    bench = run_dir / "benchmarks.json"
    if bench.is_file():
        print(json.dumps(json.loads(bench.read_text()), indent=1)[:6000])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-run"))
    parser.add_argument("--n-train", type=int, default=512)
    parser.add_argument("--n-calib", type=int, default=128)
    parser.add_argument("--n-test", type=int, default=512)
    args = parser.parse_args()
    reason = skip_reason()
    if reason is not None:
        print(f"skip: {reason}. Nothing was run.")
        return 0
    from compress_gate.engines import engine_availability

    engines, skipped = benchmark_engines(engine_availability())
    for kind, why in skipped.items():
        print(f"engine {kind} left out: {why}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_data(out / "data.npz", n_train=args.n_train, n_calib=args.n_calib, n_test=args.n_test)
    (out / "recipe.yaml").write_text(yaml.safe_dump(recipe(out, engines), sort_keys=False))
    code = subprocess.call([sys.executable, "-c", _CLI, "run", str(out / "recipe.yaml")])
    if (out / "run" / "run.json").is_file():
        report(out / "run")
    return code


if __name__ == "__main__":
    sys.exit(main())
