"""``gate --backend ray`` on real clusters: a two-node cluster on this machine gives the one-process
streaming gate's report.json; a worker killed mid-gate is retried by Ray and the report is the same;
a corrupt shard is exit 2 naming it, with nothing in ``--out``.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (one two-node cluster, 1 CPU per node, and
one local cluster with 2 CPUs, each started and shut down here: 65–95 s in all, measured).
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from tests import test_gate_shards as local_tests  # noqa: E402
from tests._ray_fixtures import (holding_the_first_task, killing_the_pid_in, local_cluster,  # noqa: E402
                                 two_node_cluster)
from tests.test_gate_shards import _gate, _report, _write  # noqa: E402

models = local_tests.models                    # the fixture: the data and the models' scores


@pytest.fixture(scope="module")
def address():
    with two_node_cluster() as address:
        yield address


@pytest.fixture()
def undisturbed(tmp_path, models):
    """Shard directories (5 data shards, 3 per model, shuffled) and the one-process streaming gate's
    (exit code, report without timings and paths, overrides.json)."""
    dirs = _write(tmp_path / "in", models, 5, 3, seed=7)
    result, out = _gate(tmp_path, dirs, "local")
    assert result.exit_code in (0, 1), result.output
    return dirs, (result.exit_code, _report(out), (out / "overrides.json").read_text())


def test_a_two_node_cluster_gives_the_one_process_report(tmp_path, undisturbed, address):
    dirs, expected = undisturbed
    result, out = _gate(tmp_path, dirs, "ray", "--backend", "ray", "--address", address)
    assert (result.exit_code, _report(out), (out / "overrides.json").read_text()) == expected, result.output


def test_a_corrupt_shard_on_the_cluster_is_exit_2_naming_it_and_nothing_is_written(tmp_path, models, address,
                                                                                   monkeypatch):
    dirs = _write(tmp_path / "in", models, 3, 2, seed=None)
    (dirs["data"] / "part-001.npz").write_bytes(b"not a zip file")
    cancelled = []          # ray.cancel racing a finishing task aborts the driver (ray-project/ray#54846)
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: cancelled.append(ref))
    result, out = _gate(tmp_path, dirs, "ray", "--backend", "ray", "--address", address)
    assert result.exit_code == 2, result.output
    assert "part-001.npz" in result.output and "Traceback" not in result.output
    assert not out.exists()
    assert cancelled == []


def test_a_worker_killed_mid_gate_is_retried_and_the_report_is_identical(tmp_path, undisturbed, monkeypatch):
    dirs, expected = undisturbed
    hold = tmp_path / "hold"
    hold.mkdir()
    holding_the_first_task(monkeypatch, hold)     # before the cluster starts: its workers inherit it
    # the first statistics task's worker writes its pid, then sleeps 60 s
    with local_cluster(num_cpus=2), killing_the_pid_in(hold / "pid", timeout=90) as killed:
        started = time.monotonic()
        result, out = _gate(tmp_path, dirs, "ray", "--backend", "ray")
        elapsed = time.monotonic() - started
    assert killed and killed[0] != os.getpid(), result.output
    assert elapsed < 60, elapsed                  # not the victim's 60 s sleep: its worker was killed
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)                     # and is gone, so its shard was computed by a retry
    assert (result.exit_code, _report(out), (out / "overrides.json").read_text()) == expected, result.output
