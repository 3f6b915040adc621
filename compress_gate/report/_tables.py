"""Rows of the report's tables, built from a report.json dict (plain text; escaped later)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compress_gate.report._format import fmt, get
from compress_gate.report._markup import Cell, table
from compress_gate.report.figures import is_number

__all__ = ["delta_rows", "ba_rows", "subgroup_rows", "per_attribute_rows", "benchmark_table",
           "bias_cost_items", "largest_ba_increase"]


def _cell(value: Any, *, reason: str = "not computed", **kwargs: Any) -> Cell:
    """A formatted value; undefined values get the ``undefined`` CSS class."""
    return Cell(fmt(value, reason=reason, **kwargs), "" if is_number(value) else "undefined")


def _delta_reason(report: Mapping[str, Any], attr: str, rate: str) -> str:
    teacher_rate = get(report, "metrics", "teacher", "per_attribute", attr, rate)
    if teacher_rate == 0:
        return f"teacher {rate.upper()} is 0"
    if not is_number(teacher_rate):
        return f"teacher {rate.upper()} undefined"
    return "not computed"


def delta_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """attribute, teacher FPR, teacher FNR, δFPR, δFNR (and the mitigated δs when present)."""
    delta = get(report, "metrics", "delta") or {}
    after = get(report, "mitigation", "after", "delta")
    names = list(get(report, "inputs", "attribute_names") or delta.get("fpr") or [])
    rows = []
    for attr in names:
        teacher = get(report, "metrics", "teacher", "per_attribute", attr) or {}
        row = [attr, _cell(teacher.get("fpr")), _cell(teacher.get("fnr"))]
        sources = [delta] + ([after] if after else [])
        for source in sources:
            for rate in ("fpr", "fnr"):
                row.append(_cell(get(source, rate, attr), reason=_delta_reason(report, attr, rate),
                                 signed=True))
        rows.append(row)
    return rows


def ba_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """attribute, identity, teacher BA, student BA, increase (and mitigated BA and increase)."""
    ba = get(report, "metrics", "ba") or {}
    after = get(report, "mitigation", "after", "ba")
    rows = []
    for attr, row in (ba.get("teacher") or {}).items():
        for group, teacher in row.items():
            cells = [attr, group, _cell(teacher), _cell(get(ba, "student", attr, group)),
                     _cell(get(ba, "increase", attr, group), signed=True)]
            if after:
                cells += [_cell(get(after, "student", attr, group)),
                          _cell(get(after, "increase", attr, group), signed=True)]
            rows.append(cells)
    return rows


def subgroup_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """group, size, then per rate: teacher, student, normalized difference (Hooker et al., Table 3)."""
    rows = []
    for entry in get(report, "metrics", "subgroups") or []:
        row: list[Any] = [entry.get("name", "?"), _cell(entry.get("size"), reason="unknown")]
        for rate in ("error", "fpr", "fnr"):
            why = "no negatives" if rate == "fpr" else "no positives" if rate == "fnr" else "empty group"
            row += [_cell(get(entry, "teacher", rate), reason=why),
                    _cell(get(entry, "student", rate), reason=why),
                    _cell(get(entry, "normalized_difference", rate),
                          reason="teacher rate is 0 or undefined", signed=True)]
        rows.append(row)
    return rows


def per_attribute_rows(report: Mapping[str, Any]) -> list[list[Any]]:
    """attribute, then teacher and student for FPR, FNR, TCB, uncertainty, ECE, R²."""
    names = list(get(report, "inputs", "attribute_names")
                 or get(report, "metrics", "teacher", "per_attribute") or [])
    rows = []
    for attr in names:
        row: list[Any] = [attr]
        for metric in ("fpr", "fnr", "tcb", "uncertainty", "ece", "r2"):
            for who in ("teacher", "student"):
                row.append(_cell(get(report, "metrics", who, "per_attribute", attr, metric)))
        rows.append(row)
    return rows


def _speedup_text(speedups: list[Any], row: Mapping[str, Any], reference: Any) -> str:
    for sp in speedups:
        if isinstance(sp, Mapping) and all(sp.get(k) == row.get(k) for k in ("model", "engine", "batch_size")):
            return (f"{fmt(sp.get('ratio'), digits=3)}× [{fmt(sp.get('q25'), digits=3)}, "
                    f"{fmt(sp.get('q75'), digits=3)}] vs {sp.get('reference', '?')}")
    return "reference" if row.get("model") == reference else "—"


def benchmark_table(benchmarks: Any) -> str:
    """The benchmark (``compress_gate.engines.benchmark_models`` output) as a table; '' when none.

    One row per (model, engine, batch size): status, p50/p90 latency, items/s and the
    paired speedup over the reference model (median ratio [q25, q75]); skipped and
    failed rows show their reason.
    """
    if not isinstance(benchmarks, Mapping) or not benchmarks.get("results"):
        return ""
    reference = get(benchmarks, "settings", "reference")
    speedups = list(benchmarks.get("speedups") or [])
    rows = []
    for row in benchmarks["results"]:
        ok = row.get("status") == "ok"
        latency = row.get("latency_ms") or {}
        speed = _speedup_text(speedups, row, reference) if ok else "—"
        rows.append([row.get("model", "?"), row.get("engine", "?"), fmt(row.get("batch_size")),
                     Cell(str(row.get("status", "?")), "" if ok else "undefined"),
                     fmt(latency.get("p50_ms"), reason="not measured") if ok else "—",
                     fmt(latency.get("p90_ms"), reason="not measured") if ok else "—",
                     fmt(row.get("items_per_s"), reason="not measured") if ok else "—",
                     speed, row.get("reason") or ""])
    machine = benchmarks.get("machine") or {}
    flags = ", ".join(k for k, v in (machine.get("flags") or {}).items() if v) or "none"
    caption = (f"Measured in one run on {machine.get('cpu_model', 'an unknown CPU')}, "
               f"{machine.get('threads_used', '?')} thread(s), CPU flags: {flags}")
    return table(["model", "engine", "batch", "status", "p50 ms", "p90 ms", "items/s", "speedup",
                  "reason"], rows, caption=caption)


def largest_ba_increase(increase: Mapping[str, Mapping[str, Any]] | None) -> tuple[str, float] | None:
    """``("attribute / identity", value)`` of the largest defined BA increase, or ``None``."""
    best = None
    for attr, row in (increase or {}).items():
        for group, value in row.items():
            if is_number(value) and (best is None or value > best[1]):
                best = (f"{attr} / {group}", float(value))
    return best


def bias_cost_items(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Term/description pairs: what compression cost in accuracy and bias, before and after mitigation."""
    t_acc = get(report, "metrics", "teacher", "accuracy")
    s_acc = get(report, "metrics", "student", "accuracy")
    items = [("accuracy, teacher → student", f"{fmt(t_acc)} → {fmt(s_acc)}"
              + (f" ({fmt(s_acc - t_acc, signed=True)})" if is_number(t_acc) and is_number(s_acc) else ""))]
    after_acc = get(report, "mitigation", "after", "accuracy")
    if after_acc is not None:
        items.append(("accuracy after mitigation", fmt(after_acc)))
    for key, label in (("cev", "CEV"), ("sde", "SDE")):
        items.append((label, fmt(get(report, "metrics", key, "value"), reason="nothing left to measure")))
    worst = largest_ba_increase(get(report, "metrics", "ba", "increase"))
    items.append(("largest BA increase", f"{fmt(worst[1], signed=True)} ({worst[0]})" if worst
                  else "undefined (no pair with a defined BA)"))
    worst_after = largest_ba_increase(get(report, "mitigation", "after", "ba", "increase"))
    if worst_after:
        items.append(("largest BA increase after mitigation",
                      f"{fmt(worst_after[1], signed=True)} ({worst_after[0]})"))
    limits = report.get("limits") or []
    items.append(("limits exceeded", f"{sum(not lim.get('passed') for lim in limits)} of {len(limits)}"))
    return items
