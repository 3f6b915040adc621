"""The [torch] world end to end: `compress-gate run` on the maintained backend's recipes.

Slow (a teacher and a student are trained); `make test-torch` runs it in the [torch]
environment, and it skips, with the reason, where torch or Torch-Pruning is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("torch", reason="needs the [torch] extra: `make install-torch`")
pytest.importorskip("torch_pruning", reason="needs the [torch] extra (Torch-Pruning): `make install-torch`")

from compress_gate.cli import app  # noqa: E402

RECIPES = Path(__file__).parents[1] / "recipes" / "torch"


def _recipe(tmp_path: Path, name: str) -> Path:
    raw = yaml.safe_load((RECIPES / name).read_text(encoding="utf-8"))
    raw["output"] = str(tmp_path / "run")
    raw["model"]["cache_dir"] = str(tmp_path / "cache")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.slow
def test_structured_static_int8_recipe_runs_end_to_end(tmp_path):
    import onnx

    result = CliRunner().invoke(app, ["run", str(_recipe(tmp_path, "structured_static_int8.yaml"))])
    assert result.exit_code in (0, 1), result.output         # released or refused: a verdict, not an error
    run = tmp_path / "run"
    record = json.loads((run / "run.json").read_text())
    assert record["status"] in ("released", "refused")
    verdict_dir = run / ("release" if result.exit_code == 0 else "refused")
    report = json.loads((verdict_dir / "report.json").read_text())
    assert report["verdict"] == ("pass" if result.exit_code == 0 else "fail")
    # what ships is the channel-pruned student's static QDQ graph, smaller than the teacher
    export = json.loads((run / "onnx" / "export.json").read_text())
    shipped = run / "onnx" / export["students"]["onnxruntime"]
    assert export["ships"] == shipped.name == "student.ort.onnx"
    graph = onnx.load(str(shipped)).graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    parity = json.loads((run / "onnx" / "parity.json").read_text())
    assert set(parity) == {"student.onnx", "student.ort.onnx"}

    def weights(path: Path) -> int:
        import numpy as np
        from onnx import numpy_helper
        return sum(int(np.prod(numpy_helper.to_array(t).shape)) for t in onnx.load(str(path)).graph.initializer)
    assert weights(run / "onnx" / "student.onnx") < 0.6 * weights(run / "onnx" / "teacher.onnx")
