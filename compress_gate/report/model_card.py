"""``MODEL_CARD.md`` after Mitchell et al. (2019), "Model Cards for Model Reporting".

The card is written from the typed report, so it says only what the run measured:
model details and the compression applied, intended use, factors (the identity
categories and their intersections), metrics, evaluation data, disaggregated results,
the gate's limits and verdict, the mitigations shipped with the model, and the known
limitations the report itself reveals (undefined metrics, small groups, what the
limits do not cover). Text from the report is Markdown-escaped.

Intended use is the owner's statement: pass ``intended_use=`` or put
``intended_use`` (and optionally ``out_of_scope``) in the report's ``run`` section;
without it the card says that it was not stated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_text
from compress_gate.report.schema import Report, as_report
from compress_gate.report._markdown import md, md_table
from compress_gate.report._fairgrape import fairgrape_headline, fairgrape_tables
from compress_gate.report._format import OUTCOME_TEXT, UNIT_HEADERS, fmt, fmt_ci, fmt_limit, judged_value, unit_rows
from compress_gate.report._tables import (ba_rows, ba_value, largest_ba_increase, per_attribute_headers,
                                          per_attribute_rows, subgroup_rows, uncovered_text)
from compress_gate._format import is_number

__all__ = ["write_model_card", "build_model_card"]

SMALL_GROUP = 30


def write_model_card(report: Report | Mapping[str, Any], path: str | os.PathLike[str], *,
                     intended_use: str | None = None) -> Path:
    """Write ``MODEL_CARD.md`` for ``report`` to ``path`` (atomically) and return the path."""
    return write_text(path, build_model_card(report, intended_use=intended_use))


def build_model_card(report: Report | Mapping[str, Any], *, intended_use: str | None = None) -> str:
    """The model card's Markdown text (see :func:`write_model_card`); a mapping is validated first."""
    report = as_report(report)
    sections = [_details(report), _intended_use(report, intended_use), _factors(report), _metrics(report),
                _evaluation_data(report), _gate(report), _disaggregated(report), _mitigations(report),
                _limitations(report)]
    return "\n\n".join(sections) + "\n"


def _details(report: Report) -> str:
    verdict = report.verdict.upper()
    lines = ["# Model card", "", "## Model details", "",
             f"- Compressed student of a dense teacher, judged by compress-gate on {md(report.created)}.",
             f"- Gate verdict: **{md(verdict)}**"
             + (" (released)." if verdict == "PASS" else " (release refused; this card documents why)."),
             f"- Task: {md(report.inputs.task)}; outputs: {md(', '.join(report.inputs.attribute_names))}."]
    lines += ["", "### Compression applied", ""]
    if report.run is not None:
        run = report.run.model_dump(mode="json", exclude_none=True,
                                    exclude={"intended_use", "out_of_scope", "summary", "similarity"})
        for key, value in {**run.pop("compression"), **run}.items():
            shown = (", ".join(f"{k}={fmt(v) if is_number(v) else v}" for k, v in value.items())
                     if isinstance(value, Mapping) else fmt(value) if is_number(value) else value)
            lines.append(f"- {md(key)}: {md(shown)}")
    else:
        lines.append("- Not recorded: this report comes from `compress-gate gate` on predictions made "
                     "elsewhere; see the recipe that produced the student.")
    speedups = (report.benchmarks or {}).get("speedups") or []
    if speedups:
        lines.append("- Measured speed-up over the teacher (median of paired ratios): " + md("; ".join(
            f"{fmt(sp.get('ratio'), digits=3)}x for {sp.get('model')} on {sp.get('engine')} at batch "
            f"{sp.get('batch_size')}" for sp in speedups if isinstance(sp, Mapping))) + ".")
    similarity = report.run.similarity if report.run is not None else None
    if similarity is not None:
        cka, svcca = (fmt(value, decimals=4, reason="no layer defined")
                      for value in (similarity.mean.cka, similarity.mean.svcca))
        lines.append(f"- Representation similarity to the teacher (mean over {len(similarity.layers)} layers, "
                     f"{similarity.n_rows} {md(similarity.split)} rows): linear CKA {cka}, SVCCA {svcca}.")
    return "\n".join(lines)


