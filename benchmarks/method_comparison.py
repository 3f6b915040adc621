"""Method comparison (issue 13): GMP, GMP + each distillation kind, FairGRAPE, SNIP and GraSP at one sparsity.

One teacher, eight students, every one through ``compress-gate run`` (the torch backend,
then export, predictions, benchmark and the gate), on the multi-label demo data
(``kind: synthetic`` as recipes/multilabel.yaml: 10 attributes, identity groups
``warm`` and ``shadow``, so 4 joint groups) at a reduced size::

    /work/venvs/torch/bin/python benchmarks/method_comparison.py            # sparsity 0.8
    /work/venvs/torch/bin/python benchmarks/method_comparison.py --keep runs/methods

Why a script and not ``compress-gate sweep``: the sweep varies one recipe's sparsity;
here the compression section itself changes per row. Every row is still a plain
recipe run (written next to the results when ``--keep`` is given) sharing one teacher
cache, so the teacher is trained once and each student is judged like any other.

Printed and written (benchmarks/results/method_comparison.{json,md}):

- **FairGRAPE's Table 1 layout** (Lin et al., ECCV 2022): accuracy, FNR and FPR (FNR/FPR
  averaged over the 10 attributes) per joint group, and Std(ΔAcc), in percent, from
  :mod:`compress_gate.metrics.fairgrape` on the shipped ONNX Runtime predictions of the
  test split at the default threshold 0.5. 95 % intervals: percentile Poisson bootstrap
  (:mod:`compress_gate.metrics.poisson_bootstrap`, 500 resamples keyed by sample id, so
  teacher and student rows share their weights).
- **The gate's numbers**, read from each run's report.json: accuracy change, the worst
  BA increase (its interval is the gate's, for that pair), CEV and SDE with their
  intervals, and the verdict. No mitigation is applied (thresholds 0.5, no overrides),
  so the gate judges the same predictions as the table.
- **Speed**: ONNX Runtime (CPU) throughput ratio teacher time / student time at batch 64,
  the median of paired interleaved rounds (the run's benchmark), with a 95 % bootstrap
  interval of that median (2,000 resamples of the rounds).

Needs the ``[torch]`` environment (torch, torch-pruning, onnxruntime).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "method_comparison.json"
PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
N_RESAMPLES = 500
SPEED_RESAMPLES = 2000

#: Reduced size of recipes/multilabel.yaml's data (it has 12,000 / 4,000 / 20,000).
DATA = {"kind": "synthetic", "seed": 0, "image_size": 16, "n_train": 8000, "n_calib": 2000, "n_test": 10000,
        "keep_fraction": 0.2, "noise": 0.1}
EPOCHS = 1.0            # fine-tuning epochs of every student (the teacher trains 4)

BASE: dict[str, Any] = {
    "seed": 0,
    "model": {"arch": "resnet", "width": 16, "depth": 1,
              "train": {"epochs": 4, "lr": 0.05, "optimizer": "sgd", "batch_size": 128}},
    "data": DATA,
    "compression": {"backend": "torch", "epochs": EPOCHS, "lr": 0.01, "optimizer": "sgd", "batch_size": 128},
    "engines": {"deployment": "onnxruntime", "check": [], "batch_size": 256,
                "benchmark": {"engines": ["onnxruntime"], "batch_sizes": [64], "warmup": 5, "iterations": 30}},
    "gate": {"confidence": 0.95, "n_resamples": 500, "judge": "thresholds",
             "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
             "limits": [{"metric": "accuracy", "change": "absolute", "min": -0.02},
                        {"metric": "ba", "change": "absolute", "max": 0.05}]},
}


def methods(sparsity: float) -> dict[str, dict[str, Any]]:
    """Row name -> the ``compression`` keys that differ from :data:`BASE` (all at ``sparsity``)."""
    gmp = {"pruning": {"params": PARAMS, "init_sparsity": 0.05, "final_sparsity": sparsity, "start_epoch": 0.0,
                       "end_epoch": 0.6, "update_frequency": 0.1, "inter_func": "cubic"}}
    saliency = {"params": PARAMS, "sparsity": sparsity, "batches": 4}
    return {
        "GMP": gmp,
        "GMP+KD (Hinton)": {**gmp, "distillation": {"kind": "hinton"}},
        "GMP+AT": {**gmp, "distillation": {"kind": "attention"}},
        "GMP+SP": {**gmp, "distillation": {"kind": "similarity"}},
        "GMP+CRD": {**gmp, "distillation": {"kind": "crd"}},
        "FairGRAPE": {"saliency": {"method": "fairgrape", "steps": 5, **saliency}},
        "SNIP": {"saliency": {"method": "snip", **saliency}},
        "GraSP": {"saliency": {"method": "grasp", **saliency}},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--only", nargs="+", default=None, help="run these rows only (names as printed)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the recipes and run directories here")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from compress_gate._atomic import write_json, write_text

    rows = methods(args.sparsity)
    if args.only:
        rows = {name: rows[name] for name in args.only}
    start, cpu_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="method-comparison-") as scratch:
        work = args.keep.resolve() if args.keep else Path(scratch)
        results = {name: _run(name, section, work) for name, section in rows.items()}
    report = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": next(iter(results.values()))["machine"],
        "sparsity": args.sparsity, "data": DATA, "model": BASE["model"], "compression_epochs": EPOCHS,
        "bootstrap": {"kind": "poisson", "n_resamples": N_RESAMPLES, "confidence": 0.95},
        "wall_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "methods": {name: {k: v for k, v in row.items() if k != "machine"} for name, row in results.items()},
    }
    markdown = _markdown(report)
    write_json(args.output, report)
    write_text(args.output.with_suffix(".md"), markdown)
    print(markdown)
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(name: str, section: dict[str, Any], work: Path) -> dict[str, Any]:
    """Write the row's recipe, run it, and collect its numbers."""
    import yaml
    from rich.console import Console

    from compress_gate.pipeline.run import run_recipe

    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    recipe = copy.deepcopy(BASE)
    recipe["compression"].update(copy.deepcopy(section))
    recipe["output"] = str(work / "runs" / slug)
    recipe["model"]["cache_dir"] = str(work / "teacher-cache")   # one teacher for every row
    path = work / "recipes" / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    _say(f"== {name}: {path}")
    began = time.perf_counter()
    outcome = run_recipe(path, console=Console(stderr=True, quiet=True))
    seconds = time.perf_counter() - began
    report = outcome.report.model_dump(mode="json")
    cpu = json.loads((outcome.run_dir / "run.json").read_text(encoding="utf-8"))["stage_cpu_seconds"]
    row = {"verdict": report["verdict"], "outcome": report["outcome"], "wall_seconds": round(seconds, 1),
           "stage_seconds": outcome.stage_seconds, "stage_cpu_seconds": cpu, "compression": recipe["compression"],
           "sparsity": report["run"]["compression"].get("overall_sparsity"),
           "machine": report["benchmarks"]["machine"], **_gate_numbers(report),
           "speed": _speed(report["benchmarks"]), **_table(outcome.run_dir)}
    _say(f"   {row['verdict']} in {seconds:.0f} s; sparsity {row['sparsity']:.4f}")
    return row


