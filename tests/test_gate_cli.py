"""`compress-gate gate` end to end on generated prediction files: refuse, pass, bad input -> exit 2."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from _gate_data import LIMITS_YAML, make_data, write_files

runner = CliRunner()


@pytest.fixture(scope="module")
def biased(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("biased"), biased=True)


@pytest.fixture(scope="module")
def faithful(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("faithful"), biased=False, students=2)


@pytest.fixture()
def limits(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text(LIMITS_YAML)
    return path


def _gate(files, out, *extra, student_keys=("student_0",)):
    args = ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"])]
    for key in student_keys:
        args += ["--student", str(files[key])]
    result = runner.invoke(app, args + ["--out", str(out), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _junit_failures(path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    return {case.get("name"): case.find("failure").get("message")
            for case in root.iter("testcase") if case.find("failure") is not None}


def test_biased_student_is_refused(biased, limits, tmp_path):
    result = _gate(biased, tmp_path / "out", "--limits", str(limits))
    assert result.exit_code == 1, result.stdout + result.stderr
    assert result.stdout.startswith("gate REFUSED:")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "fail"
    failed = _junit_failures(tmp_path / "out" / "junit.xml")
    assert "worst BA increase" in failed
    assert failed["worst BA increase"].startswith("observed ")
    assert " vs limit <= 0.03" in failed["worst BA increase"]
    ba = next(e for e in report["limits"] if e["name"] == "worst BA increase")
    assert ba["unit"] == "smiling/young" and ba["observed"] > 0.03 and ba["ci"][0] <= ba["observed"]
    for name in ("report.json", "junit.xml", "thresholds.json", "overrides.json"):
        assert (tmp_path / "out" / name).is_file()


def test_faithful_population_passes(faithful, limits, tmp_path):
    result = _gate(faithful, tmp_path / "out", "--limits", str(limits), student_keys=("student_0", "student_1"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("gate PASSED: 4 of 4 limits hold")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "pass" and report["inputs"]["n_students"] == 2
    assert _junit_failures(tmp_path / "out" / "junit.xml") == {}
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.get("tests") == "4" and root.get("failures") == "0"


def test_json_flag_prints_the_report(faithful, limits, tmp_path):
    result = _gate(faithful, tmp_path / "out", "--limits", str(limits), "--json")
    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "out" / "report.json").read_text())


def test_no_limits_reports_and_says_so(biased, tmp_path):
    result = _gate(biased, tmp_path / "out")
    assert result.exit_code == 0
    assert "no limits configured" in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["limits"] == [] and report["no_limits"] is True
    assert report["metrics"]["cev"]["value"] > 0
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert root.find(".//testcase/skipped").get("message").startswith("no limits configured")


def test_undefined_metric_fails_closed(biased, tmp_path):
    # the student predicts no positive "eyeglasses": its BA is undefined where the teacher's is defined
    data = make_data()
    preds = np.load(biased["student_0"])
    scores = preds["scores"].copy()
    scores[:, 1] = 0.01
    np.savez(tmp_path / "silent.npz", ids=preds["ids"], scores=scores)
    (tmp_path / "limits.yaml").write_text("limits:\n  - {metric: ba, change: absolute, max: 1.0, name: ba}\n")
    files = {**biased, "student_0": tmp_path / "silent.npz"}
    result = _gate(files, tmp_path / "out", "--limits", str(tmp_path / "limits.yaml"))
    assert result.exit_code == 1
    entry = json.loads((tmp_path / "out" / "report.json").read_text())["limits"][0]
    assert entry["reason"].startswith("fails closed: the student ba is undefined for eyeglasses/")
    assert data.n_attributes == 3


# --- bad input: exit 2, one paragraph, no traceback ----------------------------------------
def _bad_predictions(biased, tmp_path, mutate):
    with np.load(biased["student_0"]) as npz:
        ids, scores = npz["ids"].copy(), npz["scores"].copy()
    columns = mutate(ids, scores)
    np.savez(tmp_path / "bad.npz", **columns)
    return {**biased, "student_0": tmp_path / "bad.npz"}


BAD_PREDICTIONS = {
    "missing id": (lambda i, s: {"ids": i[1:], "scores": s[1:]},
                   "are missing from `ids`, e.g. 'img00600'"),
    "duplicate id": (lambda i, s: {"ids": np.r_[i[:1], i[:-1]], "scores": s},
                     "`ids` must be unique; 1 id(s) occur more than once, e.g. 'img00600'"),
    "foreign id": (lambda i, s: {"ids": np.r_[i[:-1], ["other-set-1"]], "scores": s},
                   "1 of its 1600 ids are not in the eval data, e.g. 'other-set-1'"),
    "wrong shape": (lambda i, s: {"ids": i, "scores": s[:, :2]},
                    "`scores` has 2 columns but the eval data has K = 3 attributes"),
    "nan": (lambda i, s: {"ids": i, "scores": np.where(np.arange(s.size).reshape(s.shape) == 4, np.nan, s)},
            "`scores` holds 1 NaN/inf value(s), e.g. for id 'img00601'"),
    "out of range": (lambda i, s: {"ids": i, "scores": s * 3},
                     "`scores` must be probabilities in [0, 1]"),
    "1-D scores": (lambda i, s: {"ids": i, "scores": s[:, 0]},
                   "`scores` has shape (1600,); it must be (M, K) = (1600, K)"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_bad_predictions_exit_2(biased, tmp_path, case):
    mutate, fragment = BAD_PREDICTIONS[case]
    files = _bad_predictions(biased, tmp_path, mutate)
    result = _gate(files, tmp_path / "out")
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'bad.npz'}: ")
    assert fragment in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out" / "report.json").exists()


def _bad_data(biased, tmp_path, **changes):
    with np.load(biased["data"]) as npz:
        columns = {k: npz[k] for k in npz.files}
    columns.update(changes)
    np.savez(tmp_path / "data.npz", **{k: v for k, v in columns.items() if v is not None})
    return {**biased, "data": tmp_path / "data.npz"}


@pytest.mark.parametrize("changes, fragment", [
    ({"labels": np.full((2200, 3), 2)}, "`labels` must hold only 0 and 1"),
    ({"group__young": np.r_[np.ones(1000), np.zeros(1200)].astype(np.uint8)},
     "group column `group__young` has no member in the test split"),
    ({"split": np.array(["train"] * 600 + ["calib"] * 400 + ["holdout"] * 1200)}, "`split` holds 'holdout'"),
    ({"ids": None}, "missing column `ids`"),
])
def test_bad_data_exit_2(biased, tmp_path, changes, fragment):
    files = _bad_data(biased, tmp_path, **changes)
    result = _gate(files, tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'data.npz'}: ")
    assert fragment in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_limit_metric_exit_2(biased, tmp_path):
    (tmp_path / "limits.yaml").write_text("limits:\n  - {metric: bias_amp, max: 0.1}\n")
    result = _gate(biased, tmp_path / "out", "--limits", str(tmp_path / "limits.yaml"))
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert message.startswith(f"error: {tmp_path / 'limits.yaml'}: `limits[0].metric` = 'bias_amp': "
                              "Input should be 'accuracy'")
    assert "'subgroup_fnr'" in message and "Traceback" not in message


def test_missing_file_and_argument_mix_exit_2(biased, tmp_path):
    files = {**biased, "teacher": tmp_path / "nope.npz"}
    result = _gate(files, tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'nope.npz'}: no such predictions file")
    mixed = runner.invoke(app, ["gate", "--data", str(biased["data"]), "--teacher", str(biased["teacher"]),
                                "--student-model", "s.onnx", "--out", str(tmp_path / "o")])
    assert mixed.exit_code == 2
    assert mixed.stderr.startswith("error: give the teacher and at least one student either as prediction "
                                   "files")
