"""The light core: `gate`, `predict` and `bench` run with torch, SparseML and DeepSparse unimportable,
and `run` without a compression backend exits 2 naming the extra to install.

Each command runs in a fresh interpreter whose path finder does not see the heavy packages
(``importlib.util.find_spec`` returns None and ``import torch`` raises ModuleNotFoundError, as
on a core install); afterwards none of them may be in ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from _gate_data import LIMITS_YAML, write_files
from test_bundle_runtime import inputs, make_bundle

HEAVY = ("torch", "sparseml", "deepsparse", "sparsezoo", "torchvision")

# Runs the CLI with HEAVY invisible; prints {"exit": code, "loaded": [...]} as its last line.
_PRELUDE = """
import importlib.machinery, json, sys
HEAVY = set(json.loads(sys.argv[1]))

class _Hidden(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [_Hidden if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
sys.argv = ["compress-gate", *sys.argv[2:]]
from compress_gate.cli import app
code = app(standalone_mode=False)
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in HEAVY)
print(json.dumps({"exit": code or 0, "loaded": loaded}))
"""


def _run_blocked(*args: str | Path) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", _PRELUDE, json.dumps(HEAVY), *map(str, args)],
                          capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no result line; stderr:\n{proc.stderr}"
    return json.loads(lines[-1]), proc.stdout + proc.stderr


def test_gate_runs_without_torch_sparseml_or_deepsparse(tmp_path):
    files = write_files(tmp_path, biased=False)
    limits = tmp_path / "limits.yaml"
    limits.write_text(LIMITS_YAML)
    result, output = _run_blocked("gate", "--data", files["data"], "--teacher", files["teacher"],
                                  "--student", files["student_0"], "--limits", limits, "--out", tmp_path / "out")
    assert result["exit"] in (0, 1), output            # a verdict, not an input or runtime error
    assert (tmp_path / "out" / "report.json").is_file()
    assert result["loaded"] == [], output


def test_predict_runs_without_torch_sparseml_or_deepsparse(tmp_path):
    bundle = make_bundle(tmp_path)
    np.savez(tmp_path / "x.npz", inputs=inputs(4))
    result, output = _run_blocked("predict", bundle, tmp_path / "x.npz", "--out", tmp_path / "p.npz")
    assert result["exit"] == 0, output
    assert (tmp_path / "p.npz").is_file()
    assert result["loaded"] == [], output


def test_bench_on_onnxruntime_runs_without_torch_sparseml_or_deepsparse(tmp_path):
    from _engine_fixtures import write_tiny_onnx

    model = write_tiny_onnx(tmp_path / "tiny.onnx")
    result, output = _run_blocked("bench", model, "--engine", "onnxruntime", "--batch-size", "2",
                                  "--iterations", "2", "--warmup", "0", "--json")
    assert result["exit"] == 0, output
    assert result["loaded"] == [], output


def test_run_without_a_backend_exits_2_naming_the_extra(tmp_path):
    recipe = Path(__file__).resolve().parents[1] / "recipes" / "demo.yaml"
    text = recipe.read_text().replace("output: ../runs/demo", f"output: {tmp_path / 'run'}")
    (tmp_path / "demo.yaml").write_text(text)
    result, output = _run_blocked("run", tmp_path / "demo.yaml")
    assert result["exit"] == 2, output
    assert "compress-gate[sparseml]" in output and "compression.backend" in output
    assert result["loaded"] == [], output
    assert not (tmp_path / "run" / "data.npz").exists()     # refused before any stage ran
