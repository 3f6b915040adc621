"""Issue 20 on Ray: ``--address`` is checked before any work (exit 2 naming it, in seconds, for gate,
score, sweep and audit; refused without ``--execution ray``), SIGTERM during a Ray gate exits 143
with the interrupted message and leaves no Ray process behind, and the shard refusals of
tests/test_fail_closed_shards.py hold on Ray too (the checks' summaries come from Ray tasks).

Skipped without Ray (the ``[ray]`` extra). The address checks start no cluster; the tests that
do are marked slow.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from compress_gate import execution as execution_module  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from tests._gate_data import make_data  # noqa: E402
from tests._id_collisions import COLLIDING_PAIRS  # noqa: E402
from tests._ray_fixtures import HOLD_ENV, HOLD_PATH, ROOT, local_cluster  # noqa: E402
from tests.test_data_shards import _write_dirs  # noqa: E402
from tests.test_fail_closed_inputs import _invoke  # noqa: E402
from tests.test_fail_closed_shards import _collision_layout, _gate  # noqa: E402
from tests.test_pipeline_config import write_recipe  # noqa: E402

DEAD = "127.0.0.1:1"           # nothing listens on port 1


def _command(name: str, tmp_path: Path, *extra: str) -> list:
    """``name``'s command line with inputs good enough that only the Ray options decide."""
    recipe = write_recipe(tmp_path / "recipe.yaml")
    if name == "gate":
        dirs = _write_dirs(tmp_path, make_data(), 2, 1)
        return ["gate", "--data", dirs["data"], "--teacher", dirs["teacher"], "--student", dirs["student"],
                "--out", tmp_path / "out", *extra]
    if name == "score":
        return ["score", tmp_path / "model.onnx", tmp_path / "data.npz", "--out", tmp_path / "preds", *extra]
    if name == "sweep":
        return ["sweep", recipe, "--sparsity", "0.5", *extra]
    return ["audit", recipe, *extra]


@pytest.mark.parametrize("name", ["gate", "score", "sweep", "audit"])
def test_an_address_where_nothing_answers_is_exit_2_in_seconds(tmp_path, name):
    start = time.monotonic()
    code, message = _invoke(_command(name, tmp_path, "--execution", "ray", "--address", DEAD))
    assert code == 2, message
    assert f"--address '{DEAD}': no Ray cluster answers there" in message and "Connection refused" in message
    assert time.monotonic() - start < 60                   # gate waited 600 s and more, score and sweep 90 s
    assert not (tmp_path / "out").exists() and not (tmp_path / "preds").exists()


@pytest.mark.parametrize("name", ["gate", "score", "sweep", "audit"])
def test_an_address_without_execution_ray_is_refused(tmp_path, name):
    code, message = _invoke(_command(name, tmp_path, "--address", DEAD))
    assert code == 2, message
    assert f"--address '{DEAD}' names a Ray cluster, but the execution is 'local'" in message
    assert "Add --execution ray" in message


def test_a_dead_ray_address_variable_is_named_like_the_option(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", DEAD)               # ray.init reads it when no --address is given
    code, message = _invoke(_command("gate", tmp_path, "--execution", "ray"))
    assert code == 2 and f"RAY_ADDRESS '{DEAD}': no Ray cluster answers there" in message, message
    assert "unset RAY_ADDRESS" in message


@pytest.mark.parametrize("address", ["nohost", "host:port", "10.0.0.1:0", "10.0.0.1:70000", ":6379"])
def test_a_malformed_address_is_refused_before_any_connection(address):
    with pytest.raises(InputError, match="is not a Ray cluster address. Give HOST:PORT"):
        execution_module.check_address(address)


def test_a_silent_address_times_out(monkeypatch):
    monkeypatch.setattr(execution_module, "CONNECT_TIMEOUT_S", 0.5)
    start = time.monotonic()
    with pytest.raises(InputError, match=r"'192\.0\.2\.7:6379': no Ray cluster answers there .* within 0\.5 s"):
        execution_module.check_address("192.0.2.7:6379")           # TEST-NET-1: never routed
    assert time.monotonic() - start < 10


def test_an_address_that_accepts_a_connection_passes_the_check():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        host, port = server.getsockname()
        execution_module.check_address(f"{host}:{port}")
        execution_module.check_address(f"ray://{host}:{port}")


# --- on a cluster --------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigterm_during_a_ray_gate_exits_143_and_leaves_no_ray_process(tmp_path):
    dirs = _write_dirs(tmp_path / "in", make_data(), 3, 2)
    hold = tmp_path / "hold"
    hold.mkdir()
    env = {**os.environ, HOLD_ENV: str(hold),     # the test-only sitecustomize holds the first task
           "PYTHONPATH": os.pathsep.join([str(HOLD_PATH), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", "from compress_gate.cli import main; main()", "gate", "--data", dirs["data"],
               "--teacher", dirs["teacher"], "--student", dirs["student"], "--out", tmp_path / "out",
               "--execution", "ray"]
    proc = subprocess.Popen([str(c) for c in command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 180
        while not (hold / "pid").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (hold / "pid").exists(), proc.communicate(timeout=60)
        ray_processes = psutil.Process(proc.pid).children(recursive=True)   # GCS, raylet, agents, workers
        assert any(p.name() == "raylet" for p in ray_processes)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err               # was 15 (Ray's handler) or -6/134 (a native abort)
        assert "interrupted: interrupted by SIGTERM" in " ".join(err.split())
        assert time.monotonic() - start < 60             # was ~31 s
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in ray_processes) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [p.name() for p in ray_processes if _alive(p)]
        assert not (tmp_path / "out" / "report.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_shard_refusals_hold_on_ray(tmp_path):
    """One cluster for the three: a duplicate hidden by a real collision, prediction shards of
    another width, and a manifest that omits a shard; each is exit 2 naming the shard."""
    import numpy as np

    from compress_gate.data._shard_files import write_shard

    collided, _ = _collision_layout(tmp_path / "collision", COLLIDING_PAIRS[0], duplicate_in="teacher")
    del collided
    collision = {name: tmp_path / "collision" / name for name in ("data", "teacher", "student")}
    wide = _write_dirs(tmp_path / "wide", make_data(), 2, 2)
    shard = wide["teacher"] / "p001.npz"
    with np.load(shard) as f:
        write_shard(shard, {"ids": f["ids"], "scores": np.c_[f["scores"], f["scores"][:, :1]]})
    omitted = _write_dirs(tmp_path / "omitted", make_data(), 3, 2)
    (omitted["data"] / "manifest.json").write_text(
        '{"shards": [{"file": "part-000.npz", "rows": %d}]}' % np.load(omitted["data"] / "part-000.npz")["ids"].size)
    expected = {"collision": ("1 id(s) occur in both predictions shards", "p000.npz and"),
                "wide": (f"{shard}: `scores` has 4 columns", "K = 3"),
                "omitted": ("part-001.npz, part-002.npz are in the directory but not listed in manifest.json",)}
    with local_cluster(num_cpus=2):
        for name, dirs in (("collision", collision), ("wide", wide), ("omitted", omitted)):
            work = tmp_path / f"run-{name}"
            work.mkdir()
            code, message = _gate(work, dirs, "--execution", "ray")
            assert code == 2, (name, message)
            for part in expected[name]:
                assert part in message, (name, part, message)
