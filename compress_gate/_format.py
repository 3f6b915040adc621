"""The one number formatter of everything compress-gate prints: reports, reasons, terminal, JUnit.

Every undefined value reads ``undefined (reason)``. Values come as Python or NumPy
numbers, as report.json's convention (``None`` for NaN, ``"inf"``/``"-inf"``), or as
``{"undefined": reason}`` (a mapping or an object with an ``undefined`` attribute).
Nothing here escapes HTML or Markdown; the writers do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["fmt", "is_number", "undefined_reason"]


def is_number(value: Any) -> bool:
    """True for a finite int/float (not bool); False for ``None``, NaN, ±inf or ``{"undefined": ...}``."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _infinity(value: Any) -> float | None:
    """+inf or -inf when ``value`` is an infinity (a float or report.json's string), else None."""
    if isinstance(value, float) and math.isinf(value):
        return value
    if isinstance(value, str) and value in ("inf", "-inf"):
        return float(value)
    return None


def undefined_reason(value: Any, fallback: str) -> str | None:
    """The reason ``value`` is undefined, or ``None`` when it is a finite number."""
    if is_number(value):
        return None
    if isinstance(getattr(value, "undefined", None), str):
        return str(value.undefined)
    if isinstance(value, Mapping) and "undefined" in value:
        return str(value["undefined"])
    if isinstance(value, float) and math.isnan(value):
        return fallback
    if _infinity(value) is not None:
        return "infinite"
    if value is None:
        return fallback
    return f"not a number: {value!r}"


def fmt(value: Any, *, reason: str = "not computed", percent: bool = False, digits: int = 4,
        decimals: int | None = None, signed: bool = False, infinite: bool = False) -> str:
    """Format a number; undefined -> ``undefined (reason)``.

    - ``digits`` significant digits (``.4g``), or ``decimals`` fixed decimals (``.4f``) when given;
    - ``percent`` formats a share in [0, 1] as a percentage (``0.125`` -> ``12.5%``);
    - ``signed`` prints ``+`` before positive numbers;
    - ``infinite`` prints ±inf as ``+inf``/``-inf`` (a relative change from a zero baseline)
      instead of ``undefined (infinite)``.

    Integers print whole (thousands separated). Booleans print as ``yes``/``no``.

    Examples
    --------
    >>> fmt(0.031), fmt(0.8, percent=True, decimals=1), fmt(None), fmt("inf", infinite=True)
    ('0.031', '80.0%', 'undefined (not computed)', '+inf')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if infinite and _infinity(value) is not None:
        return "+inf" if _infinity(value) > 0 else "-inf"  # type: ignore[operator]
    why = undefined_reason(value, reason)
    if why is not None:
        return f"undefined ({why})"
    sign = "+" if signed else ""
    if isinstance(value, int):
        return f"{value:{sign},d}"
    if percent:
        spec = f".{decimals}f" if decimals is not None else f".{max(digits - 1, 1)}g"
        return f"{100 * value:{sign}{spec}}%"
    spec = f".{decimals}f" if decimals is not None else f".{digits}g"
    return f"{value:{sign}{spec}}"
