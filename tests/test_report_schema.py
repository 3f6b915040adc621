"""report.json's JSON Schema: generated from the typed report, shipped, versioned, and followed."""

from __future__ import annotations

import json
import typing

import pytest
from _report_fixture import demo_report, passing_minimal_report

from compress_gate._json import json_safe
from compress_gate.errors import InputError
from compress_gate.report.schema import (SCHEMA_FILES, SCHEMA_SHA256, SCHEMA_VERSION, Report, as_report,
                                       schema_sha256, schema_text)


def test_schema_changes_only_with_a_version_bump():
    assert schema_sha256() == SCHEMA_SHA256, (
        "report.json's schema changed: bump SCHEMA_VERSION in compress_gate/report/schema/__init__.py, set "
        "SCHEMA_SHA256 to the new hash and run `python -m compress_gate.report.schema`")


def test_schema_version_is_the_models_literal():
    assert typing.get_args(Report.model_fields["schema_version"].annotation) == (SCHEMA_VERSION,)
    assert json.loads(schema_text())["properties"]["schema_version"]["const"] == SCHEMA_VERSION


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.parent.name)
def test_shipped_schema_files_are_current(path):
    assert path.read_text(encoding="utf-8") == schema_text()


@pytest.mark.parametrize("make", [demo_report, passing_minimal_report])
def test_the_report_fixtures_follow_the_schema(make):
    report = as_report(make())
    assert Report.model_validate_json(json.dumps(report.to_json())) == report


def test_a_report_off_the_schema_is_an_input_error():
    bad = demo_report()
    bad["limits"][0]["outcome"] = "maybe"
    with pytest.raises(InputError, match=r"limits\.0\.outcome"):
        as_report(bad, source="r.json")


def test_reports_are_frozen():
    report = as_report(demo_report())
    with pytest.raises(Exception, match="frozen"):
        report.verdict = "pass"  # type: ignore[misc]
    assert report.with_run(report.run).run == report.run   # a new report, the old one unchanged


def test_non_finite_numbers_have_one_convention():
    # nan -> null, +inf -> "inf", -inf -> "-inf", in every file and in the typed report
    assert json_safe([float("nan"), float("inf"), -float("inf"), 1.5]) == [None, "inf", "-inf", 1.5]
    report = demo_report()
    report["limits"][0]["observed"] = "inf"
    report["limits"][0]["ci"] = ["-inf", None]
    dumped = as_report(report).to_json()["limits"][0]
    assert dumped["observed"] == "inf" and dumped["ci"] == ["-inf", None]


def test_the_one_number_formatter():
    from compress_gate._format import fmt
    assert fmt(0.031) == "0.031" and fmt(0.04, decimals=4) == "0.0400"
    assert fmt(0.8, percent=True, decimals=1) == "80.0%" and fmt(0.125, percent=True) == "12.5%"
    assert fmt(float("inf"), infinite=True) == "+inf" and fmt("-inf", infinite=True) == "-inf"
    assert fmt("inf") == "undefined (infinite)" and fmt(None, reason="no CIEs") == "undefined (no CIEs)"
    assert fmt(0.02, signed=True) == "+0.02" and fmt(1200) == "1,200"
