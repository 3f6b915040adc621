"""Wall time of each stage of the demo run: ``python benchmarks/run_stages.py``.

Runs ``recipes/demo.yaml`` (or ``--recipe``) end to end into a temporary run directory
with an empty teacher cache (so the teacher is trained, as on a fresh machine; pass
``--warm-cache`` to use ``<output>/../.cache`` as the recipe says), prints one row per
stage, and writes ``benchmarks/results/run_stages.json`` with the machine description.

Stage times come from the run's own record: ``report.json``'s ``run.stage_seconds``
(config → gate) and ``run.json`` (which adds ``report`` and ``bundle``). Each is the wall
time of that stage in one run; shares are of the run's total. The CPU seconds of the run's
own process (all threads; DeepSparse's worker processes excluded) and the machine's 1-minute
load average before and after are recorded too: wall times far above CPU/threads mean the
machine was busy with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "run_stages.json"


_PATH_KEYS = (("model", "checkpoint"), ("model", "cache_dir"), ("compression", "recipe_path"),
              ("data", "root"), ("data", "path"))


def _timed_recipe(recipe: Path, work: Path, cache_dir: Path) -> Path:
    """A copy of ``recipe`` in ``work`` that writes its run to ``work/run`` (paths made absolute)."""
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    for section, key in _PATH_KEYS:
        value = (raw.get(section) or {}).get(key)
        if isinstance(value, str):
            raw[section][key] = str((recipe.parent / value).resolve())
    raw["output"] = str(work / "run")
    raw.setdefault("model", {})["cache_dir"] = str(cache_dir)
    copy = work / recipe.name
    copy.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return copy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "demo.yaml")
    parser.add_argument("--warm-cache", action="store_true", help="reuse the recipe's teacher cache")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from compress_gate.config.run import load_run_config
    from compress_gate.engines import machine_description
    from compress_gate.pipeline import run_recipe

    console = Console()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="run_stages-") as work:
        source = args.recipe.resolve()
        cache = load_run_config(source).cache_dir if args.warm_cache else Path(work) / "cache"
        recipe = _timed_recipe(source, Path(work), cache)
        outcome = run_recipe(recipe, console=console)
        record = json.loads((outcome.run_dir / "run.json").read_text())
    load_after = os.getloadavg()[0]
    reported = outcome.report.run.stage_seconds
    stages = {**reported, **record["stage_seconds"]}
    cpu = record["stage_cpu_seconds"]
    total = sum(stages.values())
    table = Table(title=f"compress-gate run {args.recipe.name}: wall time per stage "
                        f"({'warm' if args.warm_cache else 'cold'} teacher cache)", title_justify="left")
    for header in ("stage", "wall s", "share", "cpu s"):
        table.add_column(header, justify="left" if header == "stage" else "right")
    for stage, seconds in stages.items():
        table.add_row(stage, f"{seconds:.1f}", f"{seconds / total:.0%}", f"{cpu.get(stage, 0.0):.1f}")
    table.add_row("total", f"{total:.1f}", "100%", f"{sum(cpu.values()):.1f}", style="bold")
    table.caption = f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after the run"
    console.print(table)
    result = {
        "schema_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": str(args.recipe), "teacher_cache": "warm" if args.warm_cache else "cold",
        "verdict": outcome.report.verdict, "stage_seconds": stages, "total_seconds": round(total, 3),
        "stage_cpu_seconds": cpu, "load_average_1min": {"before": load_before, "after": load_after},
        "summary": outcome.summary, "machine": machine_description(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
