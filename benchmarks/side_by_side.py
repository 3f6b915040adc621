"""Every engine and every deployable student side by side, timed in ONE interleaved run.

ResNet-18 at 224x224 (1000 outputs, freshly initialised weights: speed depends on the
graph's shapes and zeros, not on the weights' values), batch 32, on the CPU engines.
Rows (:func:`rows_for`):

- dense FP32 (the SparseML path's export): ONNX Runtime (**the reference**), DeepSparse,
  OpenVINO; and the torch backend's own FP32 export on ONNX Runtime (a check that both
  exports run alike);
- ONNX Runtime dynamic INT8 and static QDQ INT8 of the dense model (the torch backend's
  ``quantization: dynamic | static``); the static graph on OpenVINO too;
- 90 % unstructured (one-shot magnitude pruning) on DeepSparse, and 90 % + INT8: SparseML's
  converted graph on DeepSparse, the QDQ graph on ONNX Runtime and OpenVINO
  (``benchmarks/engines.py``'s variants);
- the torch backend's structured channel pruning (Torch-Pruning, R = 0.5, 0.6) in FP32 on
  ONNX Runtime, and + static INT8 (the deployable student) on ONNX Runtime and OpenVINO.

Two environments, one timing run. The torch backend needs the ``[torch]`` environment
(numpy 2, onnxruntime 1.2x, Torch-Pruning); DeepSparse needs the ``[sparseml]`` one
(numpy < 2). So the torch backend's graphs are built first by ``torch_backend.py --build``
run with ``--torch-python`` (cached in ``build/bench/torch-<content hash>/``: the hash
covers the build's code, its settings and the torch environment's versions), and then
this process, in the ``[sparseml]`` + ``[openvino]`` environment, builds the SparseML
rows and times every (row, engine) pair in the same interleaved rounds
(``compress_gate.engines.benchmark_models``; DeepSparse in its worker process). Each
ratio is the median over rounds of the paired ratio dense-ORT-FP32 time / row time,
with its quartiles; the 1-minute load average is sampled every 5 s during the timing.
All graphs run on this environment's ONNX Runtime (1.18), whichever quantizer wrote them.

Accuracy column: a ResNet-18 with random weights has no accuracy, so each row's
accuracy comes from the **small demo ResNet** (width 32, 16x16 demo digits, the
recipes' teacher, trained once in the build step) compressed with the row's method
(torch rows: the torch backend's recipes, fine-tuned; SparseML rows: SparseML's GMP 90 %
and GMP 90 % + QAT recipes, ``recipes/sparseml/gmp90*.yaml``, fine-tuned from the same
teacher), its artefact scored on the row's engine over the demo's test split; the cost
is that accuracy minus the dense teacher's on ONNX Runtime. The speed rows' one-shot
pruning is not what the accuracy students used (they were fine-tuned).

    .venv/bin/python benchmarks/side_by_side.py --torch-python .venv-torch/bin/python   # make bench-side-by-side
    .venv/bin/python benchmarks/side_by_side.py --quick --torch-python ...   # 64x64, R = 0.5, 3 rounds

Writes benchmarks/results/side_by_side.json (``--quick``: build/bench/side_by_side_quick.json).
GPU rows (ONNX Runtime CUDA / TensorRT) are measured when a GPU is present, else skipped
with the reason.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

import engines as engine_table  # noqa: E402  (benchmarks/engines.py, beside this file)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "side_by_side.json"
BUILD_ROOT = ROOT / "build" / "bench"
SPARSEML_RECIPES = ROOT / "recipes" / "sparseml"
#: What the torch-backend build depends on: a change in any of these rebuilds the graphs.
BUILD_SOURCES = ("benchmarks/torch_backend.py", "compress_gate/_atomic.py", "compress_gate/compress",
                 "compress_gate/models", "compress_gate/data", "compress_gate/config", "recipes/torch")
TORCH_VERSIONS = ("torch", "torch-pruning", "onnx", "onnxruntime", "numpy")
CPU_KINDS, GPU_KINDS = engine_table.CPU_KINDS, engine_table.GPU_KINDS
REFERENCE = "dense FP32"
#: A deployable student's largest accuracy drop: the accuracy limit of recipes/torch/structured_static_int8.yaml.
ACCURACY_LIMIT = -0.05
SHORT = {"onnxruntime": "ONNX Runtime", "deepsparse": "DeepSparse", "openvino": "OpenVINO"}


class Row(NamedTuple):
    """One table row: its label, which build made it, the build's variant name, the engines it runs on."""

    label: str
    source: str  # "sparseml" (engines.prepare_variants, this process) or "torch" (torch_backend.build)
    variant: str
    kinds: tuple[str, ...]


