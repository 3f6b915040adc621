"""A user's network, defined in a file outside the package, through `run` and `sweep` on both backends.

The network is examples/your-model/net.py (depthwise-separable blocks with squeeze-excitation),
copied beside the recipe. It starts from a checkpoint with 5 outputs while the data has 10
attributes, so `model.head` replaces its classifier and `model.train` fine-tunes it. Slow (tiny
sizes: 16 px, a few hundred images); `make test-torch` runs the torch-backend tests,
`make test-slow` the SparseML ones; each skips, with the reason, in the other world.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

torch = pytest.importorskip("torch", reason="needs torch (the [torch] or [sparseml] extra)")

from compress_gate.cli import app  # noqa: E402
from compress_gate.models.registry import resolve_factory  # noqa: E402

NET = Path(__file__).resolve().parents[1] / "examples" / "your-model" / "net.py"
WIDTH = 4
GMP = {"init_sparsity": 0.05, "start_epoch": 0.0, "end_epoch": 1.0, "update_frequency": 0.5}
SPARSEML = """\
final_sparsity: 0.5
modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: 2.0
  - !GMPruningModifier
    params: {params}
    init_sparsity: 0.05
    final_sparsity: eval(final_sparsity)
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 0.5
"""
needs_torch_backend = pytest.mark.skipif(__import__("importlib").util.find_spec("torch_pruning") is None,
                                         reason="needs the [torch] extra (Torch-Pruning): `make install-torch`")
needs_sparseml = pytest.mark.skipif(__import__("importlib").util.find_spec("sparseml") is None,
                                    reason="needs the [sparseml] extra: `make install`")


def user_recipe(tmp_path: Path, compression: dict) -> Path:
    """The recipe, the network file in models/ beside it, and a 5-output checkpoint of that network."""
    (tmp_path / "models").mkdir()
    shutil.copyfile(NET, tmp_path / "models" / "net.py")
    torch.manual_seed(0)
    pretrained = resolve_factory("models/net.py:build", base_dir=tmp_path)(num_classes=5, width=WIDTH)
    torch.save(pretrained.state_dict(), tmp_path / "pretrained.pt")
    recipe = {
        "seed": 0, "output": "run",
        "model": {"factory": "models/net.py:build", "kwargs": {"num_classes": 5, "width": WIDTH},
                  "checkpoint": "pretrained.pt", "head": "classifier", "layers": ["stage1", "stage2", "stage3"],
                  "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                  "train": {"epochs": 1, "batch_size": 32, "lr": 0.05}, "cache_dir": "cache"},
        "data": {"kind": "synthetic", "image_size": 16, "n_train": 240, "n_calib": 100, "n_test": 240},
        "compression": compression,
        "engines": {"check": [], "benchmark": {"enabled": False}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def check_run(run: Path) -> None:
    """The run finished with a verdict, its teacher has the data's 10 outputs, and the normalisation shipped."""
    import onnx

    record = json.loads((run / "run.json").read_text())
    assert record["status"] in ("released", "refused"), record
    teacher = torch.load(run / "teacher.pt", weights_only=True)
    assert tuple(teacher["classifier.weight"].shape) == (10, 4 * WIDTH)      # the replaced head
    props = {p.key: p.value for p in onnx.load(str(run / "onnx" / "teacher.onnx")).metadata_props}
    assert json.loads(props["compress_gate.preprocess"])["std"] == [0.25, 0.25, 0.25]


@pytest.mark.slow
@needs_torch_backend
def test_torch_backend_runs_a_user_module_with_every_method(tmp_path):
    compression = {"backend": "torch", "epochs": 2, "batch_size": 32,
                   "pruning": {"params": ["__ALL_PRUNABLE__"], "final_sparsity": 0.5, **GMP},
                   "structured": {"ratio": 0.25}, "quantization": "static",
                   "distillation": {"kind": "attention"}}
    result = CliRunner().invoke(app, ["run", str(user_recipe(tmp_path, compression))])
    assert result.exit_code in (0, 1), result.output
    check_run(tmp_path / "run")
    student = torch.load(tmp_path / "run" / "student.pt", weights_only=True)
    assert student["classifier.weight"].shape[0] == 10                          # the head was left whole
    assert student["stage3.pointwise.weight"].shape[0] < 4 * WIDTH              # channels were removed


@pytest.mark.slow
@needs_torch_backend
def test_torch_backend_sweeps_a_user_module(tmp_path):
    compression = {"backend": "torch", "epochs": 2, "batch_size": 32,
                   "pruning": {"params": ["re:^stage\\d\\.pointwise\\.weight$"], "final_sparsity": 0.5, **GMP}}
    result = CliRunner().invoke(app, ["sweep", str(user_recipe(tmp_path, compression)), "--sparsity", "0.5", "0.75"])
    assert result.exit_code in (0, 1), result.output
    for sparsity in ("0.5", "0.75"):
        check_run(tmp_path / "run" / f"sparsity-{sparsity}")


@pytest.mark.slow
@needs_sparseml
def test_sparseml_backend_runs_a_user_module(tmp_path):
    compression = {"backend": "sparseml", "batch_size": 32, "recipe": SPARSEML.format(params="__ALL_PRUNABLE__")}
    result = CliRunner().invoke(app, ["run", str(user_recipe(tmp_path, compression))])
    assert result.exit_code in (0, 1), result.output
    check_run(tmp_path / "run")
    sparsity = json.loads((tmp_path / "run" / "compression.json").read_text())["sparsity"]
    assert "stage2.pointwise.weight" in sparsity and "classifier.weight" in sparsity   # every prunable layer


@pytest.mark.slow
@needs_sparseml
def test_sparseml_backend_sweeps_a_user_module_by_parameter_regex(tmp_path):
    recipe = SPARSEML.format(params="['re:^stage\\d\\.pointwise\\.weight$']")
    compression = {"backend": "sparseml", "batch_size": 32, "recipe": recipe}
    result = CliRunner().invoke(app, ["sweep", str(user_recipe(tmp_path, compression)), "--sparsity", "0.5", "0.75"])
    assert result.exit_code in (0, 1), result.output
    for sparsity in ("0.5", "0.75"):
        run = tmp_path / "run" / f"sparsity-{sparsity}"
        check_run(run)
        pruned = json.loads((run / "compression.json").read_text())["sparsity"]
        assert sorted(pruned) == [f"stage{i}.pointwise.weight" for i in (1, 2, 3)]
