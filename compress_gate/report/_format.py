"""Formatting of report values for the HTML report and the model card.

Numbers go through the one formatter, :func:`compress_gate._format.fmt`: every undefined
value reads ``undefined (reason)``; report.json writes it as ``null`` (the reason then
comes from the caller, who knows the context) or as ``{"undefined": reason}``; ±inf are
the strings ``"inf"``/``"-inf"``. Nothing here escapes HTML or Markdown; the writers do.
"""

from __future__ import annotations

from typing import Any

from compress_gate._format import fmt, undefined_reason
from compress_gate.report.schema import LimitResult

__all__ = ["OUTCOME_TEXT", "UNIT_HEADERS", "fmt", "fmt_ci", "fmt_limit", "judged_value", "undefined_reason",
           "unit_rows"]

#: How a limit's outcome reads in the verdict tables (HTML and model card); the HTML's CSS class is the key.
OUTCOME_TEXT = {"pass": "pass", "fail": "FAIL", "not_enough_evidence": "NOT ENOUGH EVIDENCE"}


def fmt_ci(ci: Any) -> str:
    """``[lo, hi]`` to ``[lo, hi]`` text; ``None`` -> ``no interval``."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "no interval"
    return f"[{fmt(ci[0], reason='not computed')}, {fmt(ci[1], reason='not computed')}]"


def fmt_limit(limit: LimitResult) -> str:
    """``≤ 0.02`` for a ``max`` limit, ``≥ 0.85`` for a ``min`` limit."""
    op = "≥" if limit.direction == "min" else "≤"
    return f"{op} {fmt(limit.limit, reason='missing')}"


def judged_value(limit: LimitResult) -> str:
    """The number a pass needs: the deciding unit's one-sided bound, e.g. ``upper bound 0.047``
    (``bound: point`` adds that a point outside fails the limit)."""
    side = "upper" if limit.direction == "max" else "lower"
    text = f"{side} bound {fmt(limit.gated, reason='none (degenerate or not measured)')}"
    return text + (" (fails on the point)" if limit.bound == "point" else "")


def unit_rows(limit: LimitResult) -> list[list[str]]:
    """One row per unit of a limit: name, members, positives, trials, point, bound, method, state."""
    return [[u.name, fmt(u.members, reason="-"), fmt(u.positives, reason="-"), fmt(u.trials, reason="-"),
             fmt(u.point, reason="-"), fmt(u.bound, reason="-"), u.method, u.outcome.replace("_", " ")]
            for u in limit.units]


#: The header of :func:`unit_rows`.
UNIT_HEADERS = ["unit", "members", "positives", "trials", "point", "bound", "method", "state"]