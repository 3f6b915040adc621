"""Torch backend benchmark: structured channel pruning + static INT8 against dense FP32, on ONNX Runtime.

ResNet-18 at 224x224 (1000 outputs, freshly initialised: speed depends on the graph's
shapes, not on the weights' values), each as

- ``dense``: the FP32 export;
- ``dense+int8``: its static QDQ INT8 graph (the torch backend's ``quantization: static``);
- ``dense+dynamic int8``: its dynamic-range INT8 graph (``quantization: dynamic``);
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
    /work/venvs/torch/bin/python benchmarks/torch_backend.py --build DIR  # side_by_side.py's build step

Writes benchmarks/results/torch_backend.json (machine description and date included).
``--accuracy`` instead runs every ``recipes/torch/*.yaml`` compression section on the
embedded demo data (the recipes' teacher: small ResNet, width 32, 16x16 digits, trained
here with the recipe's ``model.train``) and reports the test accuracy of each student's
shipped ONNX Runtime artefact next to the teacher's; writes
benchmarks/results/torch_backend_accuracy.json. Needs the ``[torch]`` environment
(torch, torch-pruning, onnxruntime; scikit-learn for the demo digits).
``--build DIR`` times nothing: it writes the graphs and the demo students that
``side_by_side.py`` times beside DeepSparse and OpenVINO in the ``[sparseml]``
environment (see :func:`build`); ``side_by_side.py`` runs it and caches DIR.
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
    parser.add_argument("--build", type=Path, default=None, metavar="DIR",
                        help="only write the graphs and demo students for side_by_side.py into DIR (new)")
    parser.add_argument("--input-size", type=int, default=INPUT_SHAPE[1], help="with --build: image side")
    parser.add_argument("--no-accuracy", action="store_true", help="with --build: no demo students")
    args = parser.parse_args(argv)
    if args.accuracy:
        return _accuracy(args.output or ACCURACY_RESULTS)
    if args.build is not None:
        args.build.mkdir(parents=True)
        build(args.build, args.ratios, input_size=args.input_size, accuracy=not args.no_accuracy)
        return 0

    from compress_gate._atomic import write_json
    from compress_gate.engines import benchmark_models

    with tempfile.TemporaryDirectory(prefix="torch-backend-bench-") as folder:
        variants = prepare_graphs(args.ratios, Path(folder))
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


def prepare_graphs(ratios: list[float], folder: Path, *, input_size: int = INPUT_SHAPE[1]) -> dict[str, dict[str, Any]]:
    """ResNet-18 graphs of the module docstring in ``folder``: name -> {path, params, macs, quantization}.

    Besides the rows above, ``dense+dynamic int8`` (the torch backend's ``quantization:
    dynamic``: INT8 weights, activations quantized per batch at run time).
    """
    import numpy as np
    import torch

    from compress_gate.compress.torch_backend.export import export_fp32
    from compress_gate.compress.torch_backend.quantize import quantize_dynamic_int8, quantize_static_int8
    from compress_gate.compress.torch_backend.structured import count_params_and_macs, prune_channels
    from compress_gate.models.build import build_model

    shape = (INPUT_SHAPE[0], input_size, input_size)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    calibration = np.random.default_rng(0).standard_normal((64, *shape), dtype=np.float32)
    example = torch.zeros((1, *shape))
    variants: dict[str, dict[str, Any]] = {}

    def add(name: str, model: torch.nn.Module) -> Path:
        _say(f"exporting {name}")
        params, macs = count_params_and_macs(model, example)
        fp32 = export_fp32(model, folder / f"{name.replace(' ', '_')}.onnx", input_shape=shape, task="multiclass")
        variants[name] = {"path": fp32, "params": params, "macs": macs, "quantization": "none"}
        int8 = quantize_static_int8(fp32, folder / f"{name.replace(' ', '_')}.int8.onnx", calibration)
        variants[f"{name}+int8"] = {"path": int8, "params": params, "macs": macs, "quantization": "static QDQ"}
        return fp32

    dense = build_model("resnet18", num_outputs=1000, input_size=input_size).eval()
    dense_fp32 = add("dense", dense)
    variants["dense+dynamic int8"] = {**variants["dense"], "quantization": "dynamic (ConvInteger, U8 weights)",
                                      "path": quantize_dynamic_int8(dense_fp32, folder / "dense.dynamic.onnx")}
    for ratio in ratios:
        model = build_model("resnet18", num_outputs=1000, input_size=input_size)
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


def _demo_setup() -> dict[str, Any]:
    """The recipes' demo data and their dense teacher, trained as ``model.train`` says (seed 0).

    Returns ``{"recipes": {stem: recipe}, "data": data section, "model": model section,
    "task", "teacher", "num_outputs", "arrays": {train_x, train_y, calib_x, test_x, test_y}, "loader":
    (batch_size, seed, groups=False) -> shuffled train DataLoader (with the joint identity groups in each
    batch when ``groups``), "teacher_accuracy"}``.
    """
    import torch
    import yaml

    from compress_gate.config.data import DemoDataConfig
    from compress_gate.data.demo import make_demo_data
    from compress_gate.data.training import training_arrays
    from compress_gate.models import train_model
    from compress_gate.models.build import build_model

    recipes = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(RECIPES.glob("*.yaml"))}
    first = next(iter(recipes.values()))
    data = make_demo_data(DemoDataConfig(**first["data"]))
    train_x, train_y = training_arrays(data, split="train")
    calib_x, _ = training_arrays(data, split="calib")
    test_x, test_y = training_arrays(data, split="test")
    inputs, targets = torch.from_numpy(train_x), torch.from_numpy(train_y)

    def loader(batch_size: int, seed: int, *, groups: bool = False) -> Any:
        from torch.utils.data import DataLoader, TensorDataset

        if groups:      # FairGRAPE: batches carry the joint identity groups
            from compress_gate.compress.saliency import group_training_loader
            return group_training_loader(data, batch_size=batch_size, seed=seed)
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
    return {"recipes": recipes, "data": first["data"], "model": spec, "task": data.task, "teacher": teacher,
            "num_outputs": len(data.attribute_names),
            "arrays": {"train_x": train_x, "train_y": train_y, "calib_x": calib_x, "test_x": test_x,
                       "test_y": test_y},
            "loader": loader, "teacher_accuracy": teacher_accuracy}


def _compress_demo(demo: dict[str, Any], section: dict[str, Any], folder: Path) -> tuple[Any, Any, dict[str, Path]]:
    """Compress the demo teacher with one ``compression:`` section into ``folder``.

    Returns (compressor, its CompressionResult, engine kind -> artefact).
    """
    from compress_gate.compress.torch_backend import TorchCompressor
    from compress_gate.config.torch_backend import TorchCompressionConfig

    config = TorchCompressionConfig.model_validate(section)
    compressor = TorchCompressor(config)
    train_loader = demo["loader"](config.batch_size, 0, groups=compressor.needs_groups)
    result = compressor.compress(demo["teacher"], train_loader, task=demo["task"], seed=0)
    calib = demo["arrays"]["calib_x"]
    folder.mkdir(parents=True, exist_ok=True)
    artefacts = compressor.export(result, folder, sample=calib[:64], task=demo["task"], calib=calib)
    return compressor, result, artefacts


def build(folder: Path, ratios: list[float], *, input_size: int, accuracy: bool) -> dict[str, Any]:
    """Write every graph the side-by-side run times, and the demo students that give their accuracy.

    ``folder/graphs/``: :func:`prepare_graphs` at ``input_size``. With ``accuracy``,
    ``folder/demo/``: the demo arrays (``data.npz``), the trained teacher (``teacher.pt``,
    ``teacher.onnx``) and, per speed row, the student the same torch-backend method makes
    from that teacher (:func:`_demo_sections`). ``folder/manifest.json`` is written last and
    returned: it names every file relative to ``folder``.
    """
    import datetime
    from importlib.metadata import version

    import numpy as np
    import torch

    from compress_gate._atomic import write_json

    variants = prepare_graphs(ratios, folder / "graphs", input_size=input_size)
    manifest: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {name: version(name) for name in ("torch", "torch-pruning", "onnx", "onnxruntime", "numpy")},
        "input_shape": [INPUT_SHAPE[0], input_size, input_size], "ratios": ratios,
        "graphs": {name: {"file": str(v["path"].relative_to(folder)), "params": v["params"], "macs": v["macs"],
                          "quantization": v["quantization"]} for name, v in variants.items()},
    }
    if accuracy:
        from compress_gate.compress.torch_backend.export import export_fp32

        demo, target = _demo_setup(), folder / "demo"
        target.mkdir()
        np.savez(target / "data.npz", **demo["arrays"])
        torch.save(demo["teacher"].state_dict(), target / "teacher.pt")
        export_fp32(demo["teacher"], target / "teacher.onnx", input_shape=demo["arrays"]["test_x"].shape[1:],
                    task=demo["task"])
        students = {"dense": {"file": "demo/teacher.onnx", "recipe": "the dense teacher"}}
        for index, (label, section, rows) in enumerate(_demo_sections(demo["recipes"], ratios)):
            _say(f"demo student: {label}")
            _, _, artefacts = _compress_demo(demo, section, target / f"student{index}")
            for name, key in rows.items():
                students[name] = {"file": str(artefacts[key].relative_to(folder)), "recipe": label}
        manifest["demo"] = {"data": demo["data"], "model": demo["model"], "task": demo["task"],
                            "num_outputs": demo["num_outputs"],
                            "teacher_test_accuracy_torch": demo["teacher_accuracy"], "students": students}
    write_json(folder / "manifest.json", manifest)
    return manifest


def _demo_sections(recipes: dict[str, Any], ratios: list[float]) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(label, ``compression:`` section, speed row -> artefact kind) of each demo student.

    The artefact kind is ``"onnxruntime"`` (the shipped graph: INT8 when quantized) or
    ``"deepsparse"`` (the FP32 graph; the torch backend gives DeepSparse the FP32 export).
    """
    structured = recipes["structured_static_int8"]["compression"]
    sections = [("recipes/torch/dynamic_int8.yaml", recipes["dynamic_int8"]["compression"],
                 {"dense+dynamic int8": "onnxruntime"}),
                ("quantization: static alone (no fine-tuning)", {"backend": "torch", "quantization": "static"},
                 {"dense+int8": "onnxruntime"})]
    for ratio in ratios:
        section = {**structured, "structured": {**structured["structured"], "ratio": ratio}}
        sections.append((f"recipes/torch/structured_static_int8.yaml with ratio {ratio:g}", section,
                         {f"structured {ratio:g}": "deepsparse", f"structured {ratio:g}+int8": "onnxruntime"}))
    return sections


