"""Engines benchmark: what sparsity and INT8 buy on DeepSparse, ONNX Runtime and OpenVINO, next to the theory.

ResNet-18 and MobileNetV1 at 224x224 (1000 outputs, freshly initialised: speed does
not depend on the weights' values, only on their zeros), each as

- ``dense``;
- ``80%`` ... ``98%``: one-shot magnitude pruning (``torch.nn.utils.prune``,
  L1-unstructured, the same sparsity in every Conv2d with groups == 1 and every
  Linear; MobileNetV1's depthwise convolutions stay dense);
- ``80%+int8`` ...: the same pruned model quantized, with the artefact each engine
  runs fast (DESIGN.md, "Engines"): for DeepSparse, SparseML's QuantizationModifier
  applied one-shot, calibrated on 2 batches of seeded noise, exported with
  ModuleExporter(convert_qat=True) (a ConvInteger graph, via compress_gate's
  ``export_onnx(quantized=True)``); for ONNX Runtime, ``quantize_for_ort`` (static
  QDQ INT8) of the pruned FP32 graph, which OpenVINO runs too (it folds QDQ pairs
  into INT8 kernels);
- with ``--swapped`` (default in the full run), ``90%+int8 swapped``: each engine
  on the *other* artefact, to show why the artefacts differ (DeepSparse needs the
  QDQ graph's unused opset imports removed to load it at all).

Every (variant, engine) pair of one architecture and batch size is measured in the
same interleaved rounds (compress_gate.engines.benchmark_models), so every ratio,
across engines too, is a paired median from one run. The theoretical reduction is
dense MACs / nonzero MACs of the Conv2d and Linear layers (int8 is not counted).
GPU rows (ONNX Runtime CUDA / TensorRT) are measured when a GPU is present and
otherwise listed as skipped with the reason.

    .venv/bin/python benchmarks/engines.py            # full table (15-30 min on 2 cores)
    .venv/bin/python benchmarks/engines.py --quick    # ResNet-18: dense, 90%, 90%+int8

Writes benchmarks/results/engines.json (machine description and date included).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "engines.json"
INPUT_SHAPE = (3, 224, 224)
CPU_KINDS = ("onnxruntime", "deepsparse", "openvino")
GPU_KINDS = ("onnxruntime-cuda", "onnxruntime-tensorrt")
DS_ARTEFACT = "SparseML QuantizationModifier (one-shot, 2 noise batches) + ModuleExporter convert_qat=True"
ORT_ARTEFACT = "compress_gate.compress.quantize_for_ort: static QDQ INT8 (S8S8, per-channel, MinMax)"
OV_ARTEFACT = "the ONNX Runtime QDQ INT8 graph, read by OpenVINO as is (f32 precision pinned for float layers)"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from compress_gate._atomic import write_json
    from compress_gate.engines import engine_availability, machine_description

    archs = ["resnet18"] if args.quick else ["resnet18", "mobilenet_v1"]
    sparsities = [0.9] if args.quick else [0.8, 0.9, 0.95, 0.98]
    swapped = args.swapped if args.swapped is not None else not args.quick
    started = time.monotonic()
    report: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_description(args.threads),
        "settings": {"input_shape": list(INPUT_SHAPE), "sparsities": sparsities, "iterations_batch_1":
                     args.iterations_small, "iterations_large_batch": args.iterations_large,
                     "large_batch": args.batch, "warmup": args.warmup, "quick": args.quick,
                     "artefacts": {"deepsparse": DS_ARTEFACT, "onnxruntime": ORT_ARTEFACT,
                                   "openvino": OV_ARTEFACT}},
        "engines": engine_availability(),
        "archs": {},
    }
    with tempfile.TemporaryDirectory(prefix="cg-engines-") as scratch:
        work = Path(args.keep or scratch)
        for arch in archs:
            _say(f"[{arch}] preparing variants")
            variants = prepare_variants(arch, sparsities, work / arch, swapped=swapped)
            report["archs"][arch] = _measure(arch, variants, args)
            _print_table(arch, report["archs"][arch], args.batch)
    report["targets"] = _targets(report, args.batch)
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    write_json(args.out, report)
    _print_targets(report)
    print(f"\nwrote {args.out} ({report['wall_s']:.0f} s)")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ResNet-18 only: dense, 90%%, 90%%+int8.")
    parser.add_argument("--swapped", action=argparse.BooleanOptionalAction, default=None,
                        help="Also run each engine on the other engine's 90%%+int8 artefact (default: full run).")
    parser.add_argument("--batch", type=int, default=32, help="The larger batch size (default 32).")
    parser.add_argument("--iterations-small", type=int, default=30, help="Timed rounds at batch 1.")
    parser.add_argument("--iterations-large", type=int, default=10, help="Timed rounds at the larger batch.")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="Threads per engine (default: all CPUs).")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the ONNX variants in this folder.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- variants ---------------------------------------------------------------------


def prepare_variants(arch: str, sparsities: list[float], folder: Path, *, swapped: bool,
                     input_shape: tuple[int, int, int] = INPUT_SHAPE) -> dict[str, dict[str, Any]]:
    """Build, prune, quantize and export every variant; return name -> {artefacts, theory}."""
    import numpy as np
    import torch

    from compress_gate.compress import apply_compat, export_onnx, quantize_for_ort
    from compress_gate.models import build_model

    apply_compat()
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    calibration = np.random.default_rng(0).standard_normal((32, *input_shape), dtype=np.float32)
    dense = build_model(arch, num_outputs=1000, input_size=input_shape[1]).eval()
    dense_macs, _ = _macs(dense, input_shape)
    variants: dict[str, dict[str, Any]] = {}
    path = export_onnx(dense, folder / "dense.onnx", input_shape=input_shape, task="multiclass")
    variants["dense"] = {"artefacts": {kind: str(path) for kind in (*CPU_KINDS, *GPU_KINDS)},
                         "sparsity": 0.0, "quantized": False, "dense_gmacs": dense_macs / 1e9,
                         "theoretical_speedup": 1.0}
    for sparsity in sparsities:
        label = f"{round(sparsity * 100):d}%"
        _say(f"[{arch}] {label}: prune, export, quantize")
        pruned = _prune(build_model(arch, num_outputs=1000, input_size=input_shape[1]), dense, sparsity)
        total, nonzero = _macs(pruned, input_shape)
        theory = {"sparsity": sparsity, "dense_gmacs": total / 1e9, "nonzero_gmacs": nonzero / 1e9,
                  "theoretical_speedup": total / nonzero}
        fp32 = export_onnx(pruned, folder / f"s{label[:-1]}.onnx", input_shape=input_shape, task="multiclass")
        variants[label] = {"artefacts": {kind: str(fp32) for kind in (*CPU_KINDS, *GPU_KINDS)},
                           "quantized": False, **theory}
        qdq = quantize_for_ort(fp32, folder / f"s{label[:-1]}_qdq.onnx", calibration)
        converted = export_onnx(_sparseml_quantize(pruned, calibration), folder / f"s{label[:-1]}_int8.onnx",
                                input_shape=input_shape, task="multiclass", quantized=True)
        variants[f"{label}+int8"] = {"artefacts": {"deepsparse": str(converted), "onnxruntime": str(qdq),
                                                   "onnxruntime-cuda": str(qdq), "onnxruntime-tensorrt": str(qdq),
                                                   "openvino": str(qdq)},
                                     "quantized": True, **theory}
        if swapped and sparsity == 0.9:
            variants[f"{label}+int8 swapped"] = {
                "artefacts": {"deepsparse": str(_strip_unused_opsets(qdq)), "onnxruntime": str(converted)},
                "quantized": True, "swapped": True, **theory}
    return variants


def _prune(model: Any, dense: Any, sparsity: float) -> Any:
    """A copy of ``dense``'s weights in ``model`` with L1-unstructured pruning at ``sparsity`` per layer."""
    import torch
    from torch.nn.utils import prune

    model.load_state_dict(dense.state_dict())
    for module in model.modules():
        prunable = isinstance(module, torch.nn.Linear) or (isinstance(module, torch.nn.Conv2d) and module.groups == 1)
        if prunable:
            prune.l1_unstructured(module, "weight", amount=sparsity)
            prune.remove(module, "weight")
    return model.eval()


