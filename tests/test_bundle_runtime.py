"""Release bundle: writer, manifest checksums, tamper refusal, and the runtime's thresholds/overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.bundle import (RELEASE_FILES, REPORT_FILES, GatedModel, sha256_file, verify_bundle,
                                  write_refusal, write_release)
from compress_gate.cli import app
from compress_gate.data import sample_id
from compress_gate.errors import InputError
from compress_gate.mitigation import write_overrides, write_thresholds

CLASSES = ("a", "b", "c")
RECIPE_HASH = "ab" * 32


def tiny_onnx(path, *, task: str):
    """(N, 1, 2, 2) -> Flatten -> MatMul W (4, 3) -> Softmax (multiclass) or Sigmoid (multilabel)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[2.0, -1.0, 0.5], [-1.0, 2.0, 0.0], [0.5, 0.5, -2.0], [0.0, -1.0, 2.0]], np.float32)
    nodes = [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "W"], ["logits"]),
             helper.make_node("Softmax" if task == "multiclass" else "Sigmoid", ["logits"], ["scores"],
                              **({"axis": 1} if task == "multiclass" else {}))]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["batch", 1, 2, 2])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])],
                              initializer=[numpy_helper.from_array(weights, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return path


def make_bundle(tmp_path, *, task="multiclass", overrides=None, thresholds=None, preprocess=None):
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir(parents=True, exist_ok=True)
    write_thresholds(gate_dir / "thresholds.json", thresholds, task=task, attribute_names=CLASSES)
    write_overrides(gate_dir / "overrides.json", overrides or {}, task=task, attribute_names=CLASSES)
    (gate_dir / "report.json").write_text(json.dumps({"verdict": "pass"}))
    (gate_dir / "report.html").write_text("<html>report</html>")
    (gate_dir / "junit.xml").write_text("<testsuite/>")
    (gate_dir / "MODEL_CARD.md").write_text("# card\n")
    model = tiny_onnx(tmp_path / "student.onnx", task=task)
    return write_release(tmp_path / "run", gate_dir=gate_dir, model_onnx=model, recipe_hash=RECIPE_HASH, seed=7,
                         metrics_summary={"verdict": "pass", "student_accuracy": 0.9},
                         model_info={"engine": "onnxruntime", "artefact": "student.onnx", "quantized": False,
                                     "task": task, "attribute_names": list(CLASSES), "input_shape": [1, 2, 2],
                                     "preprocess": preprocess})


def inputs(n=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 1, 2, 2)).astype(np.float32)


def raw_scores(bundle, x):
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def test_release_holds_exactly_the_design_files_with_checksums(tmp_path):
    bundle = make_bundle(tmp_path)
    assert sorted(p.name for p in bundle.iterdir()) == sorted(RELEASE_FILES)
    manifest = verify_bundle(bundle)
    assert set(manifest["files"]) == set(RELEASE_FILES) - {"manifest.json"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_file(bundle / name)
    assert manifest["seed"] == 7 and manifest["recipe_hash"] == RECIPE_HASH and manifest["verdict"] == "pass"
    assert {"python", "numpy", "onnx", "onnxruntime"} <= set(manifest["dependencies"])
    assert manifest["metrics_summary"]["student_accuracy"] == 0.9


def test_model_metadata_carries_verdict_and_recipe_hash(tmp_path):
    import onnx

    bundle = make_bundle(tmp_path)
    props = {p.key: p.value for p in onnx.load(str(bundle / "model.onnx")).metadata_props}
    assert props["compress_gate.verdict"] == "pass"
    assert props["compress_gate.recipe_hash"] == RECIPE_HASH


@pytest.mark.parametrize("name", RELEASE_FILES)
def test_a_changed_byte_in_any_file_is_refused_naming_it(tmp_path, name):
    bundle = make_bundle(tmp_path)
    path = bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=name.replace(".", r"\.")):
        GatedModel.load(bundle)


def test_cli_predict_refuses_a_tampered_bundle_with_exit_2(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / "overrides.json").write_text((bundle / "overrides.json").read_text().replace("{}", "{ }"))
    np.savez(tmp_path / "x.npz", inputs=inputs())
    result = CliRunner().invoke(app, ["predict", str(bundle), str(tmp_path / "x.npz")])
    assert result.exit_code == 2
    assert "overrides.json" in result.output and "checksum" in result.output


def test_unlisted_and_missing_files_are_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / "extra.txt").write_text("x")
    with pytest.raises(InputError, match="extra.txt"):
        verify_bundle(bundle)
    (bundle / "extra.txt").unlink()
    (bundle / "junit.xml").unlink()
    with pytest.raises(InputError, match=r"junit\.xml.*missing"):
        verify_bundle(bundle)


def test_overrides_change_exactly_the_overridden_ids(tmp_path):
    x = inputs(10)
    ids = np.array([f"s{i}" for i in range(10)])
    unmitigated = make_bundle(tmp_path / "plain")
    argmax = raw_scores(unmitigated, x).argmax(axis=1)
    # override s2 and s7 to a class the model does not predict for them
    flipped = {i: CLASSES[(argmax[i] + 1) % 3] for i in (2, 7)}
    overrides = {f"s{i}": {"class": name} for i, name in flipped.items()}
    overrides["not-in-batch"] = {"class": "a"}
    bundle = make_bundle(tmp_path / "mitigated", overrides=overrides)
    with GatedModel.load(bundle) as model:
        result = model.predict(x, ids=ids)
    changed = result.labels.argmax(axis=1) != argmax
    assert np.flatnonzero(changed).tolist() == [2, 7]
    assert [CLASSES[c] for c in result.labels.argmax(axis=1)[[2, 7]]] == [flipped[2], flipped[7]]
    assert np.flatnonzero(result.overridden).tolist() == [2, 7]
    assert np.allclose(result.scores, raw_scores(bundle, x), atol=1e-6)


