"""Per-shard cost of the gate's Ray tasks and of its driver, for the 16-node estimate in docs/scaling.md.

Writes ``--shards`` shards of ``--rows`` test rows (``gate_scaling.write_shards``: 40 attributes,
4 identity groups, a teacher and one student; calib and train rows in proportion) and measures,
on one thread (BLAS and NumPy pinned to 1, as Ray runs a 1-CPU task), the best of ``--repeats``:

- per shard, the CPU seconds of each step a Ray task runs on it: ``checks`` (reading and checking
  the data shard and each model's predictions shard, and hashing their ids), ``read`` (reading
  the shard's block for a pass; two passes), ``prelude`` (pass 1) and ``statistics`` (pass 2,
  ``--resamples`` Poisson resamples, the ``required`` limits of ``gate_scaling``);
- the bytes of a pass-1 and a pass-2 result (pickled, protocol 5, as Ray moves them) and the CPU
  seconds of adding two pass-2 results (what merging costs per result);
- the driver's id join over all ``--shards`` shards (:func:`open_shards` with the per-file
  summaries already computed), in CPU microseconds per data row.

    PYTHONPATH=$PWD python benchmarks/shard_throughput.py           # 10 shards of 1e5 rows, 1000 resamples
Writes benchmarks/results/shard_throughput.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"                 # one thread: a per-core rate, before NumPy loads its BLAS

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gate_scaling import LIMITS, write_shards  # noqa: E402


def best_cpu(step: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """The least CPU seconds of ``repeats`` calls of ``step``, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = step()
        best = min(best, time.process_time() - start)
    return best, result


def measure(root: Path, resamples: int, repeats: int) -> dict[str, Any]:
    """The module docstring's figures for the shards under ``root``."""
    from compress_gate.config.gate import GateConfig
    from compress_gate.data.shards import data_summary, open_shards, prediction_summary
    from compress_gate.gate._measures import Layout
    from compress_gate.gate._sharded import _shard_input
    from compress_gate.gate.evaluate import evaluate_shards

    dirs = (root / "data", root / "teacher", [root / "student"])
    summaries: dict[Path, Any] = {}

    def remembered(fn: Callable[[Path], Any], paths: list[Path]) -> list[Any]:
        return [summaries[p] if p in summaries else summaries.setdefault(p, fn(p)) for p in paths]
    sharded = open_shards(*dirs, map_files=remembered)
    join_s, _ = best_cpu(lambda: open_shards(*dirs, map_files=remembered), repeats)
    source = sharded.sources()[0]
    checks_s, _ = best_cpu(lambda: (data_summary(source.data),
                                    [prediction_summary(paths[0]) for paths in source.predictions]), repeats)
    read_s, block = best_cpu(source.read, repeats)
    shard = _shard_input(block)
    passes: list[Callable[[Any], Any]] = []

    def first_shard_only(fn: Callable[[Any], Any], shards: Any) -> Any:
        passes.append(fn)                          # the gate's own per-shard functions, with its plans
        return map(fn, [shard])
    config = GateConfig(n_resamples=resamples, seed=0, judge="raw", limits=LIMITS["required"])
    evaluate_shards([shard], Layout(sharded.task, sharded.attribute_names, sharded.group_names), config,
                    n_test=int((shard.split == "test").sum()), n_students=1, map_shards=first_shard_only)
    prelude_s, prelude = best_cpu(lambda: passes[0](shard), repeats)
    statistics_s, stats = best_cpu(lambda: passes[1](shard), repeats)
    add_s, _ = best_cpu(lambda: stats + stats, repeats)
    task_s = checks_s + 2 * read_s + prelude_s + statistics_s
    return {"per_shard_cpu_s": {"checks": checks_s, "read_per_pass": read_s, "prelude": prelude_s,
                                "statistics": statistics_s, "task_total": task_s},
            "result_bytes": {"prelude": len(pickle.dumps(prelude, protocol=5)),
                             "statistics": len(pickle.dumps(stats, protocol=5))},
            "add_statistics_cpu_s": add_s,
            "driver_join_cpu_s": join_s, "driver_join_cpu_us_per_row": 1e6 * join_s / sharded.n_samples,
            "n_data_rows": sharded.n_samples, "test_rows_per_shard": int((shard.split == "test").sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="test rows per shard")
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--attributes", type=int, default=40)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shard_throughput.json")
    args = parser.parse_args()
    from compress_gate.engines import machine_description

    with tempfile.TemporaryDirectory(prefix="cg-shards-") as tmp:
        write_shards(Path(tmp), args.rows * args.shards, args.attributes, args.shards)
        figures = measure(Path(tmp), args.resamples, args.repeats)
    result = {"benchmark": "shard_throughput",
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine_description(num_threads=1), "rows": args.rows, "shards": args.shards,
              "attributes": args.attributes, "resamples": args.resamples, "limits": "required", **figures,
              "load_average_1m": os.getloadavg()[0],
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
