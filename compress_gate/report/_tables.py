"""Rows of the report's tables, built from the typed report (plain text; escaped later)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compress_gate.config.gate import GATED_METRICS
from compress_gate.report.schema import PER_ATTRIBUTE, BAComparison, Report, Uncovered, ValueOrUndefined
from compress_gate.report._format import fmt
from compress_gate.report.markup import Cell, table
from compress_gate._format import is_number, undefined_reason

__all__ = ["delta_rows", "ba_rows", "subgroup_rows", "per_attribute_rows", "per_attribute_headers", "benchmark_table",
           "bias_cost_items", "largest_ba_increase", "uncovered_text"]


def _cell(value: Any, *, reason: str = "not computed", **kwargs: Any) -> Cell:
    """A formatted value; undefined values get the ``undefined`` CSS class."""
    defined = is_number(value)
    return Cell(fmt(value, reason=reason, **kwargs), "" if defined else "undefined",
                note=None if defined else undefined_reason(value, reason))


def _delta_reason(report: Report, attr: str, rate: str) -> str:
    teacher = report.metrics.teacher.per_attribute.get(attr)
    teacher_rate = None if teacher is None else getattr(teacher, rate)
    if teacher_rate == 0:
        return f"teacher {rate.upper()} is 0"
    if not is_number(teacher_rate):
        return f"teacher {rate.upper()} undefined"
    return "not computed"


def delta_rows(report: Report) -> list[list[Any]]:
    """attribute, teacher FPR, teacher FNR, δFPR, δFNR (and the mitigated δs when present)."""
    delta = report.metrics.delta
    after = report.mitigation.after.delta if report.mitigation else None
    rows = []
    for attr in report.inputs.attribute_names:
        teacher = report.metrics.teacher.per_attribute.get(attr)
        row = [attr, _cell(teacher and teacher.fpr), _cell(teacher and teacher.fnr)]
        for source in [delta] + ([after] if after else []):
            for rate in ("fpr", "fnr"):
                row.append(_cell(getattr(source, rate).get(attr), reason=_delta_reason(report, attr, rate),
                                 signed=True))
        rows.append(row)
    return rows


def ba_rows(report: Report) -> list[list[Any]]:
    """attribute, identity, teacher BA, student BA, increase (and mitigated BA and increase)."""
    ba = report.metrics.ba
    after = report.mitigation.after.ba if report.mitigation else None
    rows = []
    for attr, row in ba.teacher.items():
        for group, teacher in row.items():
            cells = [attr, group, _cell(teacher), _cell(ba_value(ba.student, attr, group)),
                     _cell(ba_value(ba.increase, attr, group), signed=True)]
            if after:
                cells += [_cell(ba_value(after.student, attr, group)),
                          _cell(ba_value(after.increase, attr, group), signed=True)]
            rows.append(cells)
    return rows


def ba_value(table: Mapping[str, Mapping[str, ValueOrUndefined]], attr: str,
             group: str) -> ValueOrUndefined | None:
    """``table[attr][group]``, or None where the pair is missing."""
    return table.get(attr, {}).get(group)


def subgroup_rows(report: Report) -> list[list[Any]]:
    """group, size, then per rate: teacher, student, normalized difference (Hooker et al., Table 3)."""
    rows = []
    for entry in report.metrics.subgroups:
        row: list[Any] = [entry.name, _cell(entry.size, reason="unknown")]
        for rate in ("error", "fpr", "fnr"):
            why = "no negatives" if rate == "fpr" else "no positives" if rate == "fnr" else "empty group"
            row += [_cell(getattr(entry.teacher, rate), reason=why),
                    _cell(getattr(entry.student, rate), reason=why),
                    _cell(getattr(entry.normalized_difference, rate),
                          reason="teacher rate is 0 or undefined", signed=True)]
        rows.append(row)
    return rows


def per_attribute_headers(*, teacher: str = "teacher", student: str = "student") -> list[str]:
    """Headers of :func:`per_attribute_rows`: attribute, then teacher and student per metric."""
    labels = [GATED_METRICS[m].label for m in PER_ATTRIBUTE] + ["R²"]
    return ["attribute"] + [f"{who} {label}" for label in labels for who in (teacher, student)]


def per_attribute_rows(report: Report) -> list[list[Any]]:
    """attribute, then teacher and student for each per-attribute metric of the registry, then R²."""
    rows = []
    models = (report.metrics.teacher.per_attribute, report.metrics.student.per_attribute)
    for attr in report.inputs.attribute_names:
        row: list[Any] = [attr]
        for metric in (*PER_ATTRIBUTE, "r2"):
            for per_attribute in models:
                row.append(_cell(getattr(per_attribute[attr], metric) if attr in per_attribute else None))
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
    reference = (benchmarks.get("settings") or {}).get("reference")
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


def largest_ba_increase(comparison: BAComparison | None) -> tuple[str, float] | None:
    """``("attribute / identity", value)`` of the largest defined BA increase, or ``None``.

    The one place the worst BA increase is found: the HTML report, the model card and the
    run summary all call it.
    """
    return largest_increase(comparison.increase if comparison else {})


def largest_increase(increase: Mapping[str, Mapping[str, Any]]) -> tuple[str, float] | None:
    """``("attribute / identity", value)`` of the largest number in ``{attribute: {identity: value}}``.

    Entries that are not finite numbers (an undefined pair, ``"inf"`` as report.json writes
    it) are skipped; ``None`` when nothing is left.
    """
    best = None
    for attr, row in increase.items():
        for group, value in row.items():
            if is_number(value) and (best is None or value > best[1]):
                best = (f"{attr} / {group}", float(value))
    return best


def uncovered_text(uncovered: Uncovered) -> str:
    """What holds on the test rows without an override (where the overrides do not apply)."""
    worst = largest_ba_increase(uncovered.ba)
    return (f"On the {fmt(uncovered.n_rows)} test rows without an override: accuracy {fmt(uncovered.accuracy)} "
            f"(teacher {fmt(uncovered.teacher_accuracy)}), largest BA increase "
            + (f"{fmt(worst[1], signed=True)} ({worst[0]})" if worst else "undefined (no pair with a defined BA)")
            + ".")


def bias_cost_items(report: Report) -> list[tuple[str, str]]:
    """Term/description pairs: what compression cost in accuracy and bias, before and after mitigation."""
    t_acc, s_acc = report.metrics.teacher.accuracy, report.metrics.student.accuracy
    items = [("accuracy, teacher → student", f"{fmt(t_acc)} → {fmt(s_acc)}"
              + (f" ({fmt(s_acc - t_acc, signed=True)})" if is_number(t_acc) and is_number(s_acc) else ""))]
    after = report.mitigation.after if report.mitigation else None
    if after is not None:
        items.append(("accuracy after mitigation", fmt(after.accuracy)))
    for balance, label in ((report.metrics.cev, "CEV"), (report.metrics.sde, "SDE")):
        items.append((label, fmt(balance.value, reason="nothing left to measure")))
    worst = largest_ba_increase(report.metrics.ba)
    items.append(("largest BA increase", f"{fmt(worst[1], signed=True)} ({worst[0]})" if worst
                  else "undefined (no pair with a defined BA)"))
    worst_after = largest_ba_increase(after.ba if after else None)
    if worst_after:
        items.append(("largest BA increase after mitigation",
                      f"{fmt(worst_after[1], signed=True)} ({worst_after[0]})"))
    if report.mitigation and report.mitigation.uncovered is not None:
        items.append(("rows without an override", uncovered_text(report.mitigation.uncovered)))
    limits = report.limits
    items.append(("limits exceeded", f"{sum(lim.outcome == 'fail' for lim in limits)} of {len(limits)}"))
    undecided = sum(lim.outcome == "not_enough_evidence" for lim in limits)
    if undecided:
        items.append(("limits without enough evidence", f"{undecided} of {len(limits)}"))
    return items
