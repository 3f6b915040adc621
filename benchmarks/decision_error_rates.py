"""Decision error rates of the gate, by simulation with known truth (issue 19).

Each replicate draws paired teacher/student predictions whose population value of the gated
number is known, judges them with :func:`compress_gate.gate.evaluate` in process (``confidence``
0.95: one-sided level 0.025; ``n_resamples`` ``--resamples``, default 200, the smallest the
gate accepts at that confidence) and records the limit's outcome. Rates are shares of
replicates with their Monte-Carlo standard error sqrt(r (1 - r) / R).

**False pass at the boundary** (the truth sits exactly on the limit; nominal <= 0.025):

- ``accuracy change``: one binary attribute; per row P(teacher right, student wrong) = .05,
  P(teacher wrong, student right) = .03, both wrong .07 (8 % discordant rows): the student's
  accuracy is lower by exactly .02; limit ``{metric: accuracy, change: absolute, min: -0.02}``.
- ``group FNR change``: one binary attribute (P(y = 1) = .5), one identity group of 10 % of the
  rows; among the group's positives P(student-only miss) = .08, P(teacher-only miss) = .03, both
  .02: the group's FNR rises by exactly .05 (outside the group the two models agree); limit
  ``{metric: subgroup_fnr, change: absolute, max: 0.05}`` (units: ``all`` and the group).
- ``BA change``: one attribute (P(y = 1) = .5, independent of the group in test; training
  labels .6 in the group, .4 outside, so BA's direction is the group), a group of 30 % of the
  rows; the teacher calls a positive positive with .9 and a negative with .1; the student
  copies it but turns a positive call outside the group to 0 with f = 1 - (.3/.35 - .3)/.7.
  Then P(group | student positive) = .35 against .30 for the teacher: BA rises by exactly .05;
  limit ``{metric: ba, change: absolute, max: 0.05}``. At n = 50 the group has fewer than 10
  positive test labels, so BA is not computed (not enough evidence, never a pass).

**Family-wise false fail** (nominal <= 0.025; the issue's target 0.05): m attributes, each with
P(y = 1) = .5 and, among its positives, P(teacher-only miss) = .002 and P(student-only miss) =
.002 + Δ (m independent units), n = 1,000, limit ``{metric: fnr, change: absolute, max: 0.02}``;
Δ = .02 (on the limit), .01 and .00 (inside by .01 and .02). The same cells give the **power**
(the pass rate) inside the limit.

    PYTHONPATH=$PWD python benchmarks/decision_error_rates.py                    # every cell
    PYTHONPATH=$PWD python benchmarks/decision_error_rates.py --quick            # 50 replicates per cell

Writes benchmarks/results/decision_error_rates.json and prints the Markdown tables of docs/gate.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from compress_gate.config.gate import parse_gate_config
from compress_gate.data import EvalData
from compress_gate.gate import evaluate

SIZES = (50, 200, 1000, 5000)
UNITS = (1, 10, 40)
SHIFTS = (0.02, 0.01, 0.0)          # FNR change per unit: on the limit .02, inside by .01 and .02
N_TRAIN = 400


def _joint(rng: np.random.Generator, n: int, cells: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(teacher wrong, student wrong) per row from the probabilities of 'student only', 'teacher only', 'both'."""
    u = rng.random(n)
    s_only = u < cells["student_only"]
    t_only = (u >= cells["student_only"]) & (u < cells["student_only"] + cells["teacher_only"])
    both = (u >= cells["student_only"] + cells["teacher_only"]) & (u < sum(cells.values()))
    return t_only | both, s_only | both


def _data(labels: np.ndarray, groups: np.ndarray, train_labels: np.ndarray, train_groups: np.ndarray) -> EvalData:
    n, k = labels.shape
    split = np.array(["train"] * len(train_labels) + ["test"] * n)
    return EvalData(ids=np.array([f"r{i}" for i in range(len(split))]),
                    labels=np.concatenate([train_labels, labels]).astype(np.uint8), split=split,
                    groups=np.concatenate([train_groups, groups]).astype(bool), group_names=("g",),
                    attribute_names=tuple(f"a{j}" for j in range(k)), task="multilabel")


