"""Method comparison at a fair budget: GMP (+ each distillation kind), FairGRAPE both ways, SNIP, GraSP.

Every student gets the same fine-tuning budget (``--budget`` epochs, default 8; FairGRAPE's
epochs between its pruning steps are counted in it), at sparsities 0.8, 0.9 and 0.99 (FairGRAPE's
appendix uses 0.9 and 0.99), over ``--seeds`` seeds (default 3: the recipe seed, so every seed
trains its own teacher, draws its own masks and data order). Each cell (method, sparsity, seed,
budget) is one ``compress-gate run`` (the torch backend, then export, ONNX Runtime predictions,
benchmark and the gate) on the multi-label demo data (``kind: synthetic`` as
recipes/multilabel.yaml: 10 attributes, identity groups ``warm`` and ``shadow``, so 4 joint
groups) at a reduced size::

    .venv-torch/bin/python benchmarks/method_comparison.py [--work DIR]        # the whole grid, resumable
    .venv-torch/bin/python benchmarks/method_comparison.py --summarize         # tables from the cells so far
    .venv-torch/bin/python benchmarks/method_comparison.py --seeds 5 --sparsities 0.99   # more seeds at one sparsity

**Resumable.** Each finished cell is appended as one JSON line to
``benchmarks/results/method_comparison_cells.jsonl`` (with its recipe); a rerun skips the cells
already there, so the grid can be stopped and continued. Cells run in order of use: sparsity 0.9
first (all methods, then the next seed), then 0.99, then 0.8, then the recovery curve;
FairGRAPE with ``procedure: authors`` (16 to 44 iterations over the whole training split) last
in each block, being the slowest.

**Budget.** GMP prunes over the first half of the budget (update every budget/40 epochs) and
fine-tunes the rest; SNIP, GraSP and FairGRAPE (project: 5 steps on 4 batches) prune before
fine-tuning for the whole budget; FairGRAPE (authors: ``procedure: authors``) keeps its
schedule (``keep_per_iter`` 0.9: 16 / 22 / 44 iterations at 0.8 / 0.9 / 0.99) and whole-split
importance, but its between-step fine-tuning is scaled to fit: ``finetune_epochs = budget / (2
(T − 1))`` (the authors' 3 epochs per iteration would be 45 to 129 epochs), and the final
fine-tuning is the other half. **Recovery curve**: GMP, SNIP and both FairGRAPE settings at
sparsity 0.9, seed 0, at budgets 1, 2, 4 and 8 epochs.

Per cell (benchmarks/results/method_comparison_cells.jsonl) and summarized per (method,
sparsity) over seeds in benchmarks/results/method_comparison_seeds.{json,md}:

- **Std(ΔAcc)** (FairGRAPE's headline, percent): the sample std over joint groups of the change in
  group accuracy, from :mod:`compress_gate.metrics.fairgrape` on the shipped ONNX Runtime
  predictions of the test split at threshold 0.5, with a 95 % percentile Poisson-bootstrap
  interval (500 resamples keyed by sample id); per joint group accuracy, FNR and FPR (FNR/FPR
  averaged over the 10 attributes), each with its interval.
- **The gate's numbers** from each run's report.json: accuracy change and the worst BA increase
  with the gate's intervals (no mitigation: thresholds 0.5, no overrides, so the gate judges
  the same predictions as the table), CEV and SDE, the verdict, the ONNX Runtime speed ratio.
- Summaries: per number, the mean and sample standard deviation over seeds, and seed 0's
  bootstrap interval beside them (it does not cover another training run); and each method paired
  with GMP seed by seed (:func:`paired_with_reference`), since a seed's teacher is shared.

Needs the ``[torch]`` environment (torch, torch-pruning, onnxruntime).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CELLS = RESULTS_DIR / "method_comparison_cells.jsonl"
SUMMARY = RESULTS_DIR / "method_comparison_seeds.json"
PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
N_RESAMPLES = 500
SPEED_RESAMPLES = 2000
SPARSITIES = (0.9, 0.99, 0.8)       # in the order they run
REFERENCE = "GMP"                    # the method every other is paired with, seed by seed
RECOVERY = {"sparsity": 0.9, "seed": 0, "budgets": (1.0, 2.0, 4.0), "methods": ("GMP", "SNIP", "FairGRAPE",
                                                                               "FairGRAPE (authors)")}

#: Reduced size of recipes/multilabel.yaml's data (it has 12,000 / 4,000 / 20,000).
DATA = {"kind": "synthetic", "seed": 0, "image_size": 16, "n_train": 8000, "n_calib": 2000, "n_test": 10000,
        "keep_fraction": 0.2, "noise": 0.1}

BASE: dict[str, Any] = {
    "model": {"arch": "resnet", "width": 16, "depth": 1,
              "train": {"epochs": 4, "lr": 0.05, "optimizer": "sgd", "batch_size": 128}},
    "data": DATA,
    "compression": {"backend": "torch", "lr": 0.01, "optimizer": "sgd", "batch_size": 128},
    "engines": {"deployment": "onnxruntime", "check": [], "batch_size": 256,
                "benchmark": {"engines": ["onnxruntime"], "batch_sizes": [64], "warmup": 5, "iterations": 30}},
    "gate": {"confidence": 0.95, "n_resamples": 500, "judge": "thresholds",
             "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
             "limits": [{"metric": "accuracy", "change": "absolute", "min": -0.02},
                        {"metric": "ba", "change": "absolute", "max": 0.05}]},
}


def methods(sparsity: float, budget: float) -> dict[str, dict[str, Any]]:
    """Row name -> the ``compression`` keys that differ from :data:`BASE`, all at ``sparsity`` and ``budget``."""
    gmp = {"epochs": budget, "pruning": {
        "params": PARAMS, "init_sparsity": 0.05, "final_sparsity": sparsity, "start_epoch": 0.0,
        "end_epoch": budget / 2, "update_frequency": budget / 40, "inter_func": "cubic"}}
    saliency = {"params": PARAMS, "sparsity": sparsity}
    iterations = math.ceil(math.log(1 - sparsity, 0.9))
    between = budget / (2 * (iterations - 1))
    return {
        "GMP": gmp,
        "GMP+KD (Hinton)": {**gmp, "distillation": {"kind": "hinton"}},
        "GMP+AT": {**gmp, "distillation": {"kind": "attention"}},
        "GMP+SP": {**gmp, "distillation": {"kind": "similarity"}},
        "GMP+CRD": {**gmp, "distillation": {"kind": "crd"}},
        "SNIP": {"epochs": budget, "saliency": {"method": "snip", "batches": 4, **saliency}},
        "GraSP": {"epochs": budget, "saliency": {"method": "grasp", "batches": 4, **saliency}},
        "FairGRAPE": {"epochs": budget, "saliency": {"method": "fairgrape", "steps": 5, "batches": 4, **saliency}},
        "FairGRAPE (authors)": {"epochs": budget / 2, "saliency": {
            "method": "fairgrape", "procedure": "authors", "finetune_epochs": between, **saliency}},
    }


def grid(seeds: int, budget: float, only: list[str] | None,
         sparsities: tuple[float, ...] = SPARSITIES) -> list[dict[str, Any]]:
    """Every cell ``{method, sparsity, seed, budget}`` in the order they run (module docstring); the
    recovery curve only where its sparsity is among ``sparsities``."""
    cells = [{"method": name, "sparsity": sparsity, "seed": seed, "budget": budget}
             for sparsity in sparsities for seed in range(seeds) for name in methods(sparsity, budget)]
    if RECOVERY["sparsity"] in sparsities:
        cells += [{"method": name, "sparsity": RECOVERY["sparsity"], "seed": RECOVERY["seed"], "budget": b}
                  for b in RECOVERY["budgets"] for name in RECOVERY["methods"]]
    return [cell for cell in cells if only is None or cell["method"] in only]


def _key(cell: dict[str, Any]) -> tuple:
    return cell["method"], float(cell["sparsity"]), int(cell["seed"]), float(cell["budget"])


def done_cells(path: Path) -> dict[tuple, dict[str, Any]]:
    """The cells already in the JSON-lines file (a torn last line, from an interrupted write, is ignored)."""
    found = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            found[_key(row)] = row
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=8.0, help="fine-tuning epochs of every student")
    parser.add_argument("--only", nargs="+", default=None, help="these methods only (names as printed)")
    parser.add_argument("--sparsities", nargs="+", type=float, default=list(SPARSITIES),
                        help="these sparsities only (e.g. more seeds at 0.99: --seeds 5 --sparsities 0.99)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/method-comparison"),
                        help="recipes, run directories and teacher caches (kept, so a rerun reuses teachers)")
    parser.add_argument("--cells", type=Path, default=CELLS)
    parser.add_argument("--summarize", action="store_true", help="only write the tables from the cells so far")
    args = parser.parse_args(argv)

    if not args.summarize:
        for cell in grid(args.seeds, args.budget, args.only, tuple(args.sparsities)):
            if _key(cell) in done_cells(args.cells):
                continue
            row = {**cell, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   **_run(cell, args.work.resolve())}
            with args.cells.open("a", encoding="utf-8") as out:
                out.write(json.dumps(row) + "\n")
    summary = summarize(list(done_cells(args.cells).values()), args.budget)
    from compress_gate._atomic import write_json, write_text

    out = args.cells.with_name(SUMMARY.name)               # beside the cells
    write_json(out, summary)
    write_text(out.with_suffix(".md"), _markdown(summary))
    print(_markdown(summary))
    return 0


def _stats(values: list[float | None]) -> dict[str, Any]:
    defined = [v for v in values if v is not None and math.isfinite(v)]
    return {"n": len(defined), "mean": statistics.fmean(defined) if defined else None,
            "std": statistics.stdev(defined) if len(defined) > 1 else None}


def summarize(rows: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    """Per (method, sparsity) at ``budget``: mean and sample std over seeds, seed 0's intervals; the recovery curve."""
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["budget"] != budget:
            continue
        entry = table.setdefault(f"{row['method']} @ {row['sparsity']:g}", {"method": row["method"],
                                                                           "sparsity": row["sparsity"], "rows": []})
        entry["rows"].append(row)
    out = {}
    for name, entry in table.items():
        members = sorted(entry["rows"], key=lambda r: r["seed"])
        first = members[0]
        numbers = {"std_delta_accuracy": [r["std_delta_accuracy"]["value"] for r in members],
                   "accuracy": [100 * r["student_accuracy"] for r in members],
                   "ba_increase": [r["ba_increase"]["value"] for r in members]}
        groups = {g: {m: _stats([r["groups"][g][m]["value"] for r in members]) for m in ("accuracy", "fnr", "fpr")}
                  for g in first["groups"] if g != "all"}
        out[name] = {"method": entry["method"], "sparsity": entry["sparsity"], "seeds": [r["seed"] for r in members],
                     "passed": sum(r["verdict"] == "pass" for r in members),
                     **{key: {**_stats(values), "seed0_ci": _seed0_ci(first, key)} for key, values in numbers.items()},
                     "groups": groups, "cpu_minutes": sum(sum(r["stage_cpu_seconds"].values()) for r in members) / 60}
    recovery = [{"method": r["method"], "budget": r["budget"], "accuracy": 100 * r["student_accuracy"],
                 "std_delta_accuracy": r["std_delta_accuracy"]["value"], "ba_increase": r["ba_increase"]["value"]}
                for r in rows if r["sparsity"] == RECOVERY["sparsity"] and r["seed"] == RECOVERY["seed"]
                and r["method"] in RECOVERY["methods"]]
    return {"budget": budget, "cells": len(rows), "data": DATA, "model": BASE["model"], "settings": out,
            "paired": paired_with_reference(rows, budget),
            "recovery": sorted(recovery, key=lambda r: (r["method"], r["budget"]))}