def _intended_use(report: Report, intended_use: str | None) -> str:
    stated = intended_use or (report.run.intended_use if report.run else None)
    out_of_scope = report.run.out_of_scope if report.run else None
    lines = ["## Intended use", ""]
    lines.append(f"- Primary use: {md(stated)}" if stated else
                 "- Primary use: **not stated by the model owner.** State it before deployment "
                 "(`intended_use` in the recipe's run section).")
    lines.append("- Use the release bundle's runtime (`GatedModel`), which applies the calibrated thresholds "
                 "and the overrides below; the bare ONNX model without them is not what the gate judged.")
    if out_of_scope:
        lines.append(f"- Out of scope: {md(out_of_scope)}")
    lines.append("- Not evaluated: populations and identity categories absent from the evaluation data.")
    return "\n".join(lines)


def _factors(report: Report) -> str:
    groups = report.inputs.group_names
    shown = ", ".join(groups) if groups else "none (no identity categories in the data)"
    deployment = report.engines.deployment if report.engines else "onnxruntime"
    return "\n".join(["## Factors", "",
                      f"- Identity categories: {md(shown)}.",
                      "- Intersections: every pair of categories and their complements (Hooker et al. 2020).",
                      "- Instrumentation: one model per engine; the gate judges the deployment engine "
                      f"({md(deployment)})."])


def _metrics(report: Report) -> str:
    confidence = report.config.get("confidence")
    ci = fmt(confidence, percent=True) if is_number(confidence) else "bootstrap"
    return "\n".join([
        "## Metrics", "",
        "- Per attribute: FPR, FNR, their normalized change δ = 100·(student − teacher)/teacher, "
        "train class balance (TCB), uncertainty (share of scores in (0.1, 0.9)), ECE, label interrelation R².",
        "- Across attributes: CEV (spread of the δ points) and SDE (distance from the balance line δFPR = δFNR), "
        "after Blakeney et al. (2021).",
        "- Per (attribute, identity): bias amplification (BA), after Iofinova et al. (2023).",
        "- Per identity group and intersection: error, FPR, FNR and normalized difference (Hooker et al. 2020).",
        f"- Gated numbers carry a {md(ci)} confidence interval over test samples; each limit names the bound "
        "it judges. Decision thresholds: calibrated per attribute (see Mitigations) or argmax."])


def _evaluation_data(report: Report) -> str:
    inputs = report.inputs
    return "\n".join([
        "## Evaluation data", "",
        f"- Data: {md(inputs.data or 'unknown')}; {md(fmt(inputs.n_test))} test "
        f"samples, {md(fmt(inputs.n_calib))} calibration samples (thresholds are fit "
        "on calibration, judged on test).",
        f"- Teacher predictions: {md(', '.join(inputs.teacher) or 'none')}; "
        f"student predictions: {md(', '.join(inputs.students) or 'none')} "
        "(a population of students is averaged).",
        "- Training data: BA and TCB take their direction from the training split's labels."])


def _gate(report: Report) -> str:
    limits = report.limits
    outcome = {"pass": "pass", "fail": "fail", "not_enough_evidence": "not enough evidence"}[report.outcome]
    lines = ["## Gate limits and verdict", "",
             f"Verdict: **{md(report.verdict.upper())}** (outcome: {md(outcome)}). {md(report.scope)}", ""]
    if not limits:
        lines.append("No limits were configured.")
        return "\n".join(lines)
    rows = [[lim.name, fmt(lim.observed, reason=lim.reason or "not computed"),
             fmt_ci(lim.ci), judged_value(lim), fmt_limit(lim),
             OUTCOME_TEXT[lim.outcome]] for lim in limits]
    lines.append(md_table(["name", "observed", "CI", "judged", "limit", "result"], rows))
    undecided = [lim for lim in limits if lim.outcome == "not_enough_evidence"]
    if undecided:
        lines += ["", "Not enough evidence (a unit's one-sided bound is outside the limit, or a unit is too small); "
                  "test rows that would decide with power 80 %: "
                  + md("; ".join(f"{lim.name}: {fmt(lim.n_needed, reason='no estimate')}" for lim in undecided))
                  + "."]
    for lim in limits:
        if lim.units:
            lines += ["", f"Units of {md(lim.name)}:", "", md_table(UNIT_HEADERS, unit_rows(lim))]
    return "\n".join(lines)