def _train(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows: half in the group, P(y = 1) .6 in it and .4 outside (BA's direction: the group)."""
    g = np.arange(N_TRAIN) < N_TRAIN // 2
    y = rng.random((N_TRAIN, k)) < np.where(g, 0.6, 0.4)[:, None]
    return y, g[:, None]


def _scores(pred: np.ndarray) -> np.ndarray:
    return np.where(pred, 0.9, 0.1).astype(np.float32)


def accuracy_case(rng: np.random.Generator, n: int):
    y = rng.random((n, 1)) < 0.5
    t_wrong, s_wrong = _joint(rng, n, {"student_only": 0.05, "teacher_only": 0.03, "both": 0.07})
    groups = rng.random((n, 1)) < 0.5
    return y, groups, y ^ t_wrong[:, None], y ^ s_wrong[:, None], \
        {"metric": "accuracy", "change": "absolute", "min": -0.02}


def group_fnr_case(rng: np.random.Generator, n: int):
    y = rng.random((n, 1)) < 0.5
    groups = rng.random((n, 1)) < 0.1
    t_miss, s_miss = _joint(rng, n, {"student_only": 0.08, "teacher_only": 0.03, "both": 0.02})
    inside = groups[:, 0] & y[:, 0]
    base_miss = rng.random(n) < 0.05                        # outside the group both miss the same rows
    t_pred = y[:, 0] & ~np.where(inside, t_miss, base_miss)
    s_pred = y[:, 0] & ~np.where(inside, s_miss, base_miss)
    negatives_fp = ~y[:, 0] & (rng.random(n) < 0.05)        # the same false positives for both
    return y, groups, (t_pred | negatives_fp)[:, None], (s_pred | negatives_fp)[:, None], \
        {"metric": "subgroup_fnr", "change": "absolute", "max": 0.05}


BA_FLIP = 1 - (0.3 / 0.35 - 0.3) / 0.7


def ba_case(rng: np.random.Generator, n: int):
    y = rng.random((n, 1)) < 0.5
    groups = rng.random((n, 1)) < 0.3
    t_pred = np.where(y, rng.random((n, 1)) < 0.9, rng.random((n, 1)) < 0.1)
    s_pred = t_pred & ~(~groups & (rng.random((n, 1)) < BA_FLIP))
    return y, groups, t_pred, s_pred, {"metric": "ba", "change": "absolute", "max": 0.05}


def family_case(rng: np.random.Generator, n: int, m: int, shift: float):
    y = rng.random((n, m)) < 0.5
    cells = {"student_only": 0.002 + shift, "teacher_only": 0.002, "both": 0.0}
    t_miss, s_miss = zip(*(_joint(rng, n, cells) for _ in range(m)))
    t_pred = y & ~np.stack(t_miss, axis=1)
    s_pred = y & ~np.stack(s_miss, axis=1)
    groups = rng.random((n, 1)) < 0.5
    return y, groups, t_pred, s_pred, {"metric": "fnr", "change": "absolute", "max": 0.02}


CASES = {"accuracy change": accuracy_case, "group FNR change": group_fnr_case, "BA change": ba_case}


def _one(task: tuple) -> str:
    """One replicate: ``(case, n, m, shift, seed, resamples)`` -> the limit's outcome."""
    case, n, m, shift, seed, resamples = task
    rng = np.random.default_rng(seed)
    y, groups, t_pred, s_pred, limit = (family_case(rng, n, m, shift) if case == "family"
                                        else CASES[case](rng, n))
    train_y, train_g = _train(rng, y.shape[1])
    data = _data(y, groups, train_y, train_g)
    config = parse_gate_config({"n_resamples": resamples, "seed": seed % 2**31, "limits": [limit]},
                               source="benchmark")
    result = evaluate(data, _scores(t_pred), [_scores(s_pred)], config)
    return result.report.limits[0].outcome


def _rate(outcomes: list[str], which: str) -> dict:
    r = sum(o == which for o in outcomes) / len(outcomes)
    return {"rate": r, "se": math.sqrt(r * (1 - r) / len(outcomes)), "replicates": len(outcomes)}


def _cells(args: argparse.Namespace) -> list[tuple[str, int, int, float, int]]:
    cells = [(case, n, 1, 0.0, args.replicates) for case in CASES for n in args.sizes]
    cells += [("family", args.family_n, m, shift, args.family_replicates) for m in args.units for shift in SHIFTS]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--units", type=int, nargs="+", default=list(UNITS))
    parser.add_argument("--replicates", type=int, default=400, help="per false-pass cell")
    parser.add_argument("--family-replicates", type=int, default=200, help="per family-wise cell")
    parser.add_argument("--family-n", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="50 replicates per cell")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "decision_error_rates.json")
    args = parser.parse_args()
    if args.quick:
        args.replicates = args.family_replicates = 50
    started = time.perf_counter()
    results = []
    with ProcessPoolExecutor(args.workers) as pool:
        for case, n, m, shift, replicates in _cells(args):
            tasks = [(case, n, m, shift, 1_000_003 * (i + 1) + 7 * n + m, args.resamples) for i in range(replicates)]
            outcomes = list(pool.map(_one, tasks, chunksize=8))
            results.append({"case": case, "n": n, "units": m, "shift": shift,
                            **{f"{o}_rate": _rate(outcomes, o) for o in ("pass", "fail", "not_enough_evidence")}})
            print(json.dumps(results[-1]), flush=True)
    elapsed = time.perf_counter() - started
    report = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu_count": os.cpu_count(), "workers": args.workers, "resamples": args.resamples,
              "wall_s": round(elapsed, 1), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(tables(report))


def _fmt(cell: dict) -> str:
    return f"{cell['rate']:.3f} ± {cell['se']:.3f}"


def tables(report: dict) -> str:
    """The Markdown tables of docs/gate.md from a results file."""
    rows = report["results"]
    sizes = sorted({r["n"] for r in rows if r["case"] in CASES})
    lines = ["| limit (truth on it) | " + " | ".join(f"n = {n:,}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for case in CASES:
        cells = {r["n"]: r for r in rows if r["case"] == case}
        lines.append(f"| {case}: false pass | " + " | ".join(_fmt(cells[n]["pass_rate"]) for n in sizes) + " |")
    lines += ["", "| units m | truth per unit | false fail (family-wise) | pass (power) | not enough evidence |",
              "|---|---|---|---|---|"]
    for r in (r for r in rows if r["case"] == "family"):
        where = "on the limit" if r["shift"] == 0.02 else f"inside by {0.02 - r['shift']:.2f}"
        lines.append(f"| {r['units']} | {r['shift']:.2f} ({where}) | {_fmt(r['fail_rate'])} | {_fmt(r['pass_rate'])} | "
                     f"{_fmt(r['not_enough_evidence_rate'])} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