def _macs(model: Any, input_shape: tuple[int, int, int]) -> tuple[int, int]:
    """(dense MACs, nonzero-weight MACs) of one ``input_shape`` sample over Conv2d and Linear layers.

    A Conv2d output pixel costs weight.numel() MACs (groups are in the weight's shape),
    so MACs = H_out * W_out * numel and nonzero MACs = H_out * W_out * nnz(weight).
    """
    import torch

    totals = [0, 0]

    def count(module: Any, _inputs: Any, output: Any) -> None:
        pixels = output.shape[2] * output.shape[3] if isinstance(module, torch.nn.Conv2d) else 1
        totals[0] += pixels * module.weight.numel()
        totals[1] += pixels * int(torch.count_nonzero(module.weight))

    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    hooks = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *input_shape))
    for hook in hooks:
        hook.remove()
    return totals[0], totals[1]


def _sparseml_quantize(pruned: Any, calibration: Any) -> Any:
    """SparseML QAT modules on a copy of ``pruned``, observers calibrated on 2 noise batches."""
    import copy

    import torch
    from sparseml.pytorch.optim import ScheduledModifierManager

    from compress_gate.models.training import quiet_sparseml

    model = copy.deepcopy(pruned).train()  # SparseML fuses conv-bn for QAT in train mode
    recipe = "modifiers:\n  - !QuantizationModifier\n    start_epoch: 0.0\n"
    with quiet_sparseml() as loggers:
        ScheduledModifierManager.from_yaml(recipe).apply(model, loggers=loggers)
    model.eval()  # BN uses its running statistics; observers still record ranges
    with torch.no_grad():
        for start in (0, 4):
            model(torch.from_numpy(calibration[start:start + 4]))
    return model


