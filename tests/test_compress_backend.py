"""The backend seam: `compression.backend`, the registry, the missing-extra error, parity records,
and sparsity read off the shipped ONNX graph. None of these tests needs torch."""

from __future__ import annotations

import importlib.util
import math
import typing
from pathlib import Path

import numpy as np
import pytest

from compress_gate.compress.backend import (BACKENDS, check_backend_installed, get_compressor, read_parity,
                                            write_parity)
from compress_gate.compress.backend import CompressionResult
from compress_gate.compress.sparsity import onnx_layer_zero_counts, onnx_sparsity
from compress_gate.config.run import (COMPRESSION_BACKENDS, SparseMLCompressionConfig, load_run_config,
                                      parse_compression_config)
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.pipeline.run import shipped_sparsity

RECIPE = "modifiers:\n  - !EpochRangeModifier\n    start_epoch: 0.0\n    end_epoch: 1.0\n"


def test_every_backend_has_a_config_model_and_code():
    # one registry: each entry names a config model whose `backend` is its name, and a factory module
    assert set(COMPRESSION_BACKENDS) == set(BACKENDS) == {"sparseml", "torch"}
    for name, entry in BACKENDS.items():
        model = COMPRESSION_BACKENDS[name]
        assert typing.get_args(model.model_fields["backend"].annotation) == (name,)
        assert importlib.util.find_spec(entry.module) is not None


@pytest.mark.parametrize("raw", [{"recipe": RECIPE}, {"backend": "sparseml", "recipe": RECIPE}])
def test_absent_backend_means_sparseml(raw):
    config = parse_compression_config(raw, source="r.yaml")
    assert isinstance(config, SparseMLCompressionConfig) and config.backend == "sparseml"


def test_unknown_backend_is_refused_naming_the_backends():
    with pytest.raises(InputError, match=r"r.yaml: `compression.backend` = 'tensorflow' .* one of sparseml"):
        parse_compression_config({"backend": "tensorflow", "recipe": RECIPE}, source="r.yaml")


def test_a_key_of_another_backend_lists_the_valid_keys():
    with pytest.raises(InputError, match=r"unknown key `compression.final_sparsity`.*Valid keys here: backend, "):
        parse_compression_config({"recipe": RECIPE, "final_sparsity": 0.9}, source="r.yaml")


def test_not_a_mapping_is_refused():
    with pytest.raises(InputError, match="`compression` must be a mapping with a `backend`"):
        parse_compression_config("gmp90.yaml", source="r.yaml")


def test_recipe_keeps_its_backend_through_load(tmp_path):
    (tmp_path / "r.yaml").write_text("output: run\nmodel: {arch: resnet, width: 4, depth: 1, train: {epochs: 1}}\n"
                                     "data: {kind: demo}\ncompression:\n  backend: sparseml\n  recipe: |\n"
                                     + "".join(f"    {line}\n" for line in RECIPE.splitlines()))
    assert load_run_config(tmp_path / "r.yaml").compression.backend == "sparseml"


def test_a_missing_backend_package_names_the_extra(monkeypatch):
    real = importlib.util.find_spec
    hidden = {"torch", "sparseml"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a))
    with pytest.raises(InputError) as caught:
        get_compressor(SparseMLCompressionConfig(recipe=RECIPE))
    message = str(caught.value)
    assert "`compression.backend` = 'sparseml' needs torch, sparseml, which" in message
    assert "pip install 'compress-gate[sparseml]'" in message and "Python 3.11" in message
    assert "(in a checkout: `make install`)" in message


@pytest.mark.parametrize(("backend", "target"), [("sparseml", "install"), ("torch", "install-torch")])
def test_the_missing_extra_hint_names_the_backends_own_make_target(backend, target, monkeypatch):
    import re

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(InputError) as caught:
        check_backend_installed(backend)
    assert f"(in a checkout: `make {target}`)" in str(caught.value)
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:", makefile, re.MULTILINE)     # the target exists


