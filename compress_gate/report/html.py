"""``report.html``: one self-contained page that shows why the gate decided.

The page works from the typed report (:class:`~compress_gate.report.schema.Report`) and needs nothing
else: figures are PNG data URIs, the CSS is inline, there is no script and no network
reference, so it opens from a CI artefact or an e-mail attachment. The verdict comes
first, with each limit as observed vs limit and its confidence interval; then the
papers' pictures and tables (see ``docs/reports.md`` for how to read each one).
Every piece of text from the report is HTML-escaped. Each limit is one compact row (outcome,
observed value, interval, limit, n) with the metric, judged bound and reason in a closed
``<details>``; an undefined table value reads ``n/a`` with a footnote number, and the page
ends with one footnote per distinct reason. A run's report also shows the representation
similarity of the student to the teacher (the report's ``run.similarity``), before the notes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_text
from compress_gate.report import figures
from compress_gate.report.schema import LimitResult, Report, as_report
from compress_gate.report._fairgrape import fairgrape_headline, fairgrape_tables
from compress_gate.report._format import OUTCOME_TEXT, UNIT_HEADERS, fmt, fmt_ci, fmt_limit, judged_value, unit_rows
from compress_gate.report.markup import (Cell, Footnotes, definition_list, details, esc, figure, paragraph, section,
                                         table)
from compress_gate.report._tables import (ba_rows, benchmark_table, bias_cost_items, delta_rows,
                                          per_attribute_headers, per_attribute_rows, subgroup_rows,
                                          uncovered_text)
from compress_gate.report.similarity import similarity_section

__all__ = ["render_html", "build_html"]

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;
 padding:0 1rem;color:#1f2328;line-height:1.45}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.2rem}
.meta{color:#57606a;font-size:.9rem}
.verdict{padding:1rem 1.2rem;border-radius:6px;font-size:1.3rem;font-weight:600;margin:1rem 0}
.verdict.pass{background:#dafbe1;border:1px solid #1a7f37;color:#116329}
.verdict.fail{background:#ffebe9;border:1px solid #cf222e;color:#a40e26}
.verdict.undecided{background:#fff8c5;border:1px solid #9a6700;color:#7d4e00}
table{border-collapse:collapse;margin:.8rem 0;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}
td.pass{color:#116329;font-weight:600}td.fail{color:#a40e26;font-weight:600}
td.not_enough_evidence{color:#9a6700;font-weight:600}
td.undefined{color:#57606a;font-style:italic}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{font-size:.85rem;color:#57606a}
.note{color:#57606a;font-style:italic}
.side-by-side{display:flex;flex-wrap:wrap;gap:2rem;align-items:flex-start}
dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;font-size:.9rem}dt{font-weight:600}
dd{margin:0}
details summary{cursor:pointer;color:#0969da}details p{margin:.3rem 0;max-width:40rem}
ol.footnotes{font-size:.85rem;color:#57606a}td sup a{text-decoration:none}
"""


