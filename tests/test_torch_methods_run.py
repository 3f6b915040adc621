"""The new torch-backend recipes: each loads; a FairGRAPE student goes through `compress-gate run` and the gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from compress_gate.config.run import load_run_config

RECIPES = Path(__file__).parents[1] / "recipes" / "torch"

NEW = {
    "kd_attention_gmp80.yaml": ("distillation", "attention"),
    "kd_similarity_gmp80.yaml": ("distillation", "similarity"),
    "kd_crd_gmp80.yaml": ("distillation", "crd"),
    "fairgrape80.yaml": ("saliency", "fairgrape"),
    "snip80.yaml": ("saliency", "snip"),
    "grasp80.yaml": ("saliency", "grasp"),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_each_method_has_a_recipe_that_loads(name):
    config = load_run_config(RECIPES / name).compression
    section, value = NEW[name]
    if section == "distillation":
        assert config.distillation.kind == value and config.pruning.final_sparsity == 0.8
    else:
        assert config.saliency.method == value and config.saliency.sparsity == 0.8 and config.pruning is None


@pytest.mark.slow
def test_fairgrape_recipe_is_judged_by_the_gate(tmp_path):
    pytest.importorskip("torch", reason="needs the [torch] extra: `make install-torch`")
    pytest.importorskip("torch_pruning", reason="needs the [torch] extra (Torch-Pruning): `make install-torch`")
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from compress_gate.cli import app

    raw = yaml.safe_load((RECIPES / "fairgrape80.yaml").read_text(encoding="utf-8"))
    raw["output"], raw["model"]["cache_dir"] = str(tmp_path / "run"), str(tmp_path / "cache")
    raw["model"]["width"], raw["model"]["train"]["epochs"] = 16, 2   # short: the verdict, not its quality, is tested
    raw["engines"]["benchmark"].update(batch_sizes=[1], iterations=5)
    raw["compression"]["epochs"] = 1
    raw["compression"]["saliency"].update(steps=2, batches=2)
    recipe = tmp_path / "fairgrape.yaml"
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")

    result = CliRunner().invoke(app, ["run", str(recipe)])
    assert result.exit_code in (0, 1), result.output         # released or refused: a verdict, not an error
    run = tmp_path / "run"
    report = json.loads((run / ("release" if result.exit_code == 0 else "refused") / "report.json").read_text())
    assert report["verdict"] == ("pass" if result.exit_code == 0 else "fail")
    shipped = onnx.load(str(run / "onnx" / "student.onnx")).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in shipped.initializer}
    convs = [initializers[n.input[1]] for n in shipped.node if n.op_type == "Conv" and n.input[1] in initializers]
    pruned = [w for w in convs if w.shape[1] != 1]  # every conv but the stem (1 input channel) is selected
    zeros = sum(int((w == 0).sum()) for w in pruned) / sum(w.size for w in pruned)
    assert abs(zeros - 0.8) <= 0.01
    assert np.isfinite(zeros)