def test_an_unregistered_backend_is_an_input_error():
    with pytest.raises(InputError, match="'onnx' is not a compression backend; use one of sparseml"):
        check_backend_installed("onnx")


def test_sparseml_compressor_follows_the_protocol():
    pytest.importorskip("sparseml")
    from compress_gate.compress.backend import Compressor

    compressor = get_compressor(SparseMLCompressionConfig(recipe=RECIPE))
    assert isinstance(compressor, Compressor) and compressor.name == "sparseml"


def test_parity_record_round_trips_and_its_absence_fails_closed(tmp_path):
    parity = {"student.onnx": {"max_score_difference": 1e-6, "tolerance": 1e-4, "reference": "student"}}
    write_parity(tmp_path, parity)
    assert read_parity(tmp_path, backend="x") == parity
    with pytest.raises(RuntimeFailure, match="'x' backend exported without recording the parity"):
        read_parity(tmp_path / "empty", backend="x")


# --- sparsity on the shipped graph --------------------------------------------------------------
def _graph(path: Path) -> Path:
    """Conv (scope /model/layer1/layer1.0/conv1, inside SparseML's QAT wrapper) with W1 (2 of 8 zero); a QDQ Conv (scope
    /model/layer2/layer2.0/downsample/downsample.0) whose int8 weight has per-channel zero points
    [0, 3] (4 of 8 entries equal them); an unscoped Gemm with W3 (1 of 4 zero)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w1 = np.array([1, 0, 2, 0, 3, 4, 5, 6], np.float32).reshape(2, 1, 2, 2)
    q2 = np.array([0, 0, 1, 2, 3, 3, 7, 8], np.int8).reshape(2, 1, 2, 2)
    w3 = np.array([[0, 1], [2, 3]], np.float32)
    inits = [numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(q2, "Q2"),
             numpy_helper.from_array(np.array([0.1, 0.1], np.float32), "S2"),
             numpy_helper.from_array(np.array([0, 3], np.int8), "Z2"), numpy_helper.from_array(w3, "W3")]
    nodes = [helper.make_node("Conv", ["x", "W1"], ["a"], name="/model/layer1/layer1.0/conv1/module/module.0/Conv"),
             helper.make_node("DequantizeLinear", ["Q2", "S2", "Z2"], ["W2"], axis=0),
             helper.make_node("Conv", ["x", "W2"], ["b"], name="/model/layer2/layer2.0/downsample/downsample.0/Conv"),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "W3"], ["y"], name="")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2]),
                               helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2, 1, 1])],
                              initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_layer_zero_counts_are_keyed_by_the_torch_weight(tmp_path):
    counts = onnx_layer_zero_counts(_graph(tmp_path / "g.onnx"))
    assert counts == {"layer1.0.conv1.weight": (2, 8), "layer2.0.downsample.0.weight": (4, 8), "W3": (1, 4)}
    assert onnx_sparsity(tmp_path / "g.onnx") == {"W1": 0.25, "Q2": 0.5, "W3": 0.25}


def _result(names: list[str]) -> CompressionResult:
    return CompressionResult(model=None, sparsity=dict.fromkeys(names, 0.0), overall_sparsity=math.nan,
                             target_sparsity=0.5, quantized=True, distilled=False, epochs=1.0, recipe="")


def test_shipped_sparsity_pools_the_pruned_weights_of_the_graph(tmp_path):
    graph = _graph(tmp_path / "g.onnx")
    # pruned: conv1 (2/8) and downsample.0 (4/8) -> (2 + 4) / (8 + 8) = 0.375; fc is not in the graph by name
    facts = shipped_sparsity(_result(["layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.weight"]), graph)
    assert facts["overall_sparsity"] == pytest.approx(0.375)
    assert facts["sparsity"] == {"layer1.0.conv1.weight": 0.25, "layer2.0.downsample.0.weight": 0.5}
    assert facts["sparsity_not_in_graph"] == ["fc.weight"] and facts["measured_on"] == "g.onnx"
    assert math.isnan(shipped_sparsity(_result([]), graph)["overall_sparsity"])