def render_html(report: Report | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the self-contained HTML report for ``report`` to ``path`` (atomically).

    A mapping (a loaded report.json) is validated into a :class:`Report` first.
    """
    return write_text(path, build_html(report))


def build_html(report: Report | Mapping[str, Any]) -> str:
    """The HTML page for ``report`` as a string (see :func:`render_html`)."""
    report = as_report(report)
    notes = Footnotes()
    body = [_header(report), _verdict(report, notes), _error_balance(report, notes),
            _bias_amplification(report, notes), _uncertainty(report), _subgroups(report, notes),
            _fairgrape(report, notes), _speed_vs_bias(report), _per_attribute(report, notes),
            _mitigation(report), _engines(report), _provenance(report)]
    if report.run is not None and report.run.similarity is not None:
        body.append(similarity_section(report.run.similarity, notes))
    body.append(_undefined_notes(notes))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            f"<title>compress-gate report: {esc(report.verdict.upper())}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def _header(report: Report) -> str:
    inputs = report.inputs
    meta = (f"created {report.created} · task {inputs.task} · "
            f"{fmt(inputs.n_test)} test samples · {fmt(inputs.n_calib)} calibration samples · "
            f"{inputs.n_students} student model(s)")
    return "<header><h1>compress-gate report</h1>" + paragraph(meta, css="meta") + "</header>"


def _headline(report: Report) -> tuple[str, str]:
    """The verdict banner's text and CSS class."""
    limits = report.limits
    failed = sum(lim.outcome == "fail" for lim in limits)
    undecided = sum(lim.outcome == "not_enough_evidence" for lim in limits)
    if report.outcome == "pass":
        return f"PASS: release allowed ({len(limits)} limit(s) checked, all within bounds)", "pass"
    if report.outcome == "fail":
        extra = f"; {undecided} without enough evidence" if undecided else ""
        return f"FAIL: release refused ({failed} of {len(limits)} limit(s) exceeded{extra})", "fail"
    return (f"NOT ENOUGH EVIDENCE: release refused ({undecided} of {len(limits)} limit(s) undecided, "
            "none exceeded)", "undecided")


def _limit_row(lim: LimitResult, n_test: int) -> list[Any]:
    """One compact row: outcome, observed, interval, limit, n (test rows; + those needed when
    undecided); the metric, the judged bound and the gate's reason one click away."""
    observed = Cell(fmt(lim.observed), "undefined", note=lim.reason or "not computed") if not figures.is_number(lim.observed) \
        else fmt(lim.observed)
    n = fmt(n_test) + (f" (needs {fmt(lim.n_needed, reason='no estimate')})"
                       if lim.outcome == "not_enough_evidence" else "")
    detail = details("why", paragraph(f"{lim.metric}: {judged_value(lim)}"), paragraph(lim.reason))
    return [lim.name, Cell(OUTCOME_TEXT[lim.outcome], lim.outcome), observed, fmt_ci(lim.ci), fmt_limit(lim), n,
            detail]


def _undefined_notes(notes: Footnotes) -> str:
    if not len(notes):
        return ""
    return section("undefined", "Why values are n/a",
                   paragraph("Each n/a in the tables above links to its reason here, listed once.", css="note"),
                   notes.html())


def _verdict(report: Report, notes: Footnotes) -> str:
    limits = report.limits
    headline, css = _headline(report)
    parts = [f'<div class="verdict {css}">{esc(headline)}</div>',
             paragraph(f"Judged: {report.judged}. {report.scope}")]
    if report.no_limits or not limits:
        parts.append(paragraph("No limits were configured: the gate measured the numbers below "
                               "but had nothing to compare them with.", css="note"))
    else:
        confidence = report.config.get("confidence")
        ci_label = f"{fmt(confidence, percent=True)} CI" if figures.is_number(confidence) else "CI"
        rows = [_limit_row(lim, report.inputs.n_test) for lim in limits]
        parts.append(table(["limit", "result", "observed", ci_label, "limit", "n", "detail"], rows,
                           caption="Limits: observed vs limit", css="limits", notes=notes))
        parts.append(_estimates(report))
        undecided = [lim for lim in limits if lim.outcome == "not_enough_evidence"]
        if undecided:
            parts.append(paragraph("Not enough evidence: some unit's one-sided bound is outside the limit while no "
                                   "unit is shown outside, or a unit is too small or degenerate. Test rows that would "
                                   "decide each with power 80 %: " + "; ".join(
                                       f"{lim.name}: {fmt(lim.n_needed, reason='no estimate')}"
                                       for lim in undecided) + ".", css="note"))
        for lim in limits:
            if lim.units:
                parts.append(table(UNIT_HEADERS, unit_rows(lim), caption=f"Units of {lim.name}: n and bounds"))
    return section("verdict", "Verdict", *parts)


def _estimates(report: Report) -> str:
    """Which numbers have intervals, which are point values only and which were not computed."""
    est = report.estimates
    text = ("Intervals only for what a limit gates: " + (", ".join(est.intervals) or "none") + ". Point values only: "
            + (", ".join(est.point_only) or "none") + ", and every number shown without an interval.")
    by_reason: dict[str, list[str]] = {}
    for metric, why in est.not_computed.items():
        by_reason.setdefault(why, []).append(metric)
    if by_reason:
        text += " Not computed: " + "; ".join(f"{', '.join(m)} ({why})" for why, m in by_reason.items()) + "."
    return paragraph(text, css="note")


def _error_balance(report: Report, notes: Footnotes) -> str:
    delta = report.metrics.delta
    after = report.mitigation.after if report.mitigation else None
    fig = figures.error_balance_figure(delta.fpr, delta.fnr,
                                       after=(after.delta.fpr, after.delta.fnr) if after else None)
    uri = figures.figure_data_uri(fig) if fig is not None else None
    parts = [figure(uri, "Scatter of normalized FPR change vs FNR change per attribute",
                    "Each point is one attribute/class: the student's FPR and FNR change relative to the "
                    "teacher (at the origin), in percent. Dashed: balance line δFPR = δFNR. "
                    "Ellipse: 95% covariance ellipse (after Blakeney et al. 2021, Fig. 3).",
                    missing="no attribute has a defined normalized change (every teacher rate is 0)")]
    items = []
    for key, label in (("cev", "CEV"), ("sde", "SDE")):
        m = getattr(report.metrics, key)
        items.append((label, f"{fmt(m.value, reason=m.undefined or 'nothing left to measure')} "
                             f"(CI {fmt_ci(m.ci)}); excluded {len(m.excluded)}"
                             + (f": {', '.join(m.excluded)}" if m.excluded else "")))
        if after:
            after_m = getattr(after, key)
            items.append((f"{label} after mitigation",
                          f"{fmt(after_m.value, reason='nothing left to measure')} (CI {fmt_ci(after_m.ci)})"))
    parts.append(definition_list(items))
    headers = ["attribute", "teacher FPR", "teacher FNR", "δFPR %", "δFNR %"]
    if after:
        headers += ["δFPR % after mitigation", "δFNR % after mitigation"]
    parts.append(table(headers, delta_rows(report), caption="Normalized rate changes", notes=notes))
    return section("error-balance", "Error balance: FPR vs FNR change (Blakeney et al., Fig. 3)", *parts)


def _bias_amplification(report: Report, notes: Footnotes) -> str:
    ba = report.metrics.ba
    after = report.mitigation.after.ba.student if report.mitigation else None
    fig = figures.bias_amplification_figure(ba.teacher, ba.student, after)
    uri = figures.figure_data_uri(fig) if fig is not None else None
    parts = [figure(uri, "Bias amplification per attribute and identity category",
                    "BA per (attribute, identity category) for the teacher, the student and the student "
                    "after mitigation (after Iofinova et al. 2023, Fig. 1 and 6). Above 0: the model "
                    "ties the attribute to the identity more often than the labels do.",
                    missing="no (attribute, identity) pair has a defined BA")]
    headers = ["attribute", "identity", "teacher BA", "student BA", "increase"]
    if after:
        headers += ["student BA after mitigation", "increase after mitigation"]
    parts.append(table(headers, ba_rows(report), caption="Bias amplification (BA)", notes=notes))
    return section("bias-amplification", "Bias amplification (Iofinova et al., Fig. 1 and 6)", *parts)


def _uncertainty(report: Report) -> str:
    cie = report.metrics.cie
    fig = figures.uncertainty_figure(report.metrics.uncertainty_histogram.model_dump(), cie.model_dump())
    uri = figures.figure_data_uri(fig) if fig is not None else None
    parts = [figure(uri, "Histograms of teacher and student scores; uncertain share among CIEs",
                    "Left: score histograms (shaded: uncertain band 0.1 < p < 0.9). Right: share of "
                    "uncertain samples among the compression-identified exemplars vs all test samples "
                    "(after Iofinova et al. 2023, Fig. 5).",
                    missing="the report has no uncertainty histogram and no CIE summary"),
             definition_list([
                 ("CIEs (samples whose modal label changed)", fmt(cie.count, reason="not computed")),
                 ("uncertain among CIEs, teacher scores",
                  fmt(cie.share_uncertain_teacher, percent=True, reason="no CIEs")),
                 ("uncertain among CIEs, student scores",
                  fmt(cie.share_uncertain_student, percent=True, reason="no CIEs")),
                 ("uncertain among all samples, teacher scores",
                  fmt(cie.share_uncertain_all_teacher, percent=True, reason="not computed"))])]
    return section("uncertainty", "Uncertainty and CIEs (Iofinova et al., Fig. 5)", *parts)


def _subgroups(report: Report, notes: Footnotes) -> str:
    rows = subgroup_rows(report)
    if not rows:
        return section("subgroups", "Subgroups and intersections (Hooker et al., Table 3)",
                       paragraph("The report has no subgroup table (no identity categories).", css="note"))
    headers = ["group", "size", "teacher error", "student error", "norm. diff error %", "teacher FPR",
               "student FPR", "norm. diff FPR %", "teacher FNR", "student FNR", "norm. diff FNR %"]
    note = paragraph("Normalized difference = 100 · (student − teacher) / teacher, in percent. Rates pooled "
                     "over attributes; "
                     "undefined where a group has no positives (FNR) or no negatives (FPR).", css="note")
    return section("subgroups", "Subgroups and intersections (Hooker et al., Table 3)",
                   table(headers, rows, caption="Error, FPR and FNR per identity group and intersection", notes=notes), note)


def _fairgrape(report: Report, notes: Footnotes) -> str:
    title = "Joint groups: accuracy, AP and PIE (FairGRAPE, Lin et al., Table 1)"
    fg = report.fairgrape
    if fg is None:
        return section("fairgrape", title, paragraph("The report has no FairGRAPE section (no identity "
                                                     "categories, or a report of an older version).", css="note"))
    fig = figures.ap_per_group_figure({row.name: row.ap_percent_of_teacher for row in fg.rows})
    parts = [paragraph(fairgrape_headline(fg)),
             *(table(headers, rows, caption=caption, notes=notes) for caption, headers, rows in fairgrape_tables(fg)),
             figure(figures.figure_data_uri(fig) if fig is not None else None,
                    "Student AP per joint group as a percentage of the teacher's AP",
                    "The student's average precision in each joint group as a percentage of the teacher's "
                    "in the same group (dashed: 100 %, the teacher); after FairGRAPE's AP-per-group figure.",
                    missing=fg.ap_undefined_reason or "no group has a defined teacher AP"),
             paragraph("Joint groups are the membership patterns over every identity column (FairGRAPE's gender "
                       "× race). Std = sample standard deviation over the joint groups. Brackets: paired bootstrap "
                       "interval. PIE: the share of (sample, attribute) pairs the teacher gets right and the "
                       "student wrong.", css="note")]
    return section("fairgrape", title, *parts)


def _speed_vs_bias(report: Report) -> str:
    bench = benchmark_table(report.benchmarks)
    speed = bench or paragraph("No benchmarks in this report (`compress-gate gate` judges predictions "
                               "only; `compress-gate run` and `bench` measure speed).", css="note")
    cost = "<div><h3>Bias cost</h3>" + definition_list(bias_cost_items(report)) + "</div>"
    return section("speed-vs-bias", "Speed bought vs bias cost",
                   f'<div class="side-by-side"><div><h3>Speed bought</h3>{speed}</div>{cost}</div>')


def _per_attribute(report: Report, notes: Footnotes) -> str:
    headers = per_attribute_headers()
    acc = (f"Accuracy: teacher {fmt(report.metrics.teacher.accuracy)}, "
           f"student {fmt(report.metrics.student.accuracy)}"
           f" (students averaged over the population).")
    return section("per-attribute", "Per-attribute metrics", paragraph(acc),
                   table(headers, per_attribute_rows(report), caption="Teacher vs student per attribute", notes=notes))


def _mitigation(report: Report) -> str:
    mit = report.mitigation
    if mit is None:
        return section("mitigation", "Mitigation", paragraph("No mitigation was applied.", css="note"))
    parts = []
    if mit.thresholds is not None:
        parts.append(table(["attribute", "threshold"], [[a, fmt(t)] for a, t in mit.thresholds.items()],
                           caption="Calibrated thresholds (predicted positives = true positives on calib)"))
    else:
        parts.append(paragraph("No calibrated thresholds (argmax for multi-class, or calibration off).",
                               css="note"))
    ov = mit.overrides
    parts.append(definition_list([
        ("overrides shipped", fmt(ov.count, reason="none")),
        ("share of samples", fmt(ov.share, percent=True, reason="none")),
        ("budget", fmt(ov.budget, percent=True, reason="none")),
        ("attributes overridden", ", ".join(ov.attributes) or "none"),
        ("student accuracy with thresholds", fmt(mit.calibrated.accuracy) if mit.calibrated else "no calibration"),
        ("student accuracy with thresholds and overrides (all rows)", fmt(mit.after.accuracy))]))
    if mit.uncovered is not None:
        parts.append(paragraph(uncovered_text(mit.uncovered), css="" if report.judged == "catalogue" else "note"))
    return section("mitigation", "Mitigation", *parts)


def _engines(report: Report) -> str:
    eng = report.engines
    if eng is None:
        return section("engines", "Engines", paragraph("No engine cross-check in this report.", css="note"))
    rows = [[a.engine, fmt(a.label_agreement, percent=True, digits=6),
             fmt(a.max_score_difference)] for a in eng.agreement]
    return section("engines", "Engines",
                   paragraph(f"Judged engine (deployment): {eng.deployment}."),
                   table(["engine", "label agreement with deployment engine", "largest score difference"],
                         rows, caption="Other engines vs the deployment engine"))


def _provenance(report: Report) -> str:
    inputs = report.inputs
    items: list[tuple[str, Any]] = [
        ("data", inputs.data or "unknown"),
        ("teacher predictions", ", ".join(inputs.teacher) or "none"),
        ("student predictions", ", ".join(inputs.students) or "none"),
        ("attributes", ", ".join(inputs.attribute_names)),
        ("identity categories", ", ".join(inputs.group_names) or "none"),
        ("schema version", report.schema_version)]
    if report.run is not None:
        run = report.run.model_dump(mode="json", exclude_none=True, exclude={"similarity"})   # its own section
        items += [(f"run: {k}", v if not isinstance(v, Mapping) else
                   ", ".join(f"{a}={fmt(b)}" for a, b in v.items())) for k, v in run.items()]
    return section("provenance", "Inputs and run", definition_list(items))