def _gate_numbers(report: dict[str, Any]) -> dict[str, Any]:
    """Accuracy change, worst BA increase, CEV and SDE with the gate's intervals (report.json)."""
    limits = {entry["metric"]: entry for entry in report["limits"]}
    metrics = report["metrics"]
    return {
        "teacher_accuracy": metrics["teacher"]["accuracy"], "student_accuracy": metrics["student"]["accuracy"],
        "accuracy_change": {"value": limits["accuracy"]["observed"], "ci": limits["accuracy"]["ci"]},
        "ba_increase": {"value": limits["ba"]["observed"], "ci": limits["ba"]["ci"], "pair": limits["ba"]["unit"]},
        "cev": {"value": metrics["cev"]["value"], "ci": metrics["cev"]["ci"], "excluded": metrics["cev"]["excluded"]},
        "sde": {"value": metrics["sde"]["value"], "ci": metrics["sde"]["ci"], "excluded": metrics["sde"]["excluded"]},
    }


def _speed(benchmarks: dict[str, Any]) -> dict[str, Any]:
    """Teacher / student time at the largest batch: the gate's paired median, and its bootstrap 95 % interval."""
    ratio = max((s for s in benchmarks["speedups"] if s["engine"] == "onnxruntime"), key=lambda s: s["batch_size"])
    times = {row["model"]: np.asarray(row["times_ms"], dtype=float) for row in benchmarks["results"]
             if row["engine"] == "onnxruntime" and row["batch_size"] == ratio["batch_size"]}
    paired = times["teacher"] / times["student"]            # round i of the interleaved measurement
    rng = np.random.default_rng(0)
    medians = np.median(paired[rng.integers(0, paired.size, (SPEED_RESAMPLES, paired.size))], axis=1)
    return {"engine": "onnxruntime", "batch_size": ratio["batch_size"], "value": ratio["ratio"],
            "ci": [float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))],
            "rounds": int(paired.size)}


