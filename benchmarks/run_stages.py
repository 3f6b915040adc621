"""Wall time of each stage of the demo run: ``python benchmarks/run_stages.py``.

Runs ``recipes/demo.yaml`` (or ``--recipe``) end to end into a temporary run directory
with an empty teacher cache (so the teacher is trained, as on a fresh machine; pass
``--warm-cache`` to use ``<output>/../.cache`` as the recipe says), prints one row per
stage, and writes ``benchmarks/results/run_stages.json`` with the machine description.

Stage times come from the run's own record: ``report.json``'s ``run.stage_seconds``
(config → gate) and ``run.json`` (which adds ``report`` and ``bundle``). Each is the wall
time of that stage in one run; shares are of the run's total.
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


def _timed_recipe(recipe: Path, run_dir: Path, cache_dir: Path | None) -> Path:
    """A copy of ``recipe`` beside it, writing to ``run_dir`` (and caching in ``cache_dir``)."""
    raw = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    raw["output"] = str(run_dir)
    if cache_dir is not None:
        raw.setdefault("model", {})["cache_dir"] = str(cache_dir)
    fd, name = tempfile.mkstemp(prefix=".run_stages.", suffix=".yaml", dir=recipe.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(raw, handle, sort_keys=False)
    return Path(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "demo.yaml")
    parser.add_argument("--warm-cache", action="store_true", help="reuse the recipe's teacher cache")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from compress_gate.engines import machine_description
    from compress_gate.pipeline import run_recipe

    console = Console()
    with tempfile.TemporaryDirectory(prefix="run_stages-") as work:
        recipe = _timed_recipe(args.recipe.resolve(), Path(work) / "run",
                               None if args.warm_cache else Path(work) / "cache")
        try:
            outcome = run_recipe(recipe, console=console)
        finally:
            recipe.unlink(missing_ok=True)
        record = json.loads((outcome.run_dir / "run.json").read_text())
    reported = outcome.report["run"]["stage_seconds"]
    stages = {**reported, **record["stage_seconds"]}
    total = sum(stages.values())
    table = Table(title=f"compress-gate run {args.recipe.name}: wall time per stage "
                        f"({'warm' if args.warm_cache else 'cold'} teacher cache)", title_justify="left")
    for header in ("stage", "seconds", "share"):
        table.add_column(header, justify="left" if header == "stage" else "right")
    for stage, seconds in stages.items():
        table.add_row(stage, f"{seconds:.1f}", f"{seconds / total:.0%}")
    table.add_row("total", f"{total:.1f}", "100%", style="bold")
    console.print(table)
    result = {
        "schema_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": str(args.recipe), "teacher_cache": "warm" if args.warm_cache else "cold",
        "verdict": outcome.report["verdict"], "stage_seconds": stages, "total_seconds": round(total, 3),
        "summary": outcome.summary, "machine": machine_description(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
