"""Suite-wide checks: every report.json a test writes under its ``tmp_path`` follows the schema."""

from __future__ import annotations

import pytest

from compress_gate.report.schema import Report


#: Test modules that write a stand-in report.json by hand (the bundle tests need a file, not a report;
#: the sweep tests stand in for whole student runs; the overlap tests for bundles and gate outputs an output
#: must not touch).
_STAND_INS = {"test_bundle_runtime.py", "test_sweep.py", "test_sweep_masks.py", "test_core_install.py",
              "test_fail_closed_overlap.py"}


@pytest.fixture(autouse=True)
def _reports_follow_the_schema(request: pytest.FixtureRequest):
    """After each test that uses ``tmp_path``, load every report.json it wrote back through
    :class:`~compress_gate.report.schema.Report` (the models the JSON Schema is generated from)."""
    checked = "tmp_path" in request.fixturenames and request.path.name not in _STAND_INS
    tmp_path = request.getfixturevalue("tmp_path") if checked else None
    yield
    if tmp_path is None:
        return
    for path in tmp_path.rglob("report.json"):
        Report.model_validate_json(path.read_text(encoding="utf-8"))
