"""Fail-closed outputs (issue 9, output half): one policy for every command that writes.

Table-driven over commands and bad output situations: the exit code, no traceback, the
message naming the path, and exactly what is left on disk. Then the stale-result rules
(a failed call leaves no earlier "pass"; a successful one leaves no earlier file), a full
disk injected into the writer, file modes under two umasks, and SIGTERM during ``run``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from _gate_data import LIMITS_YAML, write_files
from _tree import tree_state
from _worlds import needs_sparseml
from compress_gate._outdir import MARKER, check_output_file, fresh_directory
from compress_gate.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
RO_DIR = Path("/sys")  # sysfs: no new file can be made there, even by root


def flat(result) -> str:
    return " ".join(result.output.split())


def run_recipe_file(tmp_path: Path, output: Path, **extra) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "output": str(output), "model": {"arch": "resnet", "width": 4, "train": {"epochs": 1}},
        "data": {"kind": "demo"},
        "compression": {"recipe": "modifiers:\n  - !EpochRangeModifier\n    start_epoch: 0\n    end_epoch: 1\n"},
        **extra}))
    return path


# --- commands, each given the output path under test -------------------------------
def gate_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["gate", "--data", str(tmp_path / "data.npz"), "--teacher", str(tmp_path / "t.npz"),
            "--student", str(tmp_path / "s.npz"), "--out", str(out)]


def run_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["run", str(run_recipe_file(tmp_path, out))]


def audit_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["audit", str(run_recipe_file(tmp_path, tmp_path / "runs" / "x", audit={"output": str(out)}))]


def predict_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["predict", str(tmp_path / "release"), str(tmp_path / "x.npz"), "--out", str(out)]


def bench_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["bench", str(tmp_path / "m.onnx"), "-e", "onnxruntime", "--out", str(out)]


def init_argv(tmp_path: Path, out: Path) -> list[str]:
    return ["init", str(out), "--force"]


DIR_COMMANDS = {"gate": gate_argv, "run": run_argv, "audit": audit_argv}
FILE_COMMANDS = {"predict": predict_argv, "bench": bench_argv, "init": init_argv}


# --- bad output situations: (make it, expected words, check what is left) -----------
def _regular_file(tmp_path: Path) -> Path:
    out = tmp_path / "taken"
    out.write_bytes(b"mine")
    return out


def _foreign_dir(tmp_path: Path) -> Path:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_bytes(b"mine")
    return out


def _parent_is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_bytes(b"mine")
    return tmp_path / "plain" / "out"


def _read_only(tmp_path: Path) -> Path:
    try:
        fd, probe = tempfile.mkstemp(dir=RO_DIR)
    except OSError:
        return RO_DIR / "compress-gate-test-out"
    os.close(fd)
    os.unlink(probe)
    pytest.skip(f"{RO_DIR} is writable here")


def _fifo(tmp_path: Path) -> Path:
    out = tmp_path / "pipe"
    os.mkfifo(out)
    return out


def _char_device(tmp_path: Path) -> Path:
    out = tmp_path / "null"  # a copy of /dev/null's node: the real one must never be at risk
    try:
        os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    return out


DIR_SITUATIONS = {
    "regular file": (_regular_file, "is a regular file, not a directory"),
    "foreign non-empty directory": (_foreign_dir, "not a compress-gate"),
    "parent is a file": (_parent_is_a_file, "cannot write"),
    "read-only location": (_read_only, "cannot write"),
}
FILE_SITUATIONS = {
    "directory": (_foreign_dir, "is a directory, not a regular file"),
    "FIFO": (_fifo, "is a FIFO (named pipe), not a regular file"),
    "device": (_char_device, "is a character device, not a regular file"),
    "parent is a file": (_parent_is_a_file, "cannot write"),
    "read-only location": (_read_only, "cannot write"),
}


@pytest.fixture()
def no_work(monkeypatch):
    """Any work before the output check fails the test: the check must come first."""
    import compress_gate.data
    import compress_gate.engines.benchmark

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(compress_gate.engines.benchmark, "benchmark_models", forbidden)
    monkeypatch.setattr(compress_gate.data, "load_dataset", forbidden)
    monkeypatch.setattr("compress_gate.data.sources.load_dataset", forbidden)
    monkeypatch.setattr("compress_gate.audit.population.obtain_populations", forbidden)


@pytest.mark.parametrize("situation", DIR_SITUATIONS)
@pytest.mark.parametrize("command", [pytest.param(c, marks=needs_sparseml) if c == "run" else c
                                     for c in DIR_COMMANDS])
def test_bad_output_directory_exits_2_naming_it_and_touches_nothing(command, situation, tmp_path, no_work):
    make, words = DIR_SITUATIONS[situation]
    out = make(tmp_path)
    argv = DIR_COMMANDS[command](tmp_path, out)
    before = tree_state(tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert str(out) in flat(result) and words in flat(result)
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("situation", FILE_SITUATIONS)
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_bad_output_file_exits_2_naming_it_and_touches_nothing(command, situation, tmp_path, no_work):
    make, words = FILE_SITUATIONS[situation]
    out = make(tmp_path)
    argv = FILE_COMMANDS[command](tmp_path, out)
    before = tree_state(tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output   # for bench never 1 ("refused" to CI)
    assert "Traceback" not in result.output
    assert str(out) in flat(result) and words in flat(result)
    assert tree_state(tmp_path) == before


def test_the_real_dev_null_is_refused_without_writing():
    from compress_gate.errors import InputError

    with pytest.raises(InputError, match=r"/dev/null: the recipe file is a character device, not a regular file"):
        check_output_file("/dev/null", what="recipe file")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlink_is_never_replaced(tmp_path):
    (tmp_path / "real.yaml").write_text("mine")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "real.yaml")
    result = runner.invoke(app, ["init", str(tmp_path / "link.yaml"), "--force"])
    assert result.exit_code == 2 and "is a symbolic link, not a regular file" in flat(result)
    assert (tmp_path / "link.yaml").is_symlink() and (tmp_path / "real.yaml").read_text() == "mine"


# --- stale results -------------------------------------------------------------------
@pytest.fixture(scope="module")
def faithful(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("faithful"), biased=False, students=1)


def _gate(files, out, limits):
    return runner.invoke(app, ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]),
                               "--student", str(files["student_0"]), "--limits", str(limits), "--out", str(out)])


@pytest.fixture()
def limits(tmp_path):
    path = tmp_path / "limits.yaml"
    path.write_text(LIMITS_YAML)
    return path


@pytest.fixture()
def passed_out(faithful, limits, tmp_path):
    out = tmp_path / "out"
    result = _gate(faithful, out, limits)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["verdict"] == "pass"
    return out


def _siblings(out: Path) -> set[str]:
    return {p.name for p in out.parent.iterdir()}


def test_gate_output_is_exactly_the_current_files_with_the_marker(passed_out):
    assert sorted(p.name for p in passed_out.iterdir()) == sorted(
        [MARKER, "report.json", "junit.xml", "thresholds.json", "overrides.json", "report.html", "MODEL_CARD.md"])


def test_a_gate_call_that_exits_2_leaves_no_earlier_pass(passed_out, faithful, tmp_path):
    before = _siblings(passed_out)
    result = _gate(faithful, passed_out, tmp_path / "missing-limits.yaml")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not passed_out.exists()
    assert _siblings(passed_out) == before - {"out"}          # no temporary left beside it


def test_a_gate_call_that_exits_3_leaves_no_earlier_pass(passed_out, faithful, limits, monkeypatch):
    import compress_gate.pipeline.gate
    from compress_gate.errors import RuntimeFailure

    def crash(*args, **kwargs):
        raise RuntimeFailure("the engine crashed")

    monkeypatch.setattr(compress_gate.pipeline.gate, "evaluate", crash)
    result = _gate(faithful, passed_out, limits)
    assert result.exit_code == 3 and "the engine crashed" in flat(result)
    assert not passed_out.exists()


def test_no_file_of_an_earlier_call_survives_a_successful_one(passed_out, faithful, limits):
    (passed_out / "predictions").mkdir()
    (passed_out / "predictions" / "teacher.npz").write_bytes(b"old")
    (passed_out / "old-report.json").write_text('{"verdict": "pass"}')
    result = _gate(faithful, passed_out, limits)
    assert result.exit_code == 0
    assert not (passed_out / "predictions").exists() and not (passed_out / "old-report.json").exists()


def test_a_full_disk_leaves_no_pass_without_the_rest(passed_out, faithful, limits, monkeypatch):
    import compress_gate.report.html

    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(compress_gate.report.html, "write_text", full)
    before = _siblings(passed_out)
    result = _gate(faithful, passed_out, limits)
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    assert str(passed_out) in flat(result) and "No space left on device" in flat(result)
    assert not passed_out.exists()                              # neither the old pass nor a partial new one
    assert _siblings(passed_out) == before - {"out"}


def test_a_failed_predict_removes_its_stale_output(tmp_path):
    out = tmp_path / "p.npz"
    out.write_bytes(b"predictions of an earlier call")
    result = runner.invoke(app, predict_argv(tmp_path, out))      # no such bundle: exit 2
    assert result.exit_code == 2 and not out.exists()


def test_a_failed_init_write_keeps_the_existing_recipe(tmp_path, monkeypatch):
    import compress_gate.config.starter

    target = tmp_path / "recipe.yaml"
    target.write_text("# my edits\n")

    def full(name):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(compress_gate.config.starter, "starter_recipe", full)
    result = runner.invoke(app, ["init", str(target), "--force"])
    assert result.exit_code == 3 and "Traceback" not in result.output and str(target) in flat(result)
    assert target.read_text() == "# my edits\n" and sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"]


@needs_sparseml
def test_run_replaces_an_earlier_run_so_its_release_cannot_pass(tmp_path, monkeypatch):
    import compress_gate.data
    from compress_gate.errors import InputError

    run_dir = fresh_directory(tmp_path / "runs" / "x")
    (run_dir / "release").mkdir()
    (run_dir / "release" / "report.json").write_text('{"verdict": "pass"}')

    def broken(*args, **kwargs):
        raise InputError("bad column")

    monkeypatch.setattr(compress_gate.data, "load_dataset", broken)
    monkeypatch.setattr("compress_gate.compress.check_recipe", lambda *a, **k: None)  # SparseML's import: slow
    result = runner.invoke(app, run_argv(tmp_path, run_dir))
    assert result.exit_code == 2
    assert sorted(p.name for p in run_dir.iterdir()) == [MARKER, "recipe.yaml", "run.json", "sparseml_recipe.yaml"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


@needs_sparseml
def test_run_refused_before_work_removes_an_earlier_run(tmp_path, monkeypatch):
    import compress_gate.engines

    monkeypatch.setattr(compress_gate.engines, "engine_availability",
                        lambda: {"onnxruntime": "broken here", "deepsparse": None, "onnxruntime-cuda": "no",
                                 "onnxruntime-tensorrt": "no"})
    run_dir = fresh_directory(tmp_path / "runs" / "x")
    (run_dir / "release").mkdir()
    result = runner.invoke(app, run_argv(tmp_path, run_dir))
    assert result.exit_code == 2 and "broken here" in flat(result)
    assert not run_dir.exists()


# --- file modes follow the umask -----------------------------------------------------
@pytest.mark.parametrize(("umask", "dir_mode", "file_mode"), [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_outputs_follow_the_umask(umask, dir_mode, file_mode, faithful, limits, tmp_path):
    from compress_gate.pipeline._record import RunRecord

    previous = os.umask(umask)
    try:
        assert _gate(faithful, tmp_path / "out", limits).exit_code == 0
        assert runner.invoke(app, ["init", str(tmp_path / "recipe.yaml")]).exit_code == 0
        run_dir = fresh_directory(tmp_path / "runs" / "x")
        RunRecord(run_dir, {"seed": 0})
    finally:
        os.umask(previous)
    for directory in (tmp_path / "out", run_dir):
        assert directory.stat().st_mode & 0o777 == dir_mode
        assert {p.stat().st_mode & 0o777 for p in directory.iterdir()} == {file_mode}
    assert (tmp_path / "recipe.yaml").stat().st_mode & 0o777 == file_mode


# --- SIGTERM during run ----------------------------------------------------------------
_SLOW_STAGE = """
import os, sys, time
import compress_gate.compress, compress_gate.data, compress_gate.pipeline.run
from compress_gate.engines.ds_worker import WorkerProcess
import _engine_fixtures as fx