def paired_with_reference(rows: list[dict[str, Any]], budget: float) -> list[dict[str, Any]]:
    """Each method against :data:`REFERENCE` (GMP) seed by seed, at ``budget`` and the same sparsity.

    A seed shares its teacher and data order across methods, so the difference within a seed removes
    the teacher's share of the spread. Per seed present in both: ``method − GMP`` of Std(ΔAcc)
    (percent points), of accuracy (percent points) and of the worst BA increase (None where either
    is undefined: the gate failed closed). ``lower`` counts the seeds where the method's Std(ΔAcc) is
    below GMP's. A (method, sparsity) with no seed shared with GMP is left out.
    """
    cells = {_key(row): row for row in rows if row["budget"] == budget}
    settings = sorted({(method, sparsity) for method, sparsity, _, _ in cells if method != REFERENCE},
                      key=lambda ms: (ms[1], ms[0]))
    out = []
    for method, sparsity in settings:
        pairs = [(seed, cells[(method, sparsity, seed, budget)], cells[(REFERENCE, sparsity, seed, budget)])
                 for seed in sorted({k[2] for k in cells if k[:2] == (method, sparsity)})
                 if (REFERENCE, sparsity, seed, budget) in cells]
        if not pairs:
            continue
        std = [r["std_delta_accuracy"]["value"] - ref["std_delta_accuracy"]["value"] for _, r, ref in pairs]
        out.append({"method": method, "sparsity": sparsity, "seeds": [seed for seed, _, _ in pairs],
                    "std_delta_accuracy": std,
                    "accuracy": [100 * (r["student_accuracy"] - ref["student_accuracy"]) for _, r, ref in pairs],
                    "ba_increase": [None if r["ba_increase"]["value"] is None or ref["ba_increase"]["value"] is None
                                    else r["ba_increase"]["value"] - ref["ba_increase"]["value"]
                                    for _, r, ref in pairs],
                    "lower": sum(d < 0 for d in std)})
    return out


