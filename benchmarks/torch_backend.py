"""Torch backend benchmark: structured channel pruning + static INT8 against dense FP32, on ONNX Runtime.

ResNet-18 at 224x224 (1000 outputs, freshly initialised: speed depends on the graph's
shapes, not on the weights' values), each as

- ``dense``: the FP32 export;
- ``dense+int8``: its static QDQ INT8 graph (the torch backend's ``quantization: static``);
- ``structured R``: Torch-Pruning removes the share R of every inner layer's output
  channels (L2 magnitude, channel counts rounded to multiples of 8, the classifier's
  outputs kept), as ``compression.structured: {ratio: R, round_to: 8}`` does; FP32 export;
- ``structured R+int8``: that graph quantized static INT8 (the deployable student).

INT8 graphs are calibrated on 4 batches of seeded noise (calibration changes scales,
not speed). Every row is measured on ONNX Runtime CPU in the same interleaved rounds
(compress_gate.engines.benchmark_models), so each ratio to ``dense`` is a paired
median from one run. MACs are Torch-Pruning's count of one forward pass.

    /work/venvs/torch/bin/python benchmarks/torch_backend.py            # R = 0.5, 0.6; batch 32
    /work/venvs/torch/bin/python benchmarks/torch_backend.py --ratios 0.5 --iterations 5
    /work/venvs/torch/bin/python benchmarks/torch_backend.py --accuracy   # recipes/torch/*.yaml on the demo

Writes benchmarks/results/torch_backend.json (machine description and date included).
``--accuracy`` instead runs every ``recipes/torch/*.yaml`` compression section on the
embedded demo data (the recipes' teacher: small ResNet, width 32, 16x16 digits, trained
here with the recipe's ``model.train``) and reports the test accuracy of each student's
shipped ONNX Runtime artefact next to the teacher's; writes
benchmarks/results/torch_backend_accuracy.json. Needs the ``[torch]`` environment
(torch, torch-pruning, onnxruntime; scikit-learn for the demo digits).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "torch_backend.json"
ACCURACY_RESULTS = RESULTS.with_name("torch_backend_accuracy.json")
RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "torch"
INPUT_SHAPE = (3, 224, 224)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.6])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--accuracy", action="store_true", help="accuracy of every recipes/torch recipe on the demo")
    args = parser.parse_args(argv)
    if args.accuracy:
        return _accuracy(args.output or ACCURACY_RESULTS)

    from compress_gate._atomic import write_json
    from compress_gate.engines import benchmark_models

    with tempfile.TemporaryDirectory(prefix="torch-backend-bench-") as folder:
        variants = _prepare(args.ratios, Path(folder))
        _say(f"measuring {len(variants)} graphs at batch {args.batch}: {args.iterations} interleaved rounds")
        run = benchmark_models({name: v["path"] for name, v in variants.items()}, ["onnxruntime"],
                               input_shape=INPUT_SHAPE, batch_sizes=(args.batch,), warmup=args.warmup,
                               iterations=args.iterations, num_threads=args.threads, progress=_say)
    report: dict[str, Any] = {
        **{k: run[k] for k in ("schema_version", "created", "machine", "settings")},
        "architecture": "resnet18", "input_shape": list(INPUT_SHAPE),
        "variants": {name: {k: v for k, v in variant.items() if k != "path"} for name, variant in variants.items()},
        "results": run["results"], "speedups_vs_dense": run["speedups"],
    }
    write_json(args.output or RESULTS, report)
    _print(report)
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _prepare(ratios: list[float], folder: Path) -> dict[str, dict[str, Any]]:
    import numpy as np
    import torch

    from compress_gate.compress.torch_backend.export import export_fp32
    from compress_gate.compress.torch_backend.quantize import quantize_static_int8
    from compress_gate.compress.torch_backend.structured import count_params_and_macs, prune_channels
    from compress_gate.models.build import build_model

    torch.manual_seed(0)
    calibration = np.random.default_rng(0).standard_normal((64, *INPUT_SHAPE), dtype=np.float32)
    example = torch.zeros((1, *INPUT_SHAPE))
    variants: dict[str, dict[str, Any]] = {}

    def add(name: str, model: torch.nn.Module) -> None:
        _say(f"exporting {name}")
        params, macs = count_params_and_macs(model, example)
        fp32 = export_fp32(model, folder / f"{name.replace(' ', '_')}.onnx", input_shape=INPUT_SHAPE,
                           task="multiclass")
        variants[name] = {"path": fp32, "params": params, "macs": macs, "quantization": "none"}
        int8 = quantize_static_int8(fp32, folder / f"{name.replace(' ', '_')}.int8.onnx", calibration)
        variants[f"{name}+int8"] = {"path": int8, "params": params, "macs": macs, "quantization": "static QDQ"}

    dense = build_model("resnet18", num_outputs=1000, input_size=INPUT_SHAPE[1]).eval()
    add("dense", dense)
    for ratio in ratios:
        model = build_model("resnet18", num_outputs=1000, input_size=INPUT_SHAPE[1])
        model.load_state_dict(dense.state_dict())
        prune_channels(model.eval(), example, ratio=ratio, importance="l2", round_to=8)
        add(f"structured {ratio:g}", model)
    return variants


def _print(report: dict[str, Any]) -> None:
    dense = report["variants"]["dense"]
    speedups = {row["model"]: row for row in report["speedups_vs_dense"] if row["engine"] == "onnxruntime"}
    rows = {row["model"]: row for row in report["results"]}
    print(f"\nResNet-18 224x224, ONNX Runtime CPU, batch {report['settings']['batch_sizes'][0]} "
          f"({report['machine']['cpu_model']}, load {report['machine']['load_average_1m']} at the start; "
          "a shared machine: expect noise)")
    print(f"{'variant':<24}{'MACs':>8}{'params':>9}{'items/s':>10}{'speedup (paired median [IQR])':>30}")
    for name, variant in report["variants"].items():
        row = rows.get(name, {})
        speed = speedups.get(name)
        ratio = "1.00x (reference)" if name == "dense" else (
            f"{speed['ratio']:.2f}x [{speed['q25']:.2f}, {speed['q75']:.2f}]" if speed else row.get("status", "?"))
        items = row.get("items_per_s")
        print(f"{name:<24}{variant['macs'] / dense['macs']:>7.2f}x{variant['params'] / dense['params']:>8.2f}x"
              f"{(f'{items:.1f}' if items else '-'):>10}{ratio:>30}")


def _accuracy(output: Path) -> int:
    """Teacher and student test accuracy (shipped ONNX Runtime artefact) for every torch recipe."""
    import datetime
    import math

    import numpy as np
    import torch
    import yaml

    from compress_gate._atomic import write_json
    from compress_gate.compress.export import run_onnx_cpu
    from compress_gate.compress.torch_backend import TorchCompressor
    from compress_gate.config.data import DemoDataConfig
    from compress_gate.config.torch_backend import TorchCompressionConfig
    from compress_gate.data.demo import make_demo_data
    from compress_gate.data.training import training_arrays
    from compress_gate.models import train_model
    from compress_gate.models.build import build_model

    recipes = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(RECIPES.glob("*.yaml"))}
    first = next(iter(recipes.values()))
    data = make_demo_data(DemoDataConfig(**first["data"]))
    inputs, targets = (torch.from_numpy(a) for a in training_arrays(data, split="train"))
    calib, _ = training_arrays(data, split="calib")
    test_x, test_y = training_arrays(data, split="test")

    def loader(batch_size: int, seed: int) -> Any:
        from torch.utils.data import DataLoader, TensorDataset

        return DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))

    spec = first["model"]
    teacher = build_model(spec["arch"], num_outputs=len(data.attribute_names), in_channels=inputs.shape[1],
                          input_size=inputs.shape[-1], width=spec["width"], depth=spec["depth"])
    _say("training the teacher")
    train = spec["train"]
    train_model(teacher, loader(train["batch_size"], 0), task=data.task, epochs=train["epochs"], lr=train["lr"],
                seed=0, optimizer=train["optimizer"])
    with torch.no_grad():
        teacher_accuracy = float((teacher.eval()(torch.from_numpy(test_x)).argmax(1).numpy() == test_y).mean())
    _say(f"teacher test accuracy {teacher_accuracy:.3f}")
    rows = []
    for name, recipe in recipes.items():
        _say(f"compressing with {name}")
        config = TorchCompressionConfig.model_validate(recipe["compression"])
        compressor = TorchCompressor(config)
        if compressor.needs_groups:  # FairGRAPE: batches carry the joint identity groups
            from compress_gate.compress.saliency import group_training_loader
            train_loader = group_training_loader(data, batch_size=config.batch_size, seed=0)
        else:
            train_loader = loader(config.batch_size, 0)
        result = compressor.compress(teacher, train_loader, task=data.task, seed=0)
        with tempfile.TemporaryDirectory() as folder:
            artefacts = compressor.export(result, Path(folder), sample=calib[:64], task=data.task, calib=calib)
            scores = run_onnx_cpu(artefacts["onnxruntime"], test_x)
        sparsity = result.overall_sparsity
        rows.append({"recipe": name, "artefact": artefacts["onnxruntime"].name,
                     "test_accuracy": float((scores.argmax(1) == test_y).mean()),
                     "overall_sparsity": None if math.isnan(sparsity) else sparsity, "parity": compressor.parity,
                     "channel_pruning": vars(compressor.channel_pruning) if compressor.channel_pruning else None})
        _say(f"{name}: test accuracy {rows[-1]['test_accuracy']:.3f} (teacher {teacher_accuracy:.3f})")
    report = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "data": first["data"], "test_samples": int(len(test_y)), "teacher_test_accuracy": teacher_accuracy,
              "students": rows}
    write_json(output, report)
    print(f"\nteacher test accuracy {teacher_accuracy:.3f} on {len(test_y)} demo test digits")
    for row in rows:
        print(f"{row['recipe']:<26}{row['artefact']:<18} accuracy {row['test_accuracy']:.3f} "
              f"({row['test_accuracy'] - teacher_accuracy:+.3f})")
    return 0 if np.isfinite(teacher_accuracy) else 3


if __name__ == "__main__":
    raise SystemExit(main())