def rows_for(ratios: list[float]) -> list[Row]:
    """The table's rows, reference first."""
    rows = [Row(REFERENCE, "sparseml", "dense", (*CPU_KINDS, *GPU_KINDS)),
            Row("dense FP32, the torch backend's export", "torch", "dense", ("onnxruntime",)),
            Row("dense dynamic INT8 (torch backend)", "torch", "dense+dynamic int8", ("onnxruntime",)),
            Row("dense static INT8 (torch backend)", "torch", "dense+int8", ("onnxruntime", "openvino")),
            Row("90 % unstructured", "sparseml", "90%", ("deepsparse",)),
            Row("90 % + INT8 (SparseML's graph on DeepSparse, QDQ elsewhere)", "sparseml", "90%+int8", CPU_KINDS)]
    for ratio in ratios:
        rows += [Row(f"structured {ratio:.0%} (torch backend)", "torch", f"structured {ratio:g}", ("onnxruntime",)),
                 Row(f"structured {ratio:.0%} + static INT8 (torch backend)", "torch", f"structured {ratio:g}+int8",
                     ("onnxruntime", "openvino"))]
    return rows


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from compress_gate._atomic import write_json
    from compress_gate.engines import benchmark_models

    ratios = [0.5] if args.quick else args.ratios
    size = 64 if args.quick else 224
    iterations, warmup = (3, 1) if args.quick else (args.iterations, args.warmup)
    started = time.monotonic()
    folder, manifest = torch_build(args.torch_python, ratios, size, accuracy=not args.no_accuracy)
    rows = rows_for(ratios)
    with tempfile.TemporaryDirectory(prefix="cg-side-by-side-") as scratch:
        _say("building the SparseML path's variants (dense, 90 %, 90 % + INT8)")
        sparseml = engine_table.prepare_variants("resnet18", [0.9], Path(scratch), swapped=False,
                                                 input_shape=(3, size, size))
        models = {row.label: _artefacts(row, sparseml, folder, manifest) for row in rows}
        accuracy = None if args.no_accuracy else demo_accuracy(rows, folder, manifest, Path(scratch) / "demo")
        _say(f"timing {sum(len(m) for m in models.values())} (row, engine) pairs at batch {args.batch}: "
             f"{iterations} interleaved rounds")
        with LoadSampler() as load:
            run = benchmark_models(models, [*CPU_KINDS, *GPU_KINDS], input_shape=(3, size, size),
                                   batch_sizes=(args.batch,), warmup=warmup, iterations=iterations,
                                   num_threads=args.threads, progress=_say)
    report = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "machine": run["machine"], "load_average_1m_during_timing": load.summary(),
        "settings": {**run["settings"], "quick": args.quick, "reference": f"{REFERENCE} on onnxruntime"},
        "torch_build": {"folder": str(folder.relative_to(ROOT)), "versions": manifest["versions"],
                        "created": manifest["created"]},
        "engines": run["engines"],
        "rows": table_rows(rows, run["results"], sparseml, manifest, accuracy),
        "accuracy": accuracy and {k: v for k, v in accuracy.items() if k != "by_row"},
        "results": run["results"],
    }
    report["targets"] = targets(report["rows"])
    report["wall_s"] = round(time.monotonic() - started, 1)
    out = args.out or (BUILD_ROOT / "side_by_side_quick.json" if args.quick else RESULTS)
    write_json(out, report)
    print_report(report)
    print(f"\nwrote {out} ({report['wall_s']:.0f} s)")
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", type=Path, required=True,
                        help="the [torch] environment's python (e.g. .venv-torch/bin/python)")
    parser.add_argument("--quick", action="store_true", help="64x64 inputs, R = 0.5, 3 rounds (development)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.6], help="structured pruning ratios")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10, help="timed interleaved rounds")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="threads per engine (default: all CPUs)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the demo students (development)")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the torch backend's graphs, built in the [torch] environment --------------------------


def build_hash(torch_python: Path, settings: dict[str, Any]) -> str:
    """SHA-256 over the build's sources (path and bytes, sorted), ``settings`` and the torch env's versions."""
    probe = ("from importlib.metadata import version; import json; "
             f"print(json.dumps({{n: version(n) for n in {TORCH_VERSIONS!r}}}))")
    versions = subprocess.run([str(torch_python), "-c", probe], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(json.dumps([settings, versions], sort_keys=True).encode())
    for name in BUILD_SOURCES:
        path = ROOT / name
        for file in sorted(path.rglob("*") if path.is_dir() else [path]):
            if file.is_file() and file.suffix in (".py", ".yaml"):
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def torch_build(torch_python: Path, ratios: list[float], size: int, *, accuracy: bool) -> tuple[Path, dict[str, Any]]:
    """The cached build folder for these settings and its manifest; runs ``torch_backend.py --build`` on a miss.

    The build writes into a temporary folder beside the cache entry, renamed into place
    once its manifest exists, so a failed or interrupted build is never reused.
    """
    settings = {"ratios": ratios, "input_size": size, "accuracy": accuracy}
    folder = BUILD_ROOT / f"torch-{build_hash(torch_python, settings)[:16]}"
    if not (folder / "manifest.json").is_file():
        BUILD_ROOT.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=BUILD_ROOT)) / "out"
        command = [str(torch_python), str(ROOT / "benchmarks" / "torch_backend.py"), "--build", str(staging),
                   "--input-size", str(size), "--ratios", *map(str, ratios), *([] if accuracy else ["--no-accuracy"])]
        _say(f"building the torch backend's graphs in the [torch] environment: {' '.join(command)}")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(command, check=True, env=env, cwd=ROOT)
        os.rename(staging, folder)
        staging.parent.rmdir()
    else:
        _say(f"reusing the torch backend's graphs in {folder.relative_to(ROOT)}")
    return folder, json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _artefacts(row: Row, sparseml: dict[str, Any], folder: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Engine kind -> the ONNX file this row runs there."""
    if row.source == "sparseml":
        return {kind: sparseml[row.variant]["artefacts"][kind] for kind in row.kinds}
    return {kind: str(folder / manifest["graphs"][row.variant]["file"]) for kind in row.kinds}


class LoadSampler:
    """Samples the 1-minute load average every ``period_s`` seconds while its ``with`` block runs."""

    def __init__(self, period_s: float = 5.0) -> None:
        self.period_s, self.samples = period_s, [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, Any]:
        """``start``, ``end``, ``min``, ``median``, ``max`` of the samples (rounded to 0.01) and their count."""
        import numpy as np

        values = np.array(self.samples)
        return {"start": round(self.samples[0], 2), "end": round(self.samples[-1], 2),
                "min": round(float(values.min()), 2), "median": round(float(np.median(values)), 2),
                "max": round(float(values.max()), 2), "samples": len(values), "period_s": self.period_s}


# --- accuracy cost on the demo data ------------------------------------------------------------


def demo_accuracy(rows: list[Row], folder: Path, manifest: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """Test accuracy of each (row, CPU engine)'s demo student on that engine; see the module docstring.

    Returns ``{"data", "model", "test_samples", "teacher_accuracy" (ONNX Runtime), "students":
    {variant: recipe}, "by_row": {(label, kind): {"accuracy", "accuracy_cost", "student"} or
    {"accuracy": None, "reason"}}}``.
    """
    import numpy as np

    from compress_gate.engines import engine_availability, score_model
    from compress_gate.errors import RuntimeFailure

    demo = manifest["demo"]
    arrays = dict(np.load(folder / "demo" / "data.npz"))
    students = {name: ({kind: str(folder / s["file"]) for kind in CPU_KINDS}, s["recipe"])
                for name, s in demo["students"].items()}
    students.update(_sparseml_students(folder, demo, arrays, scratch))
    available = engine_availability()

    def accuracy(path: str, kind: str) -> float:
        scores = score_model(path, arrays["test_x"], engine=kind, batch_size=32).scores
        return float((scores.argmax(1) == arrays["test_y"]).mean())

    teacher = accuracy(students["dense"][0]["onnxruntime"], "onnxruntime")
    by_row: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        artefacts, recipe = students[row.variant]
        for kind in (k for k in row.kinds if k in CPU_KINDS and available[k] is None):
            _say(f"demo accuracy: {row.label} on {kind}")
            try:
                value = accuracy(artefacts[kind], kind)
            except RuntimeFailure as err:
                by_row[row.label, kind] = {"accuracy": None, "reason": str(err), "student": recipe}
                continue
            by_row[row.label, kind] = {"accuracy": value, "accuracy_cost": value - teacher, "student": recipe}
    return {"data": demo["data"], "model": demo["model"], "test_samples": int(len(arrays["test_y"])),
            "teacher_accuracy": teacher, "students": {name: recipe for name, (_, recipe) in students.items()},
            "by_row": by_row}


def _sparseml_students(folder: Path, demo: dict[str, Any], arrays: dict[str, Any],
                       scratch: Path) -> dict[str, tuple[dict[str, str], str]]:
    """The SparseML rows' demo students: GMP 90 % and GMP 90 % + QAT from the build's teacher."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from compress_gate.compress.sparseml_backend import SparseMLCompressor
    from compress_gate.config.run import ExportConfig, SparseMLCompressionConfig
    from compress_gate.models.build import build_model

    spec, train_x, calib = demo["model"], arrays["train_x"], arrays["calib_x"]
    teacher = build_model(spec["arch"], num_outputs=demo["num_outputs"], in_channels=train_x.shape[1],
                          input_size=train_x.shape[-1], width=spec["width"], depth=spec["depth"])
    teacher.load_state_dict(torch.load(folder / "demo" / "teacher.pt"))
    out = {}
    for variant, recipe in (("90%", "gmp90.yaml"), ("90%+int8", "gmp90_qat.yaml")):
        _say(f"demo student: recipes/sparseml/{recipe}")
        config = SparseMLCompressionConfig(recipe_path=SPARSEML_RECIPES / recipe)
        compressor = SparseMLCompressor(config, ExportConfig())
        loader = DataLoader(TensorDataset(torch.from_numpy(train_x), torch.from_numpy(arrays["train_y"])),
                            batch_size=config.batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
        result = compressor.compress(teacher, loader, task=demo["task"], seed=0)
        target = scratch / variant.replace("%", "").replace("+", "_")
        target.mkdir(parents=True)
        artefacts = compressor.export(result, target, sample=calib[:64], task=demo["task"], calib=calib)
        out[variant] = ({kind: str(artefacts[kind]) for kind in CPU_KINDS}, f"recipes/sparseml/{recipe}")
    return out


# --- the table -----------------------------------------------------------------------------------


def table_rows(rows: list[Row], results: list[dict[str, Any]], sparseml: dict[str, Any], manifest: dict[str, Any],
               accuracy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per (row, engine): speed, paired ratio over the reference with quartiles, MACs, accuracy.

    ``macs_vs_dense``: nonzero-weight MACs / dense MACs for the SparseML rows (unstructured
    zeros), Torch-Pruning's MACs / dense MACs for the torch rows (channels removed).
    """
    versus = {(s["model"], s["engine"]): s for s in engine_table.versus_ort_dense(results, base_model=REFERENCE)}
    measured = {(r["model"], r["engine"]): r for r in results}
    graphs = manifest["graphs"]
    out = []
    for row in rows:
        macs = (1 / sparseml[row.variant]["theoretical_speedup"] if row.source == "sparseml"
                else graphs[row.variant]["macs"] / graphs["dense"]["macs"])
        for kind in row.kinds:
            result = measured[row.label, kind]
            reference = (row.label, kind) == (REFERENCE, "onnxruntime") and result["status"] == "ok"
            ratio = {"ratio": 1.0, "q25": None, "q75": None, "pairs": None} if reference else versus.get(
                (row.label, kind), {"ratio": None, "q25": None, "q75": None, "pairs": None})
            out.append({"row": row.label, "engine": kind, "source": row.source, "variant": row.variant,
                        "status": result["status"], "reason": result["reason"], "macs_vs_dense": macs,
                        "items_per_s": result["items_per_s"],
                        **{k: ratio[k] for k in ("ratio", "q25", "q75", "pairs")},
                        **((accuracy or {}).get("by_row", {}).get((row.label, kind), {}))})
    return out


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Issue 11's target: the torch backend's best deployable structured + static INT8 row >= 4x (stretch 5x),
    beside DeepSparse 90 % + INT8 from the same run.

    Deployable: its demo accuracy cost is within :data:`ACCURACY_LIMIT` (or was not measured);
    the fastest such row counts.
    """
    deployable = [r for r in rows if r["source"] == "torch" and r["variant"].startswith("structured")
                  and r["variant"].endswith("+int8") and r["ratio"] is not None
                  and (r.get("accuracy_cost") is None or r["accuracy_cost"] >= ACCURACY_LIMIT)]
    best = max(deployable, key=lambda r: r["ratio"], default=None)
    sparse = next((r for r in rows if (r["variant"], r["engine"]) == ("90%+int8", "deepsparse")), None)

    def pick(row: dict[str, Any] | None) -> dict[str, Any] | None:
        keys = ("row", "engine", "ratio", "q25", "q75", "accuracy_cost")
        return row and {k: row.get(k) for k in keys}

    ratio = best["ratio"] if best else None
    return {"torch_backend_best_deployable": {**(pick(best) or {}), "accuracy_limit": ACCURACY_LIMIT,
                                              "target": 4.0, "stretch": 5.0,
                                              "reached": bool(ratio and ratio >= 4.0),
                                              "stretch_reached": bool(ratio and ratio >= 5.0)},
            "deepsparse_90_int8_same_run": pick(sparse)}


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    settings, load = report["settings"], report["load_average_1m_during_timing"]
    table = Table(title=f"ResNet-18 {settings['input_shape'][1]}x{settings['input_shape'][2]}, batch "
                        f"{settings['batch_sizes'][0]}: paired median speed-up over {REFERENCE} on ONNX Runtime, "
                        f"one run of {settings['iterations']} interleaved rounds", title_justify="left")
    for header in ("row", "engine", "MACs vs dense", "items/s", "x [IQR]", "demo accuracy (vs teacher)"):
        table.add_column(header, justify="left" if header in ("row", "engine") else "right")
    for row in report["rows"]:
        if row["engine"] in GPU_KINDS and row["status"] == "skipped":
            continue
        speed = (f"{row['ratio']:.2f}" + (f" [{row['q25']:.2f}, {row['q75']:.2f}]" if row["q25"] is not None else "")
                 if row["ratio"] is not None else row["status"])
        accuracy = "" if row.get("accuracy") is None else f"{row['accuracy']:.3f} ({row['accuracy_cost']:+.3f})"
        table.add_row(row["row"], SHORT.get(row["engine"], row["engine"]), f"{row['macs_vs_dense']:.2f}",
                      "" if row["items_per_s"] is None else f"{row['items_per_s']:.1f}", speed, accuracy)
    console = Console(width=max(Console().width, 150))
    console.print(table)
    for row in report["rows"]:
        if row["status"] != "ok":
            console.print(f"  {row['row']} on {row['engine']}: {row['status']}: {row['reason']}")
    console.print(f"1-minute load average during the timing: median {load['median']} (min {load['min']}, "
                  f"max {load['max']}, {load['samples']} samples); other jobs on the same CPUs slow every engine")
    for name, target in report["targets"].items():
        console.print(f"{name}: {json.dumps(target)}")


if __name__ == "__main__":
    sys.exit(main())
