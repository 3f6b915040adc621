"""A real MLflow tracking server on 127.0.0.1 for the tracking tests (SQLite backend store,
local artifact root), started and stopped by the test session like the Ray tests' clusters;
and a stand-in for one student's ``compress-gate run`` that writes real gate files and a real
bundle without training (the sweep's MLflow record is under test, not compression)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _engine_fixtures import write_tiny_onnx
from _gate_data import PASSABLE_LIMITS_YAML, write_files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(root: Path, *, start_timeout: float = 240.0) -> Iterator[str]:
    """``mlflow server`` on a free local port (its own process group); yields its URI, stops it after."""
    port = free_port()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({proc.returncode}): {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server not up after {start_timeout} s: "
                                   f"{(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def student_run_stand_in(passing: set[float]):
    """A ``run_recipe`` replacement: the recipe's student is judged by the real gate on synthetic
    predictions (faithful when its sparsity is in ``passing``, biased otherwise, limits PASSABLE_LIMITS_YAML)
    and, on a pass, a real release bundle (a tiny ONNX model, manifest) is written."""
    from compress_gate.bundle import write_refusal, write_release
    from compress_gate.config.run import load_run_config
    from compress_gate.pipeline.gate import run_gate
    from compress_gate.pipeline.run import RunOutcome

    def run_recipe(path, *, console=None):
        config = load_run_config(path)
        sparsity = float(config.compression.recipe.split("final_sparsity: ")[1].split("\n")[0])
        run_dir = config.output
        inputs = run_dir / "inputs"
        inputs.mkdir(parents=True)
        files = write_files(inputs, biased=sparsity not in passing)
        (inputs / "limits.yaml").write_text(PASSABLE_LIMITS_YAML)
        result, _ = run_gate(data=files["data"], out=run_dir / "gate", limits=inputs / "limits.yaml",
                             teacher=files["teacher"], students=[files["student_0"]])
        if result.passed:
            model = write_tiny_onnx(inputs / "student.onnx")
            bundle = write_release(run_dir, gate_dir=run_dir / "gate", model_onnx=model, recipe_hash="a" * 64,
                                   seed=0, metrics_summary={"sparsity": sparsity},
                                   model_info={"engine": "onnxruntime", "input_shape": [3, 8, 8]})
        else:
            bundle = write_refusal(run_dir, gate_dir=run_dir / "gate")
        return RunOutcome(passed=result.passed, run_dir=run_dir, bundle_dir=bundle, report=result.report,
                          summary={}, stage_seconds={"gate": 1.0})

    return run_recipe
