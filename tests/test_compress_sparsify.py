"""Recipe-driven compression with SparseML: recipes, errors, achieved sparsity."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sparseml")  # SparseML's world only: skipped in the core environment (make test-core)
import torch
from torch.utils.data import DataLoader, TensorDataset

from compress_gate.compress import compress_model, load_recipe, model_sparsity
from compress_gate.errors import InputError
from compress_gate.models import build_model

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "sparseml"


def _loader(n=32, k=2, size=8, seed=0):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 3, size, size)).astype(np.float32))
    y = torch.from_numpy((rng.random((n, k)) < 0.5).astype(np.float32))
    return DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)


def _tiny(k=2):
    torch.manual_seed(0)
    return build_model("resnet", num_outputs=k, input_size=8, width=8, depth=1)


def test_shipped_recipes_exist_and_name_their_modifiers():
    expected = {
        "gmp90.yaml": {"GMPruningModifier"},
        "gmp90_qat.yaml": {"GMPruningModifier", "QuantizationModifier"},
        "gmp90_qat_distill.yaml": {"GMPruningModifier", "QuantizationModifier", "DistillationModifier"},
    }
    for name, modifiers in expected.items():
        text = load_recipe(RECIPES / name)
        assert set(re.findall(r"!(\w+Modifier)", text)) - {"EpochRangeModifier"} == modifiers
        assert "final_sparsity: 0.9" in text


@pytest.mark.parametrize("arch, size, pruned, dense", [
    ("resnet18", 32, ["layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.conv2.weight"],
     ["conv1.weight", "fc.weight", "layer1.0.bn1.weight", "layer2.0.downsample.1.weight"]),
    ("mobilenet_v1", 32, ["layer1.conv_pw.weight", "layer13.conv_pw.weight"],
     ["conv1.weight", "layer1.conv_dw.weight", "fc.weight", "layer1.bn_pw.weight"]),
])
def test_recipe_targets_block_convs_only(arch, size, pruned, dense):
    from compress_gate.compress.compat import apply_compat
    from compress_gate.compress.sparsify import _load_manager, _pruning_targets

    apply_compat()
    model = build_model(arch, num_outputs=3, input_size=size)
    manager = _load_manager(load_recipe(RECIPES / "gmp90.yaml"), None, "gmp90.yaml")
    targets = _pruning_targets(manager, model, "gmp90.yaml")
    assert set(pruned) <= set(targets)
    assert not set(dense) & set(targets)
    assert all(goal == 0.9 for _, goal in targets.values())


def test_gmp_reaches_the_recipe_sparsity_and_leaves_the_input_model_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # SparseML's default logger would create ./sparse_logs here
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = compress_model(model, _loader(), RECIPES / "gmp90.yaml", task="multilabel",
                            recipe_variables={"num_epochs": 3.0})
    assert result.epochs == 3.0
    assert result.target_sparsity == pytest.approx(0.9)
    assert abs(result.overall_sparsity - 0.9) <= 0.01
    assert all(abs(s - 0.9) <= 0.01 for s in result.sparsity.values())
    assert not result.quantized and not result.distilled
    layers = model_sparsity(result.model)
    assert layers["conv1.weight"] == 0.0 and layers["fc.weight"] == 0.0  # not targeted
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not (tmp_path / "sparse_logs").exists()


def test_recipe_text_is_accepted_and_nothing_pruned_is_nan():
    recipe = "version: 1.1.0\nmodifiers:\n  - !EpochRangeModifier\n    start_epoch: 0.0\n    end_epoch: 1.0\n"
    result = compress_model(_tiny(), _loader(n=8), recipe, task="multilabel")
    assert result.sparsity == {}
    assert math.isnan(result.overall_sparsity) and math.isnan(result.target_sparsity)


def test_distillation_recipe_without_teacher_is_an_input_error():
    with pytest.raises(InputError, match="DistillationModifier but no teacher"):
        compress_model(_tiny(), _loader(), RECIPES / "gmp90_qat_distill.yaml", task="multilabel",
                       recipe_variables={"num_epochs": 1.0})


@pytest.mark.parametrize("recipe, message", [
    ("version: 1.1.0\nmodifiers:\n  - !NoSuchModifier\n    a: 1\n", "could not determine a constructor"),
    ("version: 1.1.0\nmodifiers:\n  - !GMPruningModifier\n    bogus: 1\n", "unexpected keyword argument 'bogus'"),
    ("modifiers: [\n", "ParserError"),
    ("version: 1.1.0\nmodifiers:\n  - !GMPruningModifier\n    params: ['re:^nothing$']\n    init_sparsity: 0.1\n"
     "    final_sparsity: 0.5\n    start_epoch: 0.0\n    end_epoch: 1.0\n    update_frequency: 0.5\n",
     "has a pattern that matches no parameter"),
])
def test_bad_recipes_are_input_errors(recipe, message):
    with pytest.raises(InputError, match=re.escape(message)):
        compress_model(_tiny(), _loader(), recipe, task="multilabel")


def test_unknown_recipe_variable_is_an_input_error():
    with pytest.raises(InputError, match="nope"):
        compress_model(_tiny(), _loader(), RECIPES / "gmp90.yaml", task="multilabel", recipe_variables={"nope": 1})


def test_missing_recipe_and_zoo_stub_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such SparseML recipe file"):
        load_recipe(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="never downloads"):
        load_recipe("zoo:cv/classification/resnet_v1-18/pytorch/sparseml/imagenet/pruned-moderate")


def test_quiet_sparseml_raises_the_sparseml_level_in_the_block_and_restores_it():
    import logging

    from compress_gate.compress import apply_compat
    from compress_gate.models.training import quiet_sparseml

    apply_compat()
    from sparseml.pytorch.utils.logger import LoggerManager

    logger = logging.getLogger("sparseml")
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        with quiet_sparseml() as loggers:
            assert logger.level == logging.WARNING
            assert isinstance(loggers, LoggerManager)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(previous)
