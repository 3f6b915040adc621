"""The gate's Markdown job summary: the verdict and one table row per limit.

Written by ``compress-gate gate --summary-md PATH`` and ``compress-gate report``, and
appended to ``$GITHUB_STEP_SUMMARY`` by the GitHub Action; it reads the same in a
GitLab job, Jenkins or a pull-request comment. One row per limit: its outcome, the
observed value (the worst unit's), the interval at the configured confidence, and the
test samples that would decide an undecided limit (``n needed``; ``—`` for a decided
one, ``no estimate`` where the power calculation has none). The gate's reason for every
limit that did not pass follows as a list, so the table stays one line per row.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_text
from compress_gate._format import fmt, is_number
from compress_gate.report.schema import LimitResult, Report, as_report
from compress_gate.report._format import OUTCOME_TEXT, fmt_ci, fmt_limit
from compress_gate.report._markdown import md, md_table

__all__ = ["build_summary_md", "write_summary_md", "HEADLINE"]

#: The summary's heading per outcome.
HEADLINE = {"pass": "PASSED: release allowed", "fail": "REFUSED: a limit was exceeded",
            "not_enough_evidence": "REFUSED: not enough evidence"}


def _observed(limit: LimitResult) -> str:
    return fmt(limit.observed) if is_number(limit.observed) or isinstance(limit.observed, str) else "undefined"


def _n_needed(limit: LimitResult) -> str:
    if limit.outcome != "not_enough_evidence":
        return "—"
    return fmt(limit.n_needed, reason="no estimate") if limit.n_needed is not None else "no estimate"


def build_summary_md(report: Report | Mapping[str, Any]) -> str:
    """The job summary's Markdown for ``report`` (a mapping is validated first)."""
    report = as_report(report)
    passed = sum(lim.outcome == "pass" for lim in report.limits)
    lines = [f"## compress-gate: {HEADLINE[report.outcome]}", "",
             f"Verdict **{report.verdict}** (outcome `{report.outcome}`): {passed} of {len(report.limits)} "
             f"limit(s) hold. Judged: {md(report.judged)} predictions, {fmt(report.inputs.n_test)} test "
             f"samples. {md(report.scope)}", ""]
    if not report.limits:
        lines.append(md(report.note or "No limits were configured: the gate measured and passed."))
        return "\n".join(lines) + "\n"
    confidence = report.config.get("confidence")
    interval = f"{fmt(confidence, percent=True)} interval" if is_number(confidence) else "interval"
    rows = [[lim.name, OUTCOME_TEXT[lim.outcome], _observed(lim), fmt_ci(lim.ci), fmt_limit(lim), _n_needed(lim)]
            for lim in report.limits]
    lines.append(md_table(["limit", "outcome", "observed", interval, "limit", "n needed"], rows))
    reasons = [lim for lim in report.limits if lim.outcome != "pass"]
    if reasons:
        lines += ["", "Why:", ""] + [f"- {md(lim.name)}: {md(lim.reason)}" for lim in reasons]
    return "\n".join(lines) + "\n"


def write_summary_md(report: Report | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write :func:`build_summary_md` to ``path`` atomically and return the path."""
    return write_text(path, build_summary_md(report))
