"""junit.xml (written by the gate) against the common JUnit XML schema, and its meaning:
one test case per limit, a failure per exceeded limit whose message is observed vs limit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _report_fixture import demo_report, passing_minimal_report

from compress_gate.report import write_junit

xmlschema = pytest.importorskip("xmlschema", reason="xmlschema validates junit.xml; it is in the `test` extra")
SCHEMA = Path(__file__).parent / "data" / "junit.xsd"


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(SCHEMA)


def test_schema_rejects_a_malformed_file(schema):
    # the validation below can fail: a suite without its counts, a case without a name
    assert not schema.is_valid("<testsuites><testsuite name='x'><testcase/></testsuite></testsuites>")


def test_junit_of_a_failing_report_validates_and_names_each_limit(schema, tmp_path):
    report = demo_report()
    path = write_junit(report, tmp_path / "junit.xml")
    schema.validate(str(path))
    root = ET.parse(path).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == [lim["name"] for lim in report["limits"]]
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert sorted(failed) == sorted(lim["name"] for lim in report["limits"] if not lim["passed"])
    message = failed["ba:smiling/male"].get("message")
    assert "0.031" in message and "0.047" in message and "0.02" in message  # observed, bound, limit
    assert "undefined" in failed["ba:eyeglasses/young"].get("message")
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))


def test_junit_without_limits_validates(schema, tmp_path):
    path = write_junit(passing_minimal_report(), tmp_path / "junit.xml")
    schema.validate(str(path))
    assert ET.parse(path).getroot().find(".//failure") is None
