"""The run's headline numbers (for the manifest and the terminal), read from report.json.

``worst BA increase`` is the largest BA_student − BA_teacher over the (attribute,
identity) pairs where both are defined (:func:`compress_gate.report.largest_ba_increase`);
``None`` when no pair is. ``speedup`` is the
benchmark's paired median ratio teacher time / student time on the same engine at
the largest batch size measured (> 1: the student is faster).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compress_gate._format import fmt
from compress_gate.report.schema import Report, RunSummary, as_report
from compress_gate.report import largest_ba_increase

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["metrics_summary", "summary_table"]


def _speedups(benchmarks: dict[str, Any] | None) -> dict[str, float]:
    if not benchmarks:
        return {}
    rows = [s for s in benchmarks.get("speedups", []) if s.get("model") == "student"]
    out: dict[str, float] = {}
    for kind in sorted({s["engine"] for s in rows}):
        largest = max((s for s in rows if s["engine"] == kind), key=lambda s: s["batch_size"])
        out[f"{kind}@{largest['batch_size']}"] = float(largest["ratio"])
    return out


def metrics_summary(report: Report | Mapping[str, Any], *, compression: dict[str, Any]) -> RunSummary:
    """The headline numbers of a run: accuracies, sparsity, CEV, SDE, BA, speedups, limits."""
    report = as_report(report)
    metrics = report.metrics
    after = report.mitigation.after if report.mitigation else None
    worst, worst_after = largest_ba_increase(metrics.ba), largest_ba_increase(after.ba if after else None)
    failed = [entry.name for entry in report.limits if entry.outcome == "fail"]
    return RunSummary(
        verdict=report.verdict,
        outcome=report.outcome,
        teacher_accuracy=metrics.teacher.accuracy,
        student_accuracy=metrics.student.accuracy,
        student_accuracy_mitigated=None if after is None else after.accuracy,
        overall_sparsity=compression.get("overall_sparsity"),
        quantized=compression.get("quantized"),
        distilled=compression.get("distilled"),
        cev=metrics.cev.value,
        sde=metrics.sde.value,
        cev_mitigated=None if after is None else after.cev.value,
        sde_mitigated=None if after is None else after.sde.value,
        worst_ba_increase=None if worst is None else worst[1],
        worst_ba_increase_mitigated=None if worst_after is None else worst_after[1],
        speedup=_speedups(report.benchmarks),
        limits_passed=sum(entry.passed for entry in report.limits),
        limits_total=len(report.limits),
        limits_failed=failed,
        limits_undecided=[entry.name for entry in report.limits if entry.outcome == "not_enough_evidence"],
        scope=report.scope,
    )


def summary_table(summary: RunSummary, stage_seconds: dict[str, float], *, bundle: str) -> Table:
    """A two-column rich table: the verdict, the headline numbers, stage wall times, the bundle path."""
    from rich import box
    from rich.table import Table

    verdict = {"pass": "[bold green]RELEASED[/]", "fail": "[bold red]REFUSED[/]",
               "not_enough_evidence": "[bold yellow]REFUSED (not enough evidence)[/]"}[summary.outcome]
    table = Table(box=box.SIMPLE_HEAD, show_header=False, title=f"compress-gate run: {verdict}",
                  title_justify="left", pad_edge=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    mitigated = summary.student_accuracy_mitigated is not None

    def pair(before: object, after: object, decimals: int) -> str:
        """``before`` (and ``→ after`` when mitigation was applied), fixed decimals."""
        return fmt(before, decimals=decimals) + (f" → {fmt(after, decimals=decimals)}" if mitigated else "")
    limits = f"{summary.limits_passed} of {summary.limits_total} hold"
    if summary.limits_failed:
        limits += f"; failed: {', '.join(summary.limits_failed)}"
    if summary.limits_undecided:
        limits += f"; not enough evidence: {', '.join(summary.limits_undecided)}"
    rows = [
        ("limits", limits),
        ("judged", summary.scope),
        ("accuracy", f"teacher {fmt(summary.teacher_accuracy, decimals=4)} · student "
                     f"{fmt(summary.student_accuracy, decimals=4)}"
                     + (f" · after mitigation {fmt(summary.student_accuracy_mitigated, decimals=4)}"
                        if mitigated else "")),
        ("sparsity", f"{fmt(summary.overall_sparsity, percent=True, decimals=1)} of the pruned weights"
                     + (" · INT8 (QAT)" if summary.quantized else "")
                     + (" · distilled" if summary.distilled else "")),
        ("CEV", pair(summary.cev, summary.cev_mitigated, 3)),
        ("SDE", pair(summary.sde, summary.sde_mitigated, 3)),
        ("worst BA increase", pair(summary.worst_ba_increase, summary.worst_ba_increase_mitigated, 4)),
        ("speedup", " · ".join(f"{k} {v:.2f}x" for k, v in summary.speedup.items()) or "not measured"),
        ("stage times", " · ".join(f"{k} {v:.1f}s" for k, v in stage_seconds.items())
         + f" · total {sum(stage_seconds.values()):.1f}s"),
        ("bundle", bundle),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table
