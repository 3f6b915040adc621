"""``audit`` and ``sweep`` with ``--backend local|ray [--address ADDR]``.

The fast tests need no Ray: a missing [ray] extra is exit 2 naming it, before any work; the
options reach the library. The slow one runs a sweep's (stand-in) students as Ray tasks on a
local cluster, the teacher task first.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.errors import InputError
from compress_gate.pipeline import sweep as sweep_module
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
    assert "--backend 'spark' is not known" in result.output


def test_audit_passes_backend_and_address_to_the_populations(tmp_path, monkeypatch):
    seen = {}

    def stop(config, audit, data, mask, *, say=None, backend="local", address=None):
        seen.update(backend=backend, address=address)
        raise InputError("stopped here")

    monkeypatch.setattr("compress_gate._ray.require_ray", lambda what: None)
    monkeypatch.setattr("compress_gate.audit.population.obtain_populations", stop)
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["audit", str(recipe), "--backend", "ray", "--address", "10.0.0.1:6379"])
    assert result.exit_code == 2 and "stopped here" in result.output
    assert seen == {"backend": "ray", "address": "10.0.0.1:6379"}


@needs_ray
@pytest.mark.slow
def test_sweep_students_run_as_ray_tasks_after_the_teacher(tmp_path_factory, monkeypatch):
    # the stand-in reports are not full reports: tmp_path_factory keeps conftest's schema check off them
    from tests._ray_fixtures import fake_sweep_student, fake_sweep_teacher, local_cluster

    monkeypatch.setattr(sweep_module, "_train_teacher", fake_sweep_teacher)
    monkeypatch.setattr(sweep_module, "_run_student", fake_sweep_student)
    monkeypatch.setattr("compress_gate.bundle.verify_bundle", lambda path: None)
    tmp_path = tmp_path_factory.mktemp("ray-sweep")
    recipe = tiny_recipe(tmp_path, limits=[])
    with local_cluster(num_cpus=2):
        result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.9", "0.5", "0.8", "--release",
                                          "--backend", "ray"])
    assert result.exit_code == 0, result.output
    sweep_dir = tmp_path / "sweep"
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["chosen"] == 0.8 and [row["verdict"] for row in summary["students"]] == ["pass", "pass", "fail"]
    assert (sweep_dir / "release" / "model.onnx").read_text() == "student 0.8"
    teacher = int((tmp_path / ".cache" / "teacher.pid").read_text())
    for sparsity in ("0.5", "0.8", "0.9"):
        pid, note = (sweep_dir / f"sparsity-{sparsity}" / "student.pid").read_text().split(" ", 1)
        assert int(pid) != os.getpid() and note == "teacher first: True"     # a Ray worker, after the teacher
    assert teacher != os.getpid()
