"""Ray test helpers: a local cluster and a two-node cluster whose workers import this checkout, and
task bodies that Ray workers import by name (so they live in this module)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np

from compress_gate.errors import InputError
from compress_gate.pipeline.score import OrtScorer

ROOT = Path(__file__).resolve().parents[1]


class KillOnce(OrtScorer):
    """Kills its own worker process (SIGKILL) the first time it is given part 1; the flag file
    ``killed.flag`` beside the output directory records the pid it killed."""

    def __call__(self, batch):
        flag = self.out.parent / "killed.flag"
        if 1 in batch["index"].tolist() and not flag.exists():
            flag.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


@contextlib.contextmanager
def killing_the_pid_in(pid_file: Path, *, timeout: float) -> Iterator[list[int]]:
    """While the block runs, a thread waits up to ``timeout`` s for ``pid_file`` (written whole, by
    rename, by a worker that then waits to be killed) and kills the process it names with SIGKILL.
    Yields the list that receives that pid (empty when none was written in time); the thread is
    joined when the block ends."""
    killed: list[int] = []

    def kill_when_written() -> None:
        deadline = time.monotonic() + timeout
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_file.exists():
            killed.append(int(pid_file.read_text()))
            os.kill(killed[0], signal.SIGKILL)
    killer = threading.Thread(target=kill_when_written)
    killer.start()
    try:
        yield killed
    finally:
        killer.join()


def shard_sum(item: int) -> tuple[int, float]:
    """A stand-in for a shard's statistics: (item, a sum of 1,000 numbers seeded by the item)."""
    return item, float(np.random.default_rng(item).random(1000).sum())


@dataclass(frozen=True)
class WaitToBeKilled:
    """A task body that, for item ``victim`` and only the first time, writes its worker's pid to
    ``<folder>/pid`` and waits (up to 60 s) for the test to kill it; a retry records its own pid in
    ``<folder>/retried`` and returns :func:`shard_sum` like every other item."""

    folder: Path
    victim: int

    def __call__(self, item: int) -> tuple[int, float]:
        pid_file = self.folder / "pid"
        if item == self.victim:
            if pid_file.exists():
                (self.folder / "retried").write_text(str(os.getpid()))
            else:
                tmp = self.folder / ".pid.tmp"
                tmp.write_text(str(os.getpid()))
                tmp.replace(pid_file)              # the test reads a whole pid or none
                time.sleep(60)
        return shard_sum(item)


@dataclass(frozen=True)
class RefuseShard:
    """A task body that raises :class:`InputError` for ``bad`` and counts its calls in ``<folder>/calls-<item>``."""

    folder: Path
    bad: str

    def __call__(self, item: str) -> str:
        with open(self.folder / f"calls-{item}", "a", encoding="utf-8") as calls:
            calls.write("x")
        if item == self.bad:
            raise InputError(f"{item}: not an npz archive (corrupt shard). Rewrite or remove it.")
        return item.upper()


def refuse_or_sleep(item: str) -> str:
    """A task body that raises :class:`InputError` for ``"bad"`` at once and sleeps 2 s for any other item,
    so the job fails while other tasks are still running."""
    if item == "bad":
        raise InputError("bad: refused")
    time.sleep(2)
    return item


def shard_sum_and_node(item: int) -> tuple[tuple[int, float], str]:
    """(:func:`shard_sum` of ``item``, the id of the Ray node the task ran on)."""
    import ray

    return shard_sum(item), ray.get_runtime_context().get_node_id()


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _auth_token(token: dict[str, str]) -> Iterator[None]:
    """This process uses ``token`` (RAY_AUTH_MODE / RAY_AUTH_TOKEN) while inside. Ray caches its
    auth mode and token per process, so the cache is reset on the way in and out, as Ray's own
    tests do (``ray._private.authentication_test_utils.reset_auth_token_state``)."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    try:
        with _environment(**token):
            reset_auth_token_state()
            yield
    finally:
        reset_auth_token_state()


def _pythonpath() -> str:
    saved = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(ROOT)] + ([saved] if saved else []))


#: The folder of the test-only ``sitecustomize`` that holds the sharded gate's first statistics task.
HOLD_PATH = Path(__file__).with_name("_hold_task")
HOLD_ENV = "COMPRESS_GATE_TEST_HOLD_TASK"


def holding_the_first_task(monkeypatch: Any, folder: Path) -> None:
    """Make the Ray workers started after this call hold the gate's first statistics task: its
    worker writes its pid to ``folder/pid`` and sleeps 60 s (tests/_hold_task/sitecustomize.py)."""
    monkeypatch.setenv(HOLD_ENV, str(folder))
    saved = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HOLD_PATH)] + ([saved] if saved else [])))


@contextlib.contextmanager
def local_cluster(num_cpus: int = 2) -> Iterator[None]:
    """``ray.init(num_cpus=...)`` with this checkout first on the workers' PYTHONPATH; shut down after."""
    import ray

    with _environment(PYTHONPATH=_pythonpath()):
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """``ray start ... --block`` in its own session (process group), logging to ``log``; returns once the
    node is up (its log says so), else kills its group and raises."""
    ports = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
    command = [str(Path(sys.executable).with_name("ray")), "start", "--block", "--num-cpus", "1",
               "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args]
    for flag in ports:
        command += [flag, str(_free_port())]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while b"Ray runtime started" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"`{' '.join(command)}` did not start a node:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return process


def _stop(process: subprocess.Popen) -> None:
    """Stop one ``ray start --block`` and every process it started: signal its own process group only
    (SIGTERM; SIGKILL after 10 s). Never ``ray stop``, which stops every Ray process on the machine."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)            # the group's other members, if any outlived it


@contextlib.contextmanager
def two_node_cluster() -> Iterator[str]:
    """A two-node Ray cluster on this machine; yields its address (``127.0.0.1:PORT``).

    Head: ``ray start --head --num-cpus 1 --resources '{"node1": 1}'``; second node:
    ``ray start --address ... --num-cpus 1 --resources '{"node2": 1}'``, so a task asking for
    ``{"node2": 1}`` runs on the second node. Each node has its own ``--temp-dir`` under a
    new ``/tmp/cg-ray-*`` directory, free ports, this checkout first on its workers' PYTHONPATH,
    and a fresh token (``RAY_AUTH_MODE=token``) that this process also holds while the cluster
    lives, so ``ray.init(address=...)`` (e.g. ``--address`` of a command) connects. Both nodes
    are stopped on exit, each by its own process group (never ``ray stop``), and the temp dirs removed.
    """
    root = Path(tempfile.mkdtemp(prefix="cg-ray-", dir="/tmp"))     # short: Ray's socket paths must fit
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **token, "PYTHONPATH": _pythonpath()}
    port = _free_port()
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(_ray_start(["--head", "--port", str(port), "--temp-dir", str(root / "head"),
                                 "--include-dashboard", "false", "--dashboard-port", str(_free_port()),
                                 "--resources", '{"node1": 1}'],
                                root / "head.log", env))
        nodes.append(_ray_start(["--address", f"127.0.0.1:{port}", "--temp-dir", str(root / "node2"),
                                 "--resources", '{"node2": 1}'], root / "node2.log", env))
        with _auth_token(token):
            yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(root, ignore_errors=True)