def _strip_unused_opsets(path: Path) -> Path:
    """A copy of a QDQ graph without opset imports no node uses (DeepSparse's loader rejects ai.onnx.ml v5)."""
    import onnx

    model = onnx.load(str(path))
    used = {node.domain for node in model.graph.node} | {""}
    keep = [opset for opset in model.opset_import if opset.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    target = path.with_name(path.stem + "_ds.onnx")
    onnx.save(model, str(target))
    return target


# --- measurement --------------------------------------------------------------------


def _measure(arch: str, variants: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    from compress_gate.engines import benchmark_models

    models = {name: variant["artefacts"] for name, variant in variants.items()}
    runs = []
    for batch_size, iterations in ((1, args.iterations_small), (args.batch, args.iterations_large)):
        _say(f"[{arch}] measuring batch {batch_size}: {iterations} interleaved rounds")
        runs.append(benchmark_models(models, [*CPU_KINDS, *GPU_KINDS], input_shape=INPUT_SHAPE,
                                     batch_sizes=(batch_size,), warmup=args.warmup, iterations=iterations,
                                     num_threads=args.threads, progress=_say))
    results = [row for run in runs for row in run["results"]]
    return {
        "variants": {name: {k: v for k, v in variant.items() if k != "artefacts"} | {"artefacts": {
            kind: Path(p).name for kind, p in variant["artefacts"].items()}} for name, variant in variants.items()},
        "results": results,
        "speedups_same_engine": [s for run in runs for s in run["speedups"]],
        "vs_onnxruntime_dense": versus_ort_dense(results),
    }


def versus_ort_dense(results: list[dict[str, Any]], base_model: str = "dense") -> list[dict[str, Any]]:
    """Paired speedup of every measured (variant, engine) over ``base_model`` on ONNX Runtime CPU, per batch size."""
    import numpy as np

    from compress_gate.engines import paired_speedup

    out = []
    for base in (r for r in results if (r["model"], r["engine"], r["status"]) == (base_model, "onnxruntime", "ok")):
        for row in results:
            if row["batch_size"] != base["batch_size"] or row["status"] != "ok" or row is base:
                continue
            pairs = [(b, c) for b, c in zip(base["times_ms"], row["times_ms"]) if b is not None and c is not None]
            reference, candidate = np.array(pairs).T
            out.append({"model": row["model"], "engine": row["engine"], "batch_size": row["batch_size"],
                        **paired_speedup(reference, candidate)})
    return out


def _targets(report: dict[str, Any], batch: int) -> dict[str, Any]:
    """Issue 5's targets, from the ResNet-18 paired ratios at the larger batch."""
    ratios = {(s["model"], s["engine"], s["batch_size"]): s for s in
              report["archs"].get("resnet18", {}).get("vs_onnxruntime_dense", [])}
    sparse_int8 = ratios.get(("90%+int8", "deepsparse", batch))
    dense_ds = ratios.get(("dense", "deepsparse", batch))
    return {
        "resnet18_90_int8_deepsparse_vs_dense_onnxruntime": {
            "batch_size": batch, "target": 5.0, "ratio": sparse_int8 and sparse_int8["ratio"],
            "reached": bool(sparse_int8 and sparse_int8["ratio"] >= 5.0)},
        "resnet18_dense_deepsparse_vs_dense_onnxruntime": {
            "batch_size": batch, "target": 1.0, "ratio": dense_ds and dense_ds["ratio"],
            "reached": bool(dense_ds and dense_ds["ratio"] >= 1.0)},
    }


# --- output ---------------------------------------------------------------------------


def _print_table(arch: str, section: dict[str, Any], batch: int) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = {(r["model"], r["engine"], r["batch_size"]): r for r in section["results"]}
    versus = {(s["model"], s["engine"], s["batch_size"]): s for s in section["vs_onnxruntime_dense"]}
    table = Table(title=f"{arch} 224x224: batch-1 p50 latency, batch-{batch} throughput, paired speedup vs dense "
                        f"on ONNX Runtime CPU at batch {batch}", title_justify="left")
    table.add_column("variant")
    table.add_column("theory x", justify="right")
    for kind in CPU_KINDS:
        for header in ("b1 p50 ms", f"b{batch} items/s", "x"):
            table.add_column(f"{_short(kind)} {header}", justify="right")
    for name, variant in section["variants"].items():
        cells = [name, f"{variant['theoretical_speedup']:.1f}"]
        for kind in CPU_KINDS:
            small, large = rows.get((name, kind, 1)), rows.get((name, kind, batch))
            ratio = versus.get((name, kind, batch))
            cells += [_cell(small, lambda r: f"{r['latency_ms']['p50_ms']:.1f}"),
                      _cell(large, lambda r: f"{r['items_per_s']:.1f}"),
                      "1.00" if (name, kind) == ("dense", "onnxruntime") and large and large["status"] == "ok"
                      else (f"{ratio['ratio']:.2f}" if ratio else "")]
        table.add_row(*cells)
    console = Console(width=max(Console().width, 170))
    console.print(table)
    partial = sorted({(r["model"], r["details"]["fraction_of_supported_ops"]) for r in section["results"]
                      if (r.get("details") or {}).get("fraction_of_supported_ops", 1.0) < 1.0})
    for model, fraction in partial:
        console.print(f"  † {model}: DeepSparse ran {fraction:.0%} of the graph's ops itself; the rest ran in the "
                      "ONNX Runtime bundled with it")
    for kind in GPU_KINDS:
        skipped = [r for r in section["results"] if r["engine"] == kind and r["status"] != "ok"]
        if skipped:
            console.print(f"  {kind}: {skipped[0]['status']}: {skipped[0]['reason']}")
    for row in section["results"]:
        if row["status"] == "failed":
            console.print(f"  {row['model']} on {row['engine']} at batch {row['batch_size']}: failed: {row['reason']}")


def _cell(row: dict[str, Any] | None, fmt: Any) -> str:
    """A formatted number; ``†`` marks a DeepSparse run that executed part of the graph outside DeepSparse."""
    if row is None:
        return ""
    if row["status"] != "ok":
        return row["status"]
    native = (row.get("details") or {}).get("fraction_of_supported_ops", 1.0)
    return fmt(row) + (" †" if native < 1.0 else "")


def _short(kind: str) -> str:
    return {"onnxruntime": "ORT", "deepsparse": "DS", "openvino": "OV"}[kind]


def _print_targets(report: dict[str, Any]) -> None:
    load = report["machine"].get("load_average_1m")
    print(f"\nmachine: {report['machine']['cpu_model']}, {report['machine']['threads_used']} threads, "
          f"flags {report['machine']['flags']}, 1-min load average at start {load}, at end "
          f"{report['load_average_1m_at_end']} (other work on the same CPUs slows every engine)")
    for name, target in report["targets"].items():
        ratio = "not measured" if target["ratio"] is None else f"{target['ratio']:.2f}x"
        print(f"target {name} (batch {target['batch_size']}): {ratio} vs >= {target['target']:.0f}x -> "
              f"{'reached' if target['reached'] else 'NOT reached'}")
    print(json.dumps({"engines": report["engines"]}, indent=None))


if __name__ == "__main__":
    sys.exit(main())