def test_overrides_apply_by_sample_id_when_no_ids_are_given(tmp_path):
    x = inputs(5)
    plain = make_bundle(tmp_path / "plain")
    argmax = raw_scores(plain, x).argmax(axis=1)
    target = CLASSES[(argmax[3] + 1) % 3]
    bundle = make_bundle(tmp_path / "ids", overrides={sample_id(x[3]): {"class": target}})
    with GatedModel.load(bundle) as model:
        result = model.predict(x)
    assert result.ids[3] == sample_id(x[3])
    assert np.flatnonzero(result.labels.argmax(axis=1) != argmax).tolist() == [3]


def test_multilabel_thresholds_then_overrides(tmp_path):
    x = inputs(6)
    thresholds = np.array([0.9, 0.1, 0.5])
    bundle = make_bundle(tmp_path, task="multilabel", thresholds=thresholds,
                         overrides={"s0": {"a": 1, "c": 0}})
    with GatedModel.load(bundle) as model:
        result = model.predict(x, ids=np.array([f"s{i}" for i in range(6)]))
    expected = (raw_scores(bundle, x) > thresholds).astype(np.uint8)
    expected[0, 0], expected[0, 2] = 1, 0
    assert np.array_equal(result.labels, expected)


def test_inputs_of_the_wrong_shape_are_refused(tmp_path):
    with GatedModel.load(make_bundle(tmp_path)) as model, pytest.raises(InputError, match=r"\(n, 1, 2, 2\)"):
        model.predict(np.zeros((2, 3, 2, 2), np.float32))


def test_cli_predict_writes_predictions(tmp_path):
    bundle = make_bundle(tmp_path, overrides={"s1": {"class": "c"}})
    np.savez(tmp_path / "x.npz", inputs=inputs(4), ids=np.array(["s0", "s1", "s2", "s3"]))
    result = CliRunner().invoke(app, ["predict", str(bundle), str(tmp_path / "x.npz"),
                                      "--out", str(tmp_path / "p.npz")])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "p.npz") as out:
        assert out["labels"].shape == (4, 3) and out["overridden"].tolist() == [False, True, False, False]
        assert out["labels"][1].tolist() == [0, 0, 1]


def test_refusal_writes_the_report_only_and_removes_a_stale_release(tmp_path):
    bundle = make_bundle(tmp_path)
    assert bundle.is_dir()
    refused = write_refusal(tmp_path / "run", gate_dir=tmp_path / "gate")
    assert sorted(p.name for p in refused.iterdir()) == sorted(REPORT_FILES)
    assert not (tmp_path / "run" / "release").exists()


def test_bundle_files_are_readable_like_normally_created_files(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        bundle = make_bundle(tmp_path)
    finally:
        os.umask(umask)
    assert bundle.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in bundle.iterdir()} == {0o644}


def test_the_runtime_normalizes_pixels_by_the_recorded_mean_and_std(tmp_path):
    record = {"input_size": 2, "channels": 1, "pixel_range": [0, 1], "mean": [0.25], "std": [0.5]}
    bundle = make_bundle(tmp_path, preprocess=record)
    pixels = np.array([[[[0.0, 0.25], [0.5, 1.0]]]], np.float32)
    with GatedModel.load(bundle) as model:
        assert model.preprocess == record
        # x = (p - 0.25) / 0.5: 0 -> -0.5, 0.25 -> 0, 0.5 -> 0.5, 1 -> 1.5
        expected = np.array([[[[-0.5, 0.0], [0.5, 1.5]]]], np.float32)
        np.testing.assert_array_equal(model.normalize(pixels), expected)
        np.testing.assert_allclose(model.predict_pixels(pixels).scores, raw_scores(bundle, expected), rtol=1e-6)
        with pytest.raises(InputError, match="pixels must lie in \\[0, 1\\]"):
            model.normalize(pixels * 255)


def test_a_bundle_without_a_normalization_refuses_pixels(tmp_path):
    with GatedModel.load(make_bundle(tmp_path)) as model:
        assert model.preprocess is None
        with pytest.raises(InputError, match="records no input normalisation"):
            model.normalize(np.zeros((1, 1, 2, 2), np.float32))


def test_renormalize_maps_the_default_scaling_to_the_model_mean_and_std():
    from compress_gate.data._images import renormalize_

    # x = -1, 0, 1 are pixels u = 0, 0.5, 1; with mean 0.25, std 0.5: (u - 0.25) / 0.5 = -0.5, 0.5, 1.5
    x = np.array([[[[-1.0, 0.0, 1.0]]]], np.float32)
    np.testing.assert_array_equal(renormalize_(x.copy(), mean=[0.25], std=[0.5]), [[[[-0.5, 0.5, 1.5]]]])
    np.testing.assert_array_equal(renormalize_(x.copy(), mean=[0.5], std=[0.5]), x)   # the default: unchanged
