"""Plain-text formatting of report values, shared by the HTML report and the model card.

Every undefined value reads ``undefined (reason)``: report.json writes it as ``null``
(the reason then comes from the caller, who knows the context) or as
``{"undefined": reason}`` (:class:`~compress_gate.gate.schema.Undefined`); ±inf are the
strings ``"inf"``/``"-inf"``. Nothing here escapes HTML or Markdown; the writers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from compress_gate.gate.schema import LimitResult, Undefined
from compress_gate.report.figures import is_number

__all__ = ["fmt", "fmt_ci", "fmt_limit", "judged_value", "undefined_reason"]


def undefined_reason(value: Any, fallback: str) -> str | None:
    """The reason ``value`` is undefined, or ``None`` when it is a finite number."""
    if is_number(value):
        return None
    if isinstance(value, Undefined):
        return value.undefined
    if isinstance(value, Mapping) and "undefined" in value:
        return str(value["undefined"])
    if isinstance(value, float) and math.isnan(value):
        return fallback
    if isinstance(value, float) and math.isinf(value):
        return "infinite"
    if value is None:
        return fallback
    if value in ("inf", "-inf"):  # report.json writes ±inf as strings
        return "infinite"
    return f"not a number: {value!r}"


def fmt(value: Any, *, reason: str = "not computed", percent: bool = False, digits: int = 4,
        signed: bool = False) -> str:
    """Format a number to ``digits`` significant digits; undefined -> ``undefined (reason)``.

    ``percent`` formats a share in [0, 1] as a percentage (``0.125`` -> ``12.5%``).
    Integers print whole. Booleans print as ``yes``/``no``.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    why = undefined_reason(value, reason)
    if why is not None:
        return f"undefined ({why})"
    sign = "+" if signed else ""
    if isinstance(value, int):
        return f"{value:{sign},d}"
    if percent:
        return f"{100 * value:{sign}.{max(digits - 1, 1)}g}%"
    return f"{value:{sign}.{digits}g}"


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
    """The number a limit was judged on: ``upper bound 0.047``, or ``point estimate 0.031``."""
    if limit.bound == "point":
        return f"point estimate {fmt(limit.observed, reason='not computed')}"
    return f"{limit.bound} bound {fmt(limit.gated, reason='not computed')}"
