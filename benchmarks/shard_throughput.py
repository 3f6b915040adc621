"""Per-shard throughput of a stand-in for the gate's count work, for the 16-node estimate in docs/scaling.md.

The gate's per-shard statistics (issue 12: counts that merge by addition, with the counter-based
Poisson bootstrap) are not in this branch yet, so this measures a stand-in of their work on one
shard of ``--rows`` samples, on one thread (BLAS and NumPy pinned to 1), ``--repeats`` times:

1. ``hash``: :func:`hash_ids` of the shard's ids;
2. ``weights``: :func:`poisson_weights` for ``--resamples`` resamples (float32, B x rows);
3. ``counts``: one float32 matrix product (B x rows) @ (rows x C), C = ``--attributes`` x
   ``--columns`` 0/1 indicator columns (the counts each resample needs: per attribute, for
   teacher and student, true / predicted / both positive in each identity cell, and the
   uncertainty and calibration counts), plus the point counts (1 x rows) @ (rows x C).

The assumption is that the real per-shard statistics cost about as much as this (they are
these products, in chunks of resamples); the real gate's measured number replaces it.

    PYTHONPATH=$PWD python benchmarks/shard_throughput.py          # 1e5 rows, 1000 resamples, 40 x 16
Writes benchmarks/results/shard_throughput.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                 # one thread: a per-core rate, before NumPy loads its BLAS

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weights  # noqa: E402


def measure(rows: int, resamples: int, columns: int, seed: int = 0) -> dict[str, float]:
    """Wall seconds of each step of the module docstring on one shard, their ``total``, its CPU seconds
    (``cpu``), and the checksum of the counts."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("id-", np.arange(rows).astype(str))
    indicators = (rng.random((rows, columns)) < 0.3).astype(np.float32)
    times = {}
    cpu = time.process_time()
    start = time.perf_counter()
    hashes = hash_ids(ids)
    times["hash"] = time.perf_counter() - start
    start = time.perf_counter()
    weights = poisson_weights(hashes, seed=seed, n_resamples=resamples)
    times["weights"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = weights @ indicators
    point = indicators.sum(axis=0, dtype=np.float64)
    times["counts"] = time.perf_counter() - start
    times["total"] = times["hash"] + times["weights"] + times["counts"]
    times["cpu"] = time.process_time() - cpu       # less sensitive than wall time to a loaded machine
    times["checksum"] = float(counts.sum() + point.sum())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--attributes", type=int, default=40)
    parser.add_argument("--columns", type=int, default=16, help="indicator columns per attribute")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shard_throughput.json")
    args = parser.parse_args()
    from compress_gate.engines import machine_description

    machine = machine_description(num_threads=1)
    columns = args.attributes * args.columns
    runs = []
    for repeat in range(args.repeats):
        runs.append(measure(args.rows, args.resamples, columns, seed=repeat))
        print({k: round(v, 3) for k, v in runs[-1].items() if k != "checksum"}, flush=True)
    best = {key: min(run[key] for run in runs) for key in ("hash", "weights", "counts", "total", "cpu")}
    result = {"benchmark": "shard_throughput",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine, "rows": args.rows, "resamples": args.resamples, "columns": columns,
              "runs": runs, "best_seconds": best, "rows_per_second": args.rows / best["total"],
              "rows_per_cpu_second": args.rows / best["cpu"], "load_average_1m": os.getloadavg()[0],
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps({k: result[k] for k in ("best_seconds", "rows_per_second", "rows_per_cpu_second",
                                             "peak_rss_mib")}, indent=1))
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
