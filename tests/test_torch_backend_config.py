"""The torch backend's `compression:` section: validation and its recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from compress_gate.config.torch_backend import TorchCompressionConfig, parse_nm

RECIPES = sorted(Path(__file__).resolve().parents[1].joinpath("recipes", "torch").glob("*.yaml"))
GMP = {"params": ["re:conv"], "final_sparsity": 0.8, "end_epoch": 2.0, "update_frequency": 0.5}


def _config(**section):
    return TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 3, **section})


def test_epochs_only_when_something_trains():
    assert TorchCompressionConfig(backend="torch", quantization="dynamic").epochs is None
    with pytest.raises(ValidationError, match="`epochs` is set but nothing is trained"):
        _config(quantization="dynamic")
    with pytest.raises(ValidationError, match="`epochs` is required"):
        TorchCompressionConfig(backend="torch", structured={"ratio": 0.5})
    with pytest.raises(ValidationError, match="`epochs` is required"):  # QAT fine-tunes
        TorchCompressionConfig(backend="torch", quantization="qat")
    assert _config(quantization="qat").qat is None  # defaults: QAT from epoch 0, observers never frozen


def test_defaults_match_sparseml_vocabulary():
    config = _config(pruning=GMP)
    assert config.pruning.init_sparsity == 0.05 and config.pruning.inter_func == "cubic"
    assert config.pruning.mask == "unstructured" and config.quantization == "none"


def test_parse_nm():
    assert parse_nm("2:4") == (2, 4) and parse_nm("unstructured") is None


@pytest.mark.parametrize(("section", "message"), [
    ({"epochs": None}, "nothing to do"),
    ({"pruning": {**GMP, "mask": "2:4"}}, r"final_sparsity must be 0\.5, not 0\.8"),
    ({"pruning": {**GMP, "mask": "4:2"}}, "0 < N < M"),
    ({"pruning": {**GMP, "mask": "blocks"}}, "'unstructured' or 'N:M'"),
    ({"pruning": {**GMP, "end_epoch": 3.0}}, "must be before the end of training"),
    ({"pruning": {**GMP, "start_epoch": 2.0}}, "must be greater than start_epoch"),
    ({"pruning": {**GMP, "init_sparsity": 0.9}}, "must be <= final_sparsity"),
    ({"pruning": {**GMP, "inter_func": "inverse_cubic"}}, "cubic"),
    ({"pruning": {**GMP, "mask_type": "unstructured"}}, "Extra inputs are not permitted"),
    ({"structured": {"ratio": 1.0}}, "less than 1"),
    ({"quantization": "int4"}, "'none', 'dynamic', 'static' or 'qat'"),
    ({"distillation": {}, "qat": {"start_epoch": 1.0}}, "set `quantization: qat`"),
    ({"quantization": "qat", "qat": {"start_epoch": 3.0}}, r"qat.start_epoch \(3.0\) must be before the end"),
    ({"quantization": "qat", "qat": {"start_epoch": 1.0, "disable_quantization_observer_epoch": 1.0}},
     "must be greater than start_epoch"),
    ({"quantization": "qat", "qat": {"disable_quantization_observer_epoch": 3.5}}, "must be before the end"),
    ({"distillation": {"hardness": 1.5}}, "less than or equal to 1"),
    ({"quantization": "qat", "distillation": {"kind": "attention"}}, "use `kind: hinton` with `quantization: qat`"),
])
def test_bad_sections_are_refused(section, message):
    with pytest.raises(ValidationError, match=message):
        _config(**section)


def test_backend_tag_is_required():
    with pytest.raises(ValidationError, match="backend"):
        TorchCompressionConfig.model_validate({"epochs": 3, "quantization": "static"})


def test_every_recipe_option_has_a_recipe():
    configs = [TorchCompressionConfig.model_validate(yaml.safe_load(p.read_text())["compression"]) for p in RECIPES]
    assert any(c.pruning is not None and c.pruning.mask == "unstructured" for c in configs)
    assert any(c.pruning is not None and c.pruning.mask == "2:4" for c in configs)
    assert any(c.structured is not None and c.quantization == "static" for c in configs)
    assert any(c.quantization == "dynamic" for c in configs)
    assert any(c.quantization == "qat" and c.structured is not None for c in configs)
    assert any(c.distillation is not None for c in configs)


def test_unquoted_two_four_in_yaml_is_explained():
    section = yaml.safe_load("pruning: {params: [re:conv], final_sparsity: 0.5, end_epoch: 2, update_frequency: 1, "
                             "mask: 2:4}")
    assert section["pruning"]["mask"] == 124  # PyYAML's base-60 reading
    with pytest.raises(ValidationError, match='Quote it: mask: "2:4"'):
        _config(**section)
