"""``gate --backend ray``: tasks that read their own shards, the same report.json as the local streaming gate.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (a local cluster with 2 CPUs, started
and shut down by each test: about 25 s each). A bad shard is refused by the file checks before
any statistics are computed, in a task on Ray as in this process, so tests/test_gate_shards.py
covers the refusals for both backends (and tests/test_gate_ray_cluster.py a corrupt shard on a cluster).
"""

from __future__ import annotations

import pytest

from compress_gate.data import _shard_files

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from tests._ray_fixtures import local_cluster  # noqa: E402
from tests import test_gate_shards as local_tests  # noqa: E402
from tests.test_gate_shards import _gate, _report, _write  # noqa: E402

models = local_tests.models                    # the fixture: the data and the models' scores


def test_ray_tasks_give_the_local_report_bit_for_bit(tmp_path, models):
    dirs = _write(tmp_path / "in", models, 5, 3, seed=7)
    local, local_out = _gate(tmp_path, dirs, "local")
    with local_cluster(num_cpus=2):
        on_ray, ray_out = _gate(tmp_path, dirs, "ray", "--backend", "ray")
    assert local.exit_code == on_ray.exit_code and local.exit_code in (0, 1), on_ray.output
    assert _report(ray_out) == _report(local_out)
    assert (ray_out / "overrides.json").read_text() == (local_out / "overrides.json").read_text()



def test_the_driver_reads_no_shard_on_ray(tmp_path, models, monkeypatch):
    """Every shard file is read in a Ray worker (its own process, in its own directory, given the
    relative paths of the command line): reading one in this process fails."""
    dirs = {name: path.relative_to(tmp_path) for name, path in _write(tmp_path / "in", models, 5, 3, seed=7).items()}
    monkeypatch.chdir(tmp_path)
    local, local_out = _gate(tmp_path, dirs, "local")

    def refuse(path, **_):
        raise AssertionError(f"the driver read {path}")
    monkeypatch.setattr(_shard_files, "read_shard_columns", refuse)
    monkeypatch.setattr("compress_gate.data.shards.read_shard_columns", refuse)
    with local_cluster(num_cpus=2):
        on_ray, ray_out = _gate(tmp_path, dirs, "ray", "--backend", "ray")
    assert on_ray.exit_code == local.exit_code, on_ray.output
    assert _report(ray_out) == _report(local_out)

