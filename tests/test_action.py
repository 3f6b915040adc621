"""The GitHub Action (action.yml): its gate step run in a shell with the GITHUB_* files set.

The install step is `pip install` of this checkout (CI runs action/install.sh into a fresh
virtual environment, `make test-install`); here the step that judges runs with the
compress-gate of this environment on PATH, as it would after the install step.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from markdown_it import MarkdownIt

from _gate_data import LIMITS_YAML, PASSABLE_LIMITS_YAML, write_files
from test_gate_models import setup as onnx_setup  # noqa: F401 (the ONNX models' fixture)

ROOT = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
UPLOADED = ("report.json", "report.html", "junit.xml")


def _step(name_or_id: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if name_or_id in (s.get("id"), s.get("name"), s.get("uses")))


def test_action_declares_its_inputs_outputs_and_steps():
    assert ACTION["runs"]["using"] == "composite"
    assert {"data", "teacher", "student", "limits", "python-version", "extras"} <= set(ACTION["inputs"])
    assert {"outcome", "verdict", "report"} <= set(ACTION["outputs"])
    for name in ("outcome", "verdict", "report"):
        assert ACTION["outputs"][name]["value"] == f"${{{{ steps.gate.outputs.{name} }}}}"
    assert "action/install.sh" in _step("install compress-gate")["run"]
    assert "action/gate.sh" in _step("gate")["run"]
    upload = _step("actions/upload-artifact@v4")["with"]["path"].strip().splitlines()
    assert upload == [f"${{{{ inputs.out }}}}/{name}" for name in UPLOADED]


def _run_gate_step(tmp_path: Path, **inputs: str) -> tuple[int, str, dict[str, str], Path]:
    """Run action/gate.sh as the composite step would; return exit code, summary, outputs, out dir."""
    summary, outputs = tmp_path / "step_summary.md", tmp_path / "github_output"
    summary.write_text("earlier step's summary\n")          # appended to, never replaced
    outputs.write_text("")
    out = tmp_path / "compress-gate-report"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
           "RUNNER_TEMP": str(tmp_path), "CG_OUT": str(out), "CG_PYTHON": sys.executable,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           **{f"CG_{k.upper()}": v for k, v in inputs.items()}}
    assert shutil.which("compress-gate", path=env["PATH"]), "compress-gate is not installed in this environment"
    proc = subprocess.run(["bash", str(ROOT / "action" / "gate.sh")], env=env, capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    pairs = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    return proc.returncode, summary.read_text(), pairs, out


def _limit_rows(markdown: str) -> list[list[str]]:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    rows, row = [], []
    for i, tok in enumerate(tokens):
        if tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and tokens[i - 1].type in ("th_open", "td_open"):
            row.append(tok.content)
        elif tok.type == "tr_close":
            rows.append(row)
    return rows


@pytest.mark.parametrize("biased, code, outcome", [(True, 1, "fail"), (False, 0, "pass")])
def test_gate_step_leaves_summary_outputs_and_files(tmp_path, biased, code, outcome):
    files = write_files(tmp_path, biased=biased, students=1 if biased else 2)
    (tmp_path / "limits.yaml").write_text(LIMITS_YAML if biased else PASSABLE_LIMITS_YAML)
    students = "\n".join(str(files[k]) for k in files if k.startswith("student_"))
    exit_code, summary, outputs, out = _run_gate_step(
        tmp_path, data=str(files["data"]), teacher=str(files["teacher"]), student=students + "\n",
        limits=str(tmp_path / "limits.yaml"))
    report = json.loads((out / "report.json").read_text())
    assert (exit_code, report["outcome"]) == (code, outcome), summary
    assert summary.startswith("earlier step's summary\n## compress-gate: ")
    assert outputs == {"exit-code": str(code), "outcome": outcome, "verdict": report["verdict"],
                       "report": str(out / "report.json"), "dir": str(out)}
    rows = _limit_rows(summary)
    assert [r[0] for r in rows[1:]] == [lim["name"] for lim in report["limits"]]
    assert report["inputs"]["students"] == students.split("\n")
    for name in UPLOADED:                                       # what the upload step names
        assert (out / name).is_file() and (out / name).stat().st_size > 0


def test_gate_step_scores_onnx_models(tmp_path, onnx_setup):  # noqa: F811
    paths, _, _ = onnx_setup
    exit_code, summary, outputs, out = _run_gate_step(
        tmp_path, data=str(paths["data"]), teacher=str(paths["teacher"]), student=str(paths["student"]), limits="")
    assert exit_code == 0 and outputs["outcome"] == "pass"
    assert "No limits were configured" in summary or "limit(s) hold" in summary
    assert (out / "predictions" / "student_1.npz").is_file()


def test_gate_step_bad_input_exit_2_without_outcome(tmp_path):
    files = write_files(tmp_path, biased=False)
    exit_code, summary, outputs, out = _run_gate_step(
        tmp_path, data=str(tmp_path / "missing.npz"), teacher=str(files["teacher"]),
        student=str(files["student_0"]), limits="")
    assert exit_code == 2
    assert outputs == {"exit-code": "2"}                       # no outcome: nothing was judged
    assert summary == "earlier step's summary\n" and not out.exists()
