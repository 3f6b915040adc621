"""``junit.xml``: one JUnit test case per gate limit, so CI systems show the verdict natively.

A limit that holds is a passing test case; a limit that is exceeded (or fails closed
on an undefined metric) is a ``<failure>`` whose message reads "observed vs limit"
and whose text is the gate's reason. With no limits configured the file holds one
skipped test case saying so.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_bytes

__all__ = ["build_junit", "write_junit"]

_SUITE = "compress-gate gate"
_CLASSNAME = "compress_gate.gate.limits"


def _number(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return str(value)


def _message(limit: Mapping[str, Any]) -> str:
    """``"observed <value> (<bound> bound <value>) vs limit <=|>= <value>"``."""
    sign = "<=" if limit.get("direction") == "max" else ">="
    bound = limit.get("bound", "point")
    ci = limit.get("ci")
    gated = limit.get("gated", (ci[0] if bound == "lower" else ci[1]) if ci and bound != "point"
                      else limit.get("observed"))
    bound_part = "" if bound == "point" else f" ({bound} bound {_number(gated)})"
    return f"observed {_number(limit.get('observed'))}{bound_part} vs limit {sign} {_number(limit.get('limit'))}"


def build_junit(report: Mapping[str, Any]) -> bytes:
    """The ``junit.xml`` document for a report dict (schema in CONTRACTS.md), UTF-8 bytes."""
    limits = list(report.get("limits") or [])
    failures = sum(1 for limit in limits if not limit.get("passed"))
    suites = ET.Element("testsuites", name="compress-gate", tests=str(max(len(limits), 1)),
                        failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=_SUITE, tests=str(max(len(limits), 1)),
                          failures=str(failures), errors="0", skipped="0" if limits else "1",
                          timestamp=str(report.get("created", "")))
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="verdict", value=str(report.get("verdict")))
    for limit in limits:
        case = ET.SubElement(suite, "testcase", classname=_CLASSNAME, name=str(limit.get("name")))
        if not limit.get("passed"):
            failure = ET.SubElement(case, "failure", message=_message(limit), type="GateLimitExceeded")
            failure.text = str(limit.get("reason", ""))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{_message(limit)}: {limit.get('reason', '')}"
    if not limits:
        case = ET.SubElement(suite, "testcase", classname=_CLASSNAME, name="no limits configured")
        ET.SubElement(case, "skipped", message="no limits configured: the gate reports its metrics and "
                                               "passes; add limits to gate release")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``junit.xml`` for ``report`` to ``path`` atomically."""
    return write_bytes(path, build_junit(report))