def _seed0_ci(row: dict[str, Any], key: str) -> list[float] | None:
    if key == "accuracy":
        return None
    return row[key].get("ci")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(cell: dict[str, Any], work: Path) -> dict[str, Any]:
    """Write the cell's recipe, run it, and collect its numbers."""
    import yaml
    from rich.console import Console

    from compress_gate.pipeline.run import run_recipe

    name = cell["method"]
    slug = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    slug = f"{slug}-s{cell['sparsity']:g}-seed{cell['seed']}-b{cell['budget']:g}"
    recipe = copy.deepcopy(BASE)
    recipe["seed"] = cell["seed"]
    recipe["compression"].update(copy.deepcopy(methods(cell["sparsity"], cell["budget"])[name]))
    recipe["output"] = str(work / "runs" / slug)
    recipe["model"]["cache_dir"] = str(work / "teacher-cache")   # one teacher per seed, shared by the methods
    path = work / "recipes" / f"{slug}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    _say(f"== {slug}: {path}")
    began = time.perf_counter()
    outcome = run_recipe(path, console=Console(stderr=True, quiet=True))
    seconds = time.perf_counter() - began
    report = outcome.report.model_dump(mode="json")
    run = json.loads((outcome.run_dir / "run.json").read_text(encoding="utf-8"))
    row = {"verdict": report["verdict"], "outcome": report["outcome"], "wall_seconds": round(seconds, 1),
           "stage_seconds": outcome.stage_seconds, "stage_cpu_seconds": run["stage_cpu_seconds"],
           "compression": recipe["compression"], "epochs_trained": report["run"]["compression"].get("epochs"),
           "sparsity_reached": report["run"]["compression"].get("overall_sparsity"),
           "machine": report["benchmarks"]["machine"], **_gate_numbers(report),
           "speed": _speed(report["benchmarks"]), **_table(outcome.run_dir)}
    _say(f"   {row['verdict']} in {seconds:.0f} s; sparsity {row['sparsity_reached']:.4f}")
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


