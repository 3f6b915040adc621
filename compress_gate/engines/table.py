"""A rich table of :func:`benchmark_models` results, and what in them counts as a failure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["benchmark_table", "benchmark_failures"]


def benchmark_table(result: dict[str, Any]) -> Table:
    """One row per measured or failed (model, engine, batch size), with a note per skipped engine.

    Columns: latency percentiles, items/s, the paired speedup over the reference,
    status; failure reasons and skip reasons are numbered notes under the table.
    """
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    machine = result["machine"]
    flags = ", ".join(name.upper() for name, present in machine["flags"].items() if present) or "none"
    table = Table(title=f"{machine['cpu_model']} · {machine['threads_used']} threads · {flags}",
                  box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left", caption_justify="left")
    for header in ("model", "engine", "batch", "p50", "p90", "p99", "items/s", "speedup", "status"):
        justify = "left" if header in ("model", "engine", "status") else "right"
        table.add_column(header, justify=justify, no_wrap=header != "status", overflow="fold", min_width=len(header))
    speedups = {(s["model"], s["engine"], s["batch_size"]): s for s in result["speedups"]}
    notes = [f"p50/p90/p99: latency in ms; speedup: median of paired ratios vs {result['settings']['reference']} "
             "(same engine and batch, interleaved rounds)"]
    notes += [f"{kind}: skipped, {reason}" for kind, reason in result["engines"].items() if reason]
    for row in result["results"]:
        if row["status"] == "skipped" and result["engines"].get(row["engine"]):
            continue
        latency = row["latency_ms"] or {}
        speedup = speedups.get((row["model"], row["engine"], row["batch_size"]))
        status = row["status"]
        if row["reason"]:
            notes.append(f"[{len(notes)}] {row['reason']}")
            status += f" [{len(notes) - 1}]"
        table.add_row(
            row["model"], row["engine"], str(row["batch_size"]),
            *(_number(latency.get(key), digits=1) for key in ("p50_ms", "p90_ms", "p99_ms")),
            _number(row["items_per_s"], digits=1),
            f"{speedup['ratio']:.2f}x" if speedup else "",
            status,
        )
    table.caption = escape("\n".join(notes))  # reasons may hold brackets, e.g. "compress-gate[openvino]"
    return table


def benchmark_failures(result: dict[str, Any], requested: Sequence[str] | None = None) -> list[str]:
    """Messages for rows that failed, and for explicitly requested engines that were skipped.

    An engine skipped only because it was in the default list (a GPU kind on a
    CPU machine) is not a failure.
    """
    problems = [f"{row['model']} on {row['engine']} at batch {row['batch_size']}: {row['reason']}"
                for row in result["results"] if row["status"] == "failed"]
    for kind in requested or ():
        reason = result["engines"].get(kind)
        if reason:
            problems.append(f"{kind} was requested but is not available: {reason}")
    return problems


def _number(value: float | None, *, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"
