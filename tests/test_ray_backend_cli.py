"""``audit`` and ``sweep`` with ``--execution local|ray [--address ADDR]`` (``--backend``: its old name).

The fast tests need no Ray: a missing [ray] extra is exit 2 naming it, before any work; the
options reach the library. The slow one runs a real two-student sweep as Ray tasks on a local
cluster (about a minute), the teacher task first.
"""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.errors import InputError
from tests._worlds import needs_ray
from tests.test_sweep import tiny_recipe


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)          # `import ray` raises ImportError


@pytest.mark.parametrize("command", ["audit", "sweep"])
def test_backend_ray_without_the_extra_is_exit_2_before_any_work(tmp_path, no_ray, command):
    recipe = tiny_recipe(tmp_path, limits=[])
    extra = ["--sparsity", "0.5"] if command == "sweep" else []
    result = CliRunner().invoke(app, [command, str(recipe), *extra, "--backend", "ray"])
    assert result.exit_code == 2, result.output
    assert "needs Ray, which is not installed" in result.output and "compress-gate[ray]" in result.output
    assert not (tmp_path / "sweep").exists()


@pytest.mark.parametrize("command", ["audit", "sweep"])
def test_an_unknown_backend_is_exit_2(tmp_path, command):
    recipe = tiny_recipe(tmp_path, limits=[])
    extra = ["--sparsity", "0.5"] if command == "sweep" else []
    result = CliRunner().invoke(app, [command, str(recipe), *extra, "--backend", "spark"])
    assert result.exit_code == 2, result.output
    assert "--execution 'spark' is not known" in result.output and "--backend is the old name" in result.output


@pytest.mark.parametrize("flag", ["--execution", "--backend"])
def test_audit_passes_execution_and_address_to_the_populations(tmp_path, monkeypatch, flag):
    seen = {}

    def stop(config, audit, data, mask, *, say=None, execution="local", address=None):
        seen.update(execution=execution, address=address)
        raise InputError("stopped here")

    monkeypatch.setattr("compress_gate.execution.require_ray", lambda what: None)
    monkeypatch.setattr("compress_gate.execution.check_address", lambda address: None)   # no cluster there
    monkeypatch.setattr("compress_gate.audit.population.obtain_populations", stop)
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["audit", str(recipe), flag, "ray", "--address", "10.0.0.1:6379"])
    assert result.exit_code == 2 and "stopped here" in result.output
    assert seen == {"execution": "ray", "address": "10.0.0.1:6379"}


@needs_ray
@pytest.mark.slow
def test_two_real_students_on_ray_after_one_teacher_task(tmp_path):
    # As tests/test_sweep.py's local test: 0.3 keeps the teacher's accuracy within 10 points, 0.98 does not.
    from tests._ray_fixtures import local_cluster

    recipe = tiny_recipe(tmp_path, limits=[{"metric": "accuracy", "change": "absolute", "min": -0.1,
                                            "bound": "point"}])
    with local_cluster(num_cpus=2):
        result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.3", "0.98", "--release",
                                          "--backend", "ray"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [row["verdict"] for row in summary["students"]] == ["pass", "fail"] and summary["chosen"] == 0.3
    runs = [json.loads((tmp_path / "sweep" / f"sparsity-{s}" / "run.json").read_text()) for s in ("0.3", "0.98")]
    assert [r["teacher"]["source"] for r in runs] == ["cache", "cache"]      # the teacher task trained it first
    assert len(list((tmp_path / ".cache").glob("teacher-*.pt"))) == 1
    assert (tmp_path / "sweep" / "release" / "manifest.json").is_file()
