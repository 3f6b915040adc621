"""MLflow tracking against a live local server: `gate` and a small `sweep` logged, read back with
the MLflow client; only a passing student is registered and gets the alias; an unreachable
server is exit 3 with the gate's files kept.

The server (SQLite store, local artifact root) starts once per module (about a minute on a
busy 2-core machine), so these tests are slow; CI runs them in the core world with the
[mlflow] extra (`make test-mlflow`). The sweep's students are judged by the real gate on
synthetic predictions instead of being trained (tests/_mlflow_fixtures.student_run_stand_in).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("mlflow", reason="needs the [mlflow] extra: `make install-mlflow`")

from mlflow.tracking import MlflowClient  # noqa: E402

from compress_gate.cli import app  # noqa: E402
from _gate_data import LIMITS_YAML, write_files  # noqa: E402
from _mlflow_fixtures import free_port, mlflow_server, student_run_stand_in  # noqa: E402
from test_sweep import tiny_recipe  # noqa: E402

runner = CliRunner()
ARTIFACTS = {"report.json", "report.html", "junit.xml", "MODEL_CARD.md"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _gate(tmp_path, *extra):
    files = write_files(tmp_path, biased=True)
    (tmp_path / "limits.yaml").write_text(LIMITS_YAML)
    result = runner.invoke(app, ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]),
                                 "--student", str(files["student_0"]), "--limits", str(tmp_path / "limits.yaml"),
                                 "--out", str(tmp_path / "out"), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result, files


@pytest.mark.slow
def test_gate_is_logged_and_read_back(server, tmp_path):
    result, files = _gate(tmp_path, "--mlflow-uri", server, "--mlflow-experiment", "gate-test",
                          "--summary-md", str(tmp_path / "summary.md"))
    assert result.exit_code == 1, result.output                      # refused, and logged
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("gate-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("outcome", "verdict", "judged")} == \
        {"outcome": "fail", "verdict": "fail", "judged": report["judged"]}
    params = run.data.params
    assert params["command"] == "gate"
    assert params["sha256/data"] == _sha256(files["data"])
    assert params["sha256/teacher_0"] == _sha256(files["teacher"])
    assert params["sha256/student_0"] == _sha256(files["student_0"])
    assert params["version/numpy"] == __import__("numpy").__version__
    metrics = run.data.metrics
    for lim in report["limits"]:
        key = f"limit/{lim['name']}"
        assert metrics[f"{key}/observed"] == pytest.approx(lim["observed"])
        assert (metrics[f"{key}/ci_low"], metrics[f"{key}/ci_high"]) == pytest.approx(tuple(lim["ci"]))
    assert metrics["accuracy/student"] == pytest.approx(report["metrics"]["student"]["accuracy"])
    assert metrics["cev"] == pytest.approx(report["metrics"]["cev"]["value"])
    cells = [v for row in report["metrics"]["ba"]["increase"].values() for v in row.values()
             if isinstance(v, float)]
    assert metrics["ba_increase/worst_raw"] == pytest.approx(max(cells))
    assert ("ba_increase/worst_overridden" in metrics) == (report["mitigation"] is not None)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert ARTIFACTS | {"summary.md"} <= names
    local = client.download_artifacts(run.info.run_id, "report.json", str(tmp_path / "back"))
    assert open(local, "rb").read() == (tmp_path / "out" / "report.json").read_bytes()


@pytest.mark.slow
def test_sweep_logs_a_parent_and_children_and_registers_only_the_passing_student(server, tmp_path, monkeypatch):
    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", student_run_stand_in(passing={0.5}))
    recipe = tiny_recipe(tmp_path, limits=[])
    text = recipe.read_text() + "tracking: {experiment: sweep-test, register: faces-student, alias: gated}\n"
    recipe.write_text(text)
    result = runner.invoke(app, ["sweep", str(recipe), "--sparsity", "0.5", "0.9", "--mlflow-uri", server])
    assert result.exit_code == 0, result.output
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("sweep-test")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("compress_gate.command") == "sweep" and
                 "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == {"sparsity-0.5", "sparsity-0.9"}
    assert {"sweep.json", "sweep.html"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert children["sparsity-0.5"].data.tags["outcome"] == "pass"
    assert children["sparsity-0.9"].data.tags["outcome"] == "fail"
    assert children["sparsity-0.9"].data.params["requested_sparsity"] == "0.9"
    # exactly one version: the passing student's bundle, with its outcome and manifest hash; the alias is it
    versions = client.search_model_versions("name='faces-student'")
    assert [v.run_id for v in versions] == [children["sparsity-0.5"].info.run_id]
    manifest = json.loads((tmp_path / "sweep" / "sparsity-0.5" / "release" / "manifest.json").read_text())
    assert versions[0].tags["outcome"] == "pass"
    assert versions[0].tags["manifest_sha256"] == manifest["manifest_sha256"]
    assert client.get_model_version_by_alias("faces-student", "gated").version == versions[0].version
    released = client.download_artifacts(children["sparsity-0.5"].info.run_id, "release/model.onnx",
                                         str(tmp_path / "back"))
    assert _sha256(__import__("pathlib").Path(released)) == manifest["files"]["model.onnx"]["sha256"]

    # a sweep where every student is refused registers nothing and leaves the alias where it was
    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", student_run_stand_in(passing=set()))
    again = runner.invoke(app, ["sweep", str(recipe), "--sparsity", "0.8", "--mlflow-uri", server])
    assert again.exit_code == 1, again.output
    assert [v.version for v in client.search_model_versions("name='faces-student'")] == [versions[0].version]
    assert client.get_model_version_by_alias("faces-student", "gated").version == versions[0].version


def test_unreachable_server_is_exit_3_and_the_files_are_kept(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"                  # nothing listens there
    result, _ = _gate(tmp_path, "--mlflow-uri", uri)
    assert result.exit_code == 3, result.output
    text = " ".join(result.output.split())
    assert f"the MLflow tracking server at {uri} could not be reached" in text
    assert "Traceback" not in result.output
    for name in ARTIFACTS:
        assert (tmp_path / "out" / name).is_file()


def test_tracking_without_a_server_named_is_exit_2_before_the_work(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result, _ = _gate(tmp_path, "--mlflow-experiment", "x")
    assert result.exit_code == 2 and "no server is named" in result.output
    assert not (tmp_path / "out").exists()
