"""`compress-gate report`: the report files re-rendered from a saved report.json, and the
Markdown job summary (`gate --summary-md`), read back with a real Markdown parser."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil

import pytest
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.report.html import build_html
from compress_gate.report.schema import SCHEMA_VERSION, as_report
from compress_gate.report import rerender as rerender_module
from _gate_data import LIMITS_YAML, write_files
from _report_fixture import demo_report

runner = CliRunner()
GATE_FILES = ("report.json", "report.html", "MODEL_CARD.md", "junit.xml")


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """One refused gate (biased student) with --summary-md; returns (out dir, summary path)."""
    root = tmp_path_factory.mktemp("gated")
    files = write_files(root, biased=True)
    (root / "limits.yaml").write_text(LIMITS_YAML)
    out, summary = root / "gate", root / "summary.md"
    result = runner.invoke(app, ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]),
                                 "--student", str(files["student_0"]), "--limits", str(root / "limits.yaml"),
                                 "--out", str(out), "--summary-md", str(summary)])
    assert result.exit_code == 1, result.output
    return out, summary


def _report(args):
    result = runner.invoke(app, ["report", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_rerender_reproduces_the_gate_files_byte_for_byte(gated, tmp_path):
    out, summary = gated
    result = _report([out / "report.json", "--out", tmp_path / "again"])
    assert result.exit_code == 0, result.output
    for name in GATE_FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    assert (tmp_path / "again" / "summary.md").read_bytes() == summary.read_bytes()


def _table(tokens):
    """Rows of the first table in a markdown-it token stream, as lists of cell texts."""
    rows, row, in_cell = [], None, False
    for tok in tokens:
        if tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            in_cell = True
        elif tok.type in ("th_close", "td_close"):
            in_cell = False
        elif tok.type == "inline" and in_cell:
            row.append(tok.content)
        elif tok.type == "tr_close":
            rows.append(row)
        elif tok.type == "table_close":
            break
    return rows


def test_summary_markdown_has_one_row_per_limit(gated):
    out, summary = gated
    report = json.loads((out / "report.json").read_text())
    text = summary.read_text()
    parser = MarkdownIt("commonmark").enable("table")
    tokens = parser.parse(text)
    assert tokens[0].type == "heading_open" and "REFUSED" in tokens[1].content
    rows = _table(tokens)
    assert rows[0] == ["limit", "outcome", "observed", "95% interval", "limit", "n needed"]
    assert len(rows) == 1 + len(report["limits"])
    for row, lim in zip(rows[1:], report["limits"]):
        assert len(row) == 6, row                     # no cell split by a stray pipe
        assert row[0] == lim["name"]
        assert row[1] == {"pass": "pass", "fail": "FAIL", "not_enough_evidence": "NOT ENOUGH EVIDENCE"}[lim["outcome"]]
        if lim["outcome"] == "not_enough_evidence":
            assert row[5] != "—"
        else:
            assert row[5] == "—"
    # the rendered HTML has a <table> with the same number of body rows
    html = parser.render(text)
    assert html.count("<tr>") == 1 + len(report["limits"])
    # every refused limit's reason is listed once, below the table
    for lim in report["limits"]:
        assert (lim["outcome"] != "pass") == (f"{lim['name']}:" in text.split("Why:")[-1])


def _edit(gated, tmp_path, change):
    out, _ = gated
    doc = json.loads((out / "report.json").read_text())
    change(doc)
    path = tmp_path / "edited.json"  # not report.json: conftest validates every report.json left behind
    path.write_text(json.dumps(doc))
    return path


def _flip_verdict(doc):
    doc["verdict"] = "pass"


def _flip_outcome(doc):
    doc["verdict"], doc["outcome"] = "pass", "pass"


def _flip_limit(doc):
    doc["limits"][0]["passed"] = not doc["limits"][0]["passed"]


def _unknown_key(doc):
    doc["approved_by"] = "me"


def _wrong_type(doc):
    doc["inputs"]["n_test"] = "many"


@pytest.mark.parametrize("change, fragment", [
    (_flip_verdict, "contradicts itself"), (_flip_outcome, "contradicts itself"),
    (_flip_limit, "contradicts itself"), (_unknown_key, "published report.json schema"),
    (_wrong_type, "inputs.n_test"),
])
def test_tampered_report_is_exit_2(gated, tmp_path, change, fragment):
    result = _report([_edit(gated, tmp_path, change), "--out", tmp_path / "r"])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content, fragment", [
    ('{"name": "not a report"}', "no integer `schema_version`"),
    ("[1, 2]", "no integer `schema_version`"),
    ('{"schema_version": 3, "x": NaN}', "not a JSON file"),
    ("<html></html>", "not a JSON file"),
])
def test_foreign_json_is_exit_2(tmp_path, content, fragment):
    path = tmp_path / "foreign.json"
    path.write_text(content)
    result = _report([path, "--out", tmp_path / "r"])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())


@pytest.mark.parametrize("version", [4, SCHEMA_VERSION + 1])
def test_a_version_without_an_exact_migration_names_both(gated, tmp_path, version):
    path = _edit(gated, tmp_path, lambda doc: doc.update(schema_version=version))
    result = _report([path, "--out", tmp_path / "r"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"schema version {version}" in text and f"reads schema version {SCHEMA_VERSION}" in text


def test_exact_migration_is_applied(gated, tmp_path, monkeypatch):
    # a registered migration is used (here a stand-in for version 4: the identity plus the version)
    path = _edit(gated, tmp_path, lambda doc: doc.update(schema_version=4))
    monkeypatch.setitem(rerender_module.MIGRATIONS, 4, lambda doc: {**doc, "schema_version": 5})
    result = _report([path, "--out", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").read_bytes() == (gated[0] / "report.html").read_bytes()


def test_a_version_5_report_renders_without_the_similarity_section(tmp_path):
    # version 6 only added run.similarity: a version-5 run report is the same report without it
    current = demo_report()
    old = copy.deepcopy(current)
    old["schema_version"] = 5
    del old["run"]["similarity"]
    (tmp_path / "v5.json").write_text(json.dumps(old))
    result = _report([tmp_path / "v5.json", "--out", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    rewritten = json.loads((tmp_path / "r" / "report.json").read_text())
    expected = as_report(current).to_json()
    assert rewritten == {**expected, "run": {**expected["run"], "similarity": None}}   # nothing else changed
    html = (tmp_path / "r" / "report.html").read_text()
    assert html == build_html(rewritten) and 'id="similarity"' not in html
    assert "Representation similarity" not in (tmp_path / "r" / "MODEL_CARD.md").read_text()


def test_a_current_run_report_re_renders_its_similarity_section(tmp_path):
    (tmp_path / "v6.json").write_text(json.dumps(demo_report()))
    result = _report([tmp_path / "v6.json", "--out", tmp_path / "r"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "report.html").read_text()
    assert html == build_html(demo_report()) and html.count('<section id="similarity">') == 1


def test_bundle_report_must_match_its_manifest(gated, tmp_path):
    out, _ = gated
    bundle = tmp_path / "release"
    bundle.mkdir()
    shutil.copy(out / "report.json", bundle / "report.json")
    digest = hashlib.sha256((bundle / "report.json").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps({"files": {"report.json": {"sha256": digest}}}))
    assert _report([bundle / "report.json", "--out", tmp_path / "ok"]).exit_code == 0
    # same content, one more space: valid JSON, consistent, but not the file the bundle lists
    (bundle / "report.json").write_text((out / "report.json").read_text() + " ")
    result = _report([bundle / "report.json", "--out", tmp_path / "r"])
    assert result.exit_code == 2 and "differs from the one" in " ".join(result.output.split())


def test_out_holding_the_input_is_refused(gated, tmp_path):
    out, _ = gated
    copy = tmp_path / "gate"
    shutil.copytree(out, copy)
    result = _report([copy / "report.json", "--out", copy])
    assert result.exit_code == 2 and "contains the report (REPORT_JSON)" in " ".join(result.output.split())
    assert (copy / "report.json").is_file()


def test_summary_md_bad_path_is_exit_2_before_the_work(tmp_path):
    files = write_files(tmp_path, biased=False)
    result = runner.invoke(app, ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]),
                                 "--student", str(files["student_0"]), "--out", str(tmp_path / "out"),
                                 "--summary-md", str(tmp_path)])
    assert result.exit_code == 2 and "job summary" in result.output
    assert not (tmp_path / "out").exists()