def _disaggregated(report: Report) -> str:
    after = report.mitigation.after if report.mitigation else None
    lines = ["## Quantitative analyses (disaggregated)", "",
             f"Accuracy: teacher {fmt(report.metrics.teacher.accuracy)}, student "
             f"{fmt(report.metrics.student.accuracy)}, student after mitigation "
             f"{fmt(after.accuracy if after else None, reason='no mitigation')}.", ""]
    subgroups = subgroup_rows(report)
    if subgroups:
        lines += ["### Subgroups and intersections", "",
                  md_table(["group", "size", "teacher error", "student error", "norm. diff %", "teacher FPR",
                             "student FPR", "norm. diff %", "teacher FNR", "student FNR", "norm. diff %"],
                            subgroups), ""]
    ba = ba_rows(report)
    if ba:
        lines += ["### Bias amplification", "",
                  md_table(["attribute", "identity", "teacher", "student", "increase"]
                            + (["after mitigation", "increase after"] if after else []), ba), ""]
    if report.fairgrape is not None:
        lines += ["### Joint groups (FairGRAPE, Lin et al., Table 1)", "", md(fairgrape_headline(report.fairgrape)),
                  ""]
        for caption, headers, rows in fairgrape_tables(report.fairgrape):
            lines += [f"{md(caption)}:", "", md_table(headers, rows), ""]
    lines += ["### Per attribute", "",
              md_table(per_attribute_headers(), per_attribute_rows(report))]
    return "\n".join(lines)


def _mitigations(report: Report) -> str:
    mit = report.mitigation
    lines = ["## Mitigations shipped", ""]
    if mit is None:
        lines.append("None: the model ships with the default decision rule (score > 0.5, or argmax).")
        return "\n".join(lines)
    if mit.thresholds is not None:
        lines.append("- Calibrated thresholds (`thresholds.json`): "
                     + md(", ".join(f"{a}={fmt(t)}" for a, t in mit.thresholds.items())) + ".")
    else:
        lines.append("- No calibrated thresholds.")
    ov = mit.overrides
    lines.append(f"- Overrides (`overrides.json`): {fmt(ov.count, reason='none')} samples "
                 f"({fmt(ov.share, percent=True, reason='none')} of the data, budget "
                 f"{fmt(ov.budget, percent=True, reason='none')}) on "
                 f"{md(', '.join(ov.attributes) or 'no attributes')}; the runtime "
                 "replaces the student's label by the human (or teacher) label for these sample ids.")
    if mit.uncovered is not None:
        lines.append(f"- {md(uncovered_text(mit.uncovered))}")
    return "\n".join(lines)


def known_limitations(report: Report | Mapping[str, Any]) -> list[str]:
    """Plain-text limitations the report reveals (undefined metrics, small groups, scope)."""
    report = as_report(report)
    notes = []
    for balance, label in ((report.metrics.cev, "CEV"), (report.metrics.sde, "SDE")):
        if balance.excluded:
            notes.append(f"{label} excludes {len(balance.excluded)} attribute(s) whose teacher rate is 0 "
                         f"({', '.join(balance.excluded)}).")
    student = report.metrics.ba.student
    undefined = [f"{r[0]} / {r[1]}" for r in ba_rows(report) if not is_number(ba_value(student, r[0], r[1]))]
    if undefined:
        notes.append(f"Student BA undefined for {len(undefined)} (attribute, identity) pair(s): "
                     f"{', '.join(undefined)}; these pairs are not measured for amplification.")
    small = [f"{s.name} (n={s.size})" for s in report.metrics.subgroups if s.size < SMALL_GROUP]
    if small:
        notes.append(f"Groups with fewer than {SMALL_GROUP} test samples have wide uncertainty: {', '.join(small)}.")
    worst = largest_ba_increase(report.metrics.ba)
    if worst and worst[1] > 0:
        notes.append(f"Largest BA increase over the teacher: {fmt(worst[1], signed=True)} ({worst[0]}).")
    notes += ["The limits bound what compression added relative to the dense teacher; the teacher's own "
              "bias is reported, not gated.",
              "Identity categories are the dataset's binary annotations; groups not annotated are not measured.",
              "Confidence intervals resample test samples; they do not cover the variation between training "
              "seeds unless a population of students was evaluated."]
    return notes


def _limitations(report: Report) -> str:
    return "\n".join(["## Known limitations and caveats", ""] + [f"- {md(n)}" for n in known_limitations(report)])