def slow_load(config, *, base_dir, progress=None):
    out = os.environ["RUN_DIR"]
    with open(os.path.join(out, "data.npz"), "wb") as handle:
        handle.write(b"half written")
    worker = WorkerProcess(fx.never_answer, (), label="test worker")
    try:
        print("READY", worker.pid, flush=True)
        time.sleep(60)
    finally:
        worker.stop(graceful=False)

compress_gate.data.load_dataset = slow_load
compress_gate.compress.check_recipe = lambda *a, **k: None       # SparseML's import is not under test
compress_gate.pipeline.run._seed_everything = lambda seed: None  # nor torch's
from compress_gate.cli import main
sys.argv = ["compress-gate", "run", sys.argv[1]]
main()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as handle:
            return "\nState:\tZ" not in handle.read()
    except FileNotFoundError:
        return False


def _child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), **extra}


@needs_sparseml
def test_sigterm_during_run_records_the_interrupted_stage_and_stops_the_worker(tmp_path):
    run_dir = tmp_path / "runs" / "x"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_STAGE, str(run_recipe_file(tmp_path, run_dir))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_child_env(RUN_DIR=str(run_dir)))
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY"), line + proc.stderr.read()
        worker = int(line.split()[1])
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "interrupted by SIGTERM" in stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["interrupted_stage"] == "data"
    assert record["removed_partial"] == ["data.npz"] and not (run_dir / "data.npz").exists()
    assert not _alive(worker)


_KILLED_PARENT = """
import sys, time
from compress_gate.engines.ds_worker import WorkerProcess
import _engine_fixtures as fx
worker = WorkerProcess(fx.never_answer, (), label="test worker")
time.sleep(1.0)  # let the child install its guard
print(worker.pid, flush=True)
time.sleep(60)
"""


def test_the_worker_dies_with_a_killed_parent():
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT], stdout=subprocess.PIPE, text=True,
                            env=_child_env())
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.kill()                       # SIGKILL: no handler, no cleanup in the parent
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:
        proc.kill()


def test_sigterm_becomes_an_interrupt_only_inside_the_block():
    from compress_gate._signals import Interrupted, terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted, match="interrupted by SIGTERM") as caught, terminate_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert caught.value.signum == signal.SIGTERM and isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_current_directory_is_never_replaced(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    for out in (".", str(tmp_path)):
        result = runner.invoke(app, gate_argv(tmp_path, Path(out)))
        assert result.exit_code == 2 and "(or holds) the current directory" in flat(result), result.output
    assert (tmp_path / "here").is_dir() and Path.cwd() == (tmp_path / "here")