def _mean_std(stat: dict[str, Any], digits: int = 2) -> str:
    if stat["mean"] is None:
        return "n/a"
    spread = "" if stat["std"] is None else f" ± {stat['std']:.{digits}f}"
    return f"{stat['mean']:.{digits}f}{spread}"


def _with_ci(stat: dict[str, Any], digits: int = 2) -> str:
    ci = stat.get("seed0_ci")
    return _mean_std(stat, digits) + (f" (seed 0: [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}])" if ci else "")


def _per_seed(values: list[float | None], digits: int) -> str:
    return " / ".join("n/a" if v is None else f"{v:+.{digits}f}" for v in values)


def _markdown(summary: dict[str, Any]) -> str:
    """Headline table (Std(ΔAcc), accuracy, BA increase), per-group table, the pairs with GMP and the recovery curve."""
    settings = summary["settings"]
    if not settings:
        return "No cell at this budget yet.\n"
    lines = [f"Method comparison, every student fine-tuned {summary['budget']:g} epochs ({summary['cells']} cells "
             "so far). Mean ± sample std over seeds; in parentheses seed 0's 95 % bootstrap interval.", "",
             "| method | sparsity | seeds | pass | Std(ΔAcc) % | accuracy % | worst BA increase | CPU-min |",
             "|---|---|---|---|---|---|---|---|"]
    for entry in sorted(settings.values(), key=lambda e: (e["sparsity"], e["method"])):
        lines.append(f"| {entry['method']} | {entry['sparsity']:g} | {len(entry['seeds'])} | {entry['passed']} | "
                     f"{_with_ci(entry['std_delta_accuracy'])} | {_mean_std(entry['accuracy'], 1)} | "
                     f"{_with_ci(entry['ba_increase'], 3)} | {entry['cpu_minutes']:.0f} |")
    names = list(next(iter(settings.values()))["groups"])
    lines += ["", "Per joint group (mean ± std over seeds, percent): accuracy / FNR / FPR", "",
              "| method | sparsity | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for entry in sorted(settings.values(), key=lambda e: (e["sparsity"], e["method"])):
        cells = [" / ".join(_mean_std(entry["groups"][g][m], 1) for m in ("accuracy", "fnr", "fpr")) for g in names]
        lines.append(f"| {entry['method']} | {entry['sparsity']:g} | " + " | ".join(cells) + " |")
    if summary["paired"]:
        lines += ["", f"Paired with {REFERENCE}, seed by seed (method − {REFERENCE} at the same seed: same teacher, "
                  "same data order). Std(ΔAcc) and accuracy in percent points; lower: seeds where the method's "
                  f"Std(ΔAcc) is below {REFERENCE}'s", "",
                  "| method | sparsity | Δ Std(ΔAcc) | lower | Δ accuracy | Δ worst BA increase |", "|---|---|---|---|---|---|"]
        lines += [f"| {p['method']} | {p['sparsity']:g} | {_per_seed(p['std_delta_accuracy'], 2)} | "
                  f"{p['lower']} of {len(p['seeds'])} | {_per_seed(p['accuracy'], 1)} | "
                  f"{_per_seed(p['ba_increase'], 3)} |" for p in summary["paired"]]
    if summary["recovery"]:
        lines += ["", f"Recovery (sparsity {RECOVERY['sparsity']:g}, seed {RECOVERY['seed']}): accuracy % / "
                  "Std(ΔAcc) % / worst BA increase by fine-tuning budget", "",
                  "| method | budget (epochs) | accuracy | Std(ΔAcc) | worst BA increase |", "|---|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['budget']:g} | {r['accuracy']:.1f} | {r['std_delta_accuracy']:.2f} | "
                  f"{r['ba_increase']:.3f} |" for r in summary["recovery"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
