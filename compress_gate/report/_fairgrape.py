"""FairGRAPE's tables (Lin et al., ECCV 2022, Table 1 layout) from report.json's ``fairgrape`` section.

One row per model (teacher, student) and one column per joint group (``all`` first), then the
spread over the joint groups, as FairGRAPE prints them; the HTML report and the model card
render the same rows. Cells are ``value [lo, hi]`` where the section has an interval.
"""

from __future__ import annotations

from typing import Any

from compress_gate._format import is_number
from compress_gate.report.schema import Estimate, FairGRAPESection
from compress_gate.report._format import fmt

__all__ = ["fairgrape_tables", "fairgrape_headline"]

_RATES = (("accuracy", "Accuracy"), ("fpr", "FPR (pooled over attributes)"), ("fnr", "FNR (pooled over attributes)"))


def _estimate(e: Estimate, *, percent: bool = False) -> str:
    text = fmt(e.value, percent=percent, reason="undefined for this group")
    if e.ci is None:
        return text
    lo, hi = (fmt(v, percent=percent, reason="not computed") for v in e.ci)
    return f"{text} [{lo}, {hi}]"


def _percent(value: Any) -> str:
    return f"{fmt(value)}%" if is_number(value) else fmt(value, reason="teacher AP undefined or 0")


def fairgrape_tables(section: FairGRAPESection) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(caption, headers, rows) of FairGRAPE's tables: accuracy (with Std(ΔAcc)), FPR, FNR, AP
    per group (with mean AP, Std(AP), Std(ΔAP) and the student's AP as % of the teacher's), PIE."""
    groups = [row.name for row in section.rows]
    student = f"student ({section.population})"
    out = []
    for key, label in _RATES:
        headers = ["model", *groups] + (["Std(ΔAcc)"] if key == "accuracy" else [])
        rows = [["teacher", *(_estimate(getattr(r, key).teacher) for r in section.rows)],
                [student, *(_estimate(getattr(r, key).student) for r in section.rows)]]
        if key == "accuracy":
            rows[0].append("")
            rows[1].append(_estimate(section.acc_change_std))
        out.append((f"FairGRAPE Table 1: {label} per joint group", headers, rows))
    ap_note = (f" (not computed: {section.ap_undefined_reason})" if section.ap_undefined_reason
               else "" if section.ap_intervals else " (no AP intervals: no limit gated AP)")
    out.append((f"Average precision per joint group{ap_note}", ["model", *groups, "mean AP", "Std(AP)", "Std(ΔAP)"],
                [["teacher", *(_estimate(r.ap.teacher) for r in section.rows), _estimate(section.ap_mean.teacher),
                  _estimate(section.ap_std.teacher), ""],
                 [student, *(_estimate(r.ap.student) for r in section.rows), _estimate(section.ap_mean.student),
                  _estimate(section.ap_std.student), _estimate(section.ap_change_std)],
                 ["student AP, % of teacher", *(_percent(r.ap_percent_of_teacher) for r in section.rows),
                  "", "", ""]]))
    out.append(("PIE share per joint group (teacher right, student wrong)", ["model", *groups, "gap (max − min)"],
                [[student, *(_estimate(r.pie_share, percent=True) for r in section.rows),
                  _estimate(section.pie_gap, percent=True)]]))
    return out


def fairgrape_headline(section: FairGRAPESection) -> str:
    """One sentence of FairGRAPE's headline numbers: Std(ΔAcc), mean AP and Std(AP), Std(ΔAP), PIE gap."""
    return (f"Over the joint groups of {', '.join(section.group_columns)}: Std(ΔAcc) "
            f"{_estimate(section.acc_change_std)}; mean AP teacher {_estimate(section.ap_mean.teacher)}, "
            f"student {_estimate(section.ap_mean.student)}; Std(AP) teacher {_estimate(section.ap_std.teacher)}, "
            f"student {_estimate(section.ap_std.student)}; Std(ΔAP) {_estimate(section.ap_change_std)}; "
            f"PIE gap {_estimate(section.pie_gap, percent=True)}.")
