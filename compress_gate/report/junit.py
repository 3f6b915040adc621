"""``junit.xml``: one JUnit test case per gate limit, so CI systems show the verdict natively.

A limit that holds is a passing test case; a limit that is exceeded (or fails closed
on an undefined metric) is a ``<failure type="GateLimitExceeded">`` and a limit without
enough evidence either way a ``<failure type="GateNotEnoughEvidence">``; the message
reads "observed vs limit" and the text is the gate's reason (with the test samples
that would decide an undecided limit). The suite's properties carry the verdict, the
outcome, what was judged and the verdict's scope. With no limits configured the file holds one
skipped test case saying so.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_bytes
from compress_gate._format import fmt
from compress_gate.report.schema import LimitResult, Report, as_report

__all__ = ["build_junit", "write_junit"]

_SUITE = "compress-gate gate"
#: The JUnit failure type of a refused limit: exceeded, or not enough evidence to decide.
FAILURE_TYPES = {"fail": "GateLimitExceeded", "not_enough_evidence": "GateNotEnoughEvidence"}
_CLASSNAME = "compress_gate.gate.limits"


def _message(limit: LimitResult) -> str:
    """``"observed <value> (<bound> bound <value>) vs limit <=|>= <value>"``."""
    sign = "<=" if limit.direction == "max" else ">="
    observed, gated = (fmt(v, digits=6, infinite=True) for v in (limit.observed, limit.gated))
    bound_part = "" if limit.bound == "point" else f" ({limit.bound} bound {gated})"
    return f"observed {observed}{bound_part} vs limit {sign} {fmt(limit.limit, digits=6)}"


def build_junit(report: Report | Mapping[str, Any]) -> bytes:
    """The ``junit.xml`` document for ``report`` (a mapping is validated first), UTF-8 bytes."""
    report = as_report(report)
    limits = report.limits
    failures = sum(1 for limit in limits if not limit.passed)   # refused: failed or undecided
    suites = ET.Element("testsuites", name="compress-gate", tests=str(max(len(limits), 1)),
                        failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=_SUITE, tests=str(max(len(limits), 1)),
                          failures=str(failures), errors="0", skipped="0" if limits else "1",
                          timestamp=report.created)
    properties = ET.SubElement(suite, "properties")
    for name in ("verdict", "outcome", "judged", "scope"):
        ET.SubElement(properties, "property", name=name, value=str(getattr(report, name)))
    for limit in limits:
        case = ET.SubElement(suite, "testcase", classname=_CLASSNAME, name=limit.name)
        if not limit.passed:
            failure = ET.SubElement(case, "failure", message=_message(limit), type=FAILURE_TYPES[limit.outcome])
            failure.text = limit.reason
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{_message(limit)}: {limit.reason}"
    if not limits:
        case = ET.SubElement(suite, "testcase", classname=_CLASSNAME, name="no limits configured")
        ET.SubElement(case, "skipped", message="no limits configured: the gate reports its metrics and "
                                               "passes; add limits to gate release")
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(report: Report | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``junit.xml`` for ``report`` to ``path`` atomically."""
    return write_bytes(path, build_junit(report))
