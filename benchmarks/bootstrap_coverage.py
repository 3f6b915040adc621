"""Coverage of 95 % percentile intervals: counter-based Poisson weights against the multinomial bootstrap.

Each simulated data set d of n samples (ids ``d-0 .. d-(n-1)``, seed d) has a true label
y ~ Bernoulli(0.3), a teacher that is correct with p = 0.8 and a student that flips the
teacher's outcome with p = 0.1 (accuracy 0.8 * 0.9 + 0.2 * 0.1 = 0.74), and a student
prediction for the FNR that misses a positive with p = 0.2. Three statistics, each
resampled with both weight schemes on the *same* data sets:

- ``proportion``: the teacher's accuracy, truth 0.8;
- ``paired difference``: student accuracy - teacher accuracy, truth -0.06 (teacher and
  student share each resample's weights, as in the gate);
- ``ratio (FNR)``: FN / (FN + TP) = sum w y miss / sum w y, truth 0.2 (a ratio whose
  denominator, the resampled number of positives, is itself random; a resample without
  positives is ``nan`` and ignored, as :func:`percentile_interval` does).

Weights: ``counter`` :func:`poisson_weights` (seed 0; data set d's ids ``d-i`` differ from
every other data set's, so their weights are independent), ``numpy-poisson`` NumPy's Poisson(1)
draws, and ``multinomial`` NumPy's multinomial(n, 1/n) counts: the distribution of the gate's
bootstrap today (:func:`~compress_gate.metrics.bootstrap_weights` draws n indices with replacement; its per-resample
loop is too slow for 10^4 data sets). Data sets are simulated and resampled in batches, all
vectorized. The coverage is the share of data sets whose interval holds the truth,
``lo <= truth <= hi`` as the gate compares bounds (``strict``: ``lo < truth < hi``, which
tells how much of it is intervals that end exactly on the truth: a multinomial resample of
a proportion lies on the lattice k / n, and so does each truth here); its Monte-Carlo
standard error is sqrt(c (1 - c) / D) for D data sets.

    PYTHONPATH=$PWD python benchmarks/bootstrap_coverage.py                 # n in 50 .. 5000, D = 4000
    PYTHONPATH=$PWD python benchmarks/bootstrap_coverage.py --sizes 1000 --datasets 500

Writes benchmarks/results/bootstrap_coverage.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

import numpy as np

from compress_gate.metrics import percentile_interval
from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weights

STATISTICS = {"proportion": 0.8, "paired difference": -0.06, "ratio (FNR)": 0.2}
SCHEMES = ("counter", "numpy-poisson", "multinomial")


def _statistics(w: np.ndarray, y: np.ndarray, teacher: np.ndarray, student: np.ndarray,
                miss: np.ndarray) -> dict[str, np.ndarray]:
    """The three resampled statistics of the module docstring: w (B, G, n), data (G, n) -> (B, G) each."""
    total = w.sum(axis=2)
    dot = lambda x: np.einsum("bgn,gn->bg", w, x)    # noqa: E731 - weighted sums per resample and data set
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"proportion": dot(teacher) / total,
                "paired difference": dot(student - teacher) / total,
                "ratio (FNR)": dot(y * miss) / dot(y)}


def _weights(n: int, group: int, first: int, n_resamples: int) -> dict[str, np.ndarray]:
    """(B, group, n) float64 weights of data sets ``first .. first + group - 1`` for each scheme."""
    ids = np.char.add(np.repeat(np.arange(first, first + group).astype(str), n),
                      np.char.add("-", np.tile(np.arange(n).astype(str), group)))
    counter = poisson_weights(hash_ids(ids), seed=0, n_resamples=n_resamples).reshape(n_resamples, group, n)
    rng = np.random.default_rng(first)
    multinomial = np.stack([rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples) for _ in range(group)],
                           axis=1)
    return {"counter": counter.astype(np.float64),
            "numpy-poisson": rng.poisson(1.0, (n_resamples, group, n)).astype(np.float64),
            "multinomial": multinomial.astype(np.float64)}


def coverage(n_samples: int, n_datasets: int, *, n_resamples: int) -> dict[str, dict[str, list[float]]]:
    """``{scheme: {statistic: [coverage, strict coverage]}}`` over ``n_datasets`` data sets of ``n_samples``."""
    rng = np.random.default_rng(2025 + n_samples)
    covered = {scheme: {name: [0, 0] for name in STATISTICS} for scheme in SCHEMES}
    step = max(1, 50_000 // n_samples)
    for first in range(0, n_datasets, step):
        group = min(step, n_datasets - first)
        shape = (group, n_samples)
        y = (rng.random(shape) < 0.3).astype(np.float64)
        teacher = (rng.random(shape) < 0.8).astype(np.float64)
        student = np.where(rng.random(shape) < 0.1, 1.0 - teacher, teacher)
        miss = (rng.random(shape) < 0.2).astype(np.float64)
        for scheme, w in _weights(n_samples, group, first, n_resamples).items():
            for name, values in _statistics(w, y, teacher, student, miss).items():
                lo, hi = percentile_interval(values, axis=0)
                truth = STATISTICS[name]
                covered[scheme][name][0] += int(((lo <= truth) & (truth <= hi)).sum())
                covered[scheme][name][1] += int(((lo < truth) & (truth < hi)).sum())
    return {scheme: {name: [hits / n_datasets for hits in pair] for name, pair in row.items()}
            for scheme, row in covered.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 1000, 5000])
    parser.add_argument("--datasets", type=int, default=4000)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "bootstrap_coverage.json")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        start = time.perf_counter()
        found = coverage(n, args.datasets, n_resamples=args.resamples)
        for scheme, row in found.items():
            for name, (value, strict) in row.items():
                se = (value * (1 - value) / args.datasets) ** 0.5
                rows.append({"n": n, "scheme": scheme, "statistic": name, "coverage": value, "mc_se": se,
                             "strict_coverage": strict})
                print(f"n={n:5d} {scheme:13s} {name:18s} {value:.4f} +- {se:.4f} (strict {strict:.4f})", flush=True)
        print(f"n={n}: {time.perf_counter() - start:.0f} s", flush=True)
    result = {"benchmark": "bootstrap_coverage",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "datasets": args.datasets, "resamples": args.resamples, "confidence": 0.95, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