def _table(run_dir: Path) -> dict[str, Any]:
    """FairGRAPE's Table 1 numbers for teacher and student (percent), with Poisson-bootstrap intervals."""
    from compress_gate.data.contract import align_scores, load_eval_data, load_predictions
    from compress_gate.metrics.fairgrape import accuracy_change_std, joint_group_rates
    from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weights

    data = load_eval_data(run_dir / "data.npz")
    test = data.mask("test")
    y_true = np.asarray(data.labels[test], dtype=np.int8)
    groups = np.asarray(data.groups[test], dtype=np.int8)
    weights = poisson_weights(hash_ids(np.asarray(data.ids[test])), seed=0, n_resamples=N_RESAMPLES)
    tables = {}
    for model in ("teacher", "student"):
        scores = align_scores(data, load_predictions(run_dir / "predictions" / "onnxruntime" / f"{model}.npz"), test)
        y_pred = (scores > 0.5).astype(np.int8)
        point = joint_group_rates(y_true, y_pred, groups, tuple(data.group_names), task="multilabel")
        boot = joint_group_rates(y_true, y_pred, groups, tuple(data.group_names), task="multilabel",
                                 sample_weight=weights)
        tables[model] = (point, boot)
    (t_point, t_boot), (s_point, s_boot) = tables["teacher"], tables["student"]

    def cell(value: Any, resampled: Any) -> dict[str, Any]:
        low, high = np.nanquantile(resampled, [0.025, 0.975])
        return {"value": 100 * float(value), "ci": [100 * float(low), 100 * float(high)]}

    def rows(point: Any, boot: Any) -> dict[str, Any]:
        fnr, fpr = np.nanmean(point.fnr, axis=-1), np.nanmean(point.fpr, axis=-1)
        fnr_b, fpr_b = np.nanmean(boot.fnr, axis=-1), np.nanmean(boot.fpr, axis=-1)
        return {name: {"size": int(point.sizes[j]), "accuracy": cell(point.accuracy[j], boot.accuracy[:, j]),
                       "fnr": cell(fnr[j], fnr_b[:, j]), "fpr": cell(fpr[j], fpr_b[:, j])}
                for j, name in enumerate(point.names)}

    return {"groups": rows(s_point, s_boot), "teacher_groups": rows(t_point, t_boot),
            "std_delta_accuracy": cell(accuracy_change_std(t_point, s_point), accuracy_change_std(t_boot, s_boot))}


def _ci(entry: dict[str, Any], digits: int = 1, scale: float = 1.0) -> str:
    value, ci = entry["value"], entry.get("ci")
    if value is None:
        return "n/a"
    text = f"{scale * value:.{digits}f}"
    return text + (f" [{scale * ci[0]:.{digits}f}, {scale * ci[1]:.{digits}f}]" if ci else "")


def _markdown(report: dict[str, Any]) -> str:
    """Two tables: FairGRAPE's layout per joint group, then the gate's numbers and speed."""
    rows = report["methods"]
    first = next(iter(rows.values()))
    names = [name for name in first["groups"] if name != "all"]
    d = report["data"]
    lines = [f"Method comparison at sparsity {report['sparsity']:g} ({report['created'][:10]}; "
             f"{report['machine']['cpu_model']}, {report['machine']['logical_cpus']} CPUs; "
             f"{report['wall_seconds'] / 60:.1f} min wall, {report['cpu_seconds'] / 60:.1f} CPU-min). "
             f"Synthetic multi-label data, {d['n_train']:,} train / "
             f"{d['n_calib']:,} calib / {d['n_test']:,} test rows; ResNet width {report['model']['width']}; "
             f"{report['compression_epochs']:g} fine-tuning epochs. Percent, 95 % intervals in brackets.", "",
             "**FairGRAPE's Table 1 layout** (test split, threshold 0.5; FNR/FPR averaged over attributes; "
             "Poisson bootstrap):", ""]
    header = ["method"] + [f"{g}: {m}" for g in names for m in ("Acc", "FNR", "FPR")] + ["Std(ΔAcc)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def group_cells(groups: dict[str, Any]) -> list[str]:
        return [_ci(groups[g][m]) for g in names for m in ("accuracy", "fnr", "fpr")]

    lines.append("| teacher | " + " | ".join(group_cells(first["teacher_groups"])) + " | |")
    for name, row in rows.items():
        spread = _ci(row["std_delta_accuracy"], 2)
        lines.append(f"| {name} | " + " | ".join(group_cells(row["groups"])) + f" | {spread} |")
    lines += ["", "**The gate's numbers** (report.json; accuracy change in points, worst BA increase over "
              "(attribute, identity) pairs, CEV/SDE; speed = ONNX Runtime teacher/student time at batch "
              f"{first['speed']['batch_size']}):", "",
              "| method | sparsity | accuracy | Δaccuracy | worst BA increase | CEV | SDE | speed | verdict |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['sparsity']:.3f} | {100 * row['student_accuracy']:.1f} | "
                     f"{_ci(row['accuracy_change'], 2, 100)} | {_ci(row['ba_increase'], 3)} | {_ci(row['cev'], 0)} | "
                     f"{_ci(row['sde'], 0)} | {_ci(row['speed'], 2)} | {row['verdict']} |")
    lines.append("")
    lines.append(f"Teacher accuracy {100 * first['teacher_accuracy']:.1f} %. Joint groups (test sizes): "
                 + ", ".join(f"{g} ({first['groups'][g]['size']:,})" for g in names) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