def _accuracy(output: Path) -> int:
    """Teacher and student test accuracy (shipped ONNX Runtime artefact) for every torch recipe."""
    import datetime
    import math

    import numpy as np

    from compress_gate._atomic import write_json
    from compress_gate.compress.export import run_onnx_cpu

    demo = _demo_setup()
    test_x, test_y = demo["arrays"]["test_x"], demo["arrays"]["test_y"]
    teacher_accuracy = demo["teacher_accuracy"]
    rows = []
    for name, recipe in demo["recipes"].items():
        _say(f"compressing with {name}")
        with tempfile.TemporaryDirectory() as folder:
            compressor, result, artefacts = _compress_demo(demo, recipe["compression"], Path(folder))
            scores = run_onnx_cpu(artefacts["onnxruntime"], test_x)
        sparsity = result.overall_sparsity
        rows.append({"recipe": name, "artefact": artefacts["onnxruntime"].name,
                     "test_accuracy": float((scores.argmax(1) == test_y).mean()),
                     "overall_sparsity": None if math.isnan(sparsity) else sparsity, "parity": compressor.parity,
                     "channel_pruning": vars(compressor.channel_pruning) if compressor.channel_pruning else None})
        _say(f"{name}: test accuracy {rows[-1]['test_accuracy']:.3f} (teacher {teacher_accuracy:.3f})")
    report = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "data": demo["data"], "test_samples": int(len(test_y)), "teacher_test_accuracy": teacher_accuracy,
              "students": rows}
    write_json(output, report)
    print(f"\nteacher test accuracy {teacher_accuracy:.3f} on {len(test_y)} demo test digits")
    for row in rows:
        print(f"{row['recipe']:<26}{row['artefact']:<18} accuracy {row['test_accuracy']:.3f} "
              f"({row['test_accuracy'] - teacher_accuracy:+.3f})")
    return 0 if np.isfinite(teacher_accuracy) else 3


if __name__ == "__main__":
    raise SystemExit(main())
