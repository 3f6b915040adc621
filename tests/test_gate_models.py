"""`compress-gate gate --teacher-model T.onnx --student-model S.onnx`: scored on ONNX Runtime."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.data import EvalData, load_predictions, save_eval_data

pytest.importorskip("onnxruntime", reason="the model path scores with ONNX Runtime")
runner = CliRunner()
K, FEATURES = 2, 4


def _write_model(path, weight: np.ndarray, bias: np.ndarray):
    """scores = sigmoid(flatten(input) @ weight + bias): input (B, 1, 2, 2), output "scores" (B, K)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]),
         helper.make_node("MatMul", ["flat", "w"], ["mm"]),
         helper.make_node("Add", ["mm", "b"], ["logits"]),
         helper.make_node("Sigmoid", ["logits"], ["scores"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 2, 2])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", K])],
        initializer=[numpy_helper.from_array(weight.astype(np.float32), "w"),
                     numpy_helper.from_array(bias.astype(np.float32), "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _linear(inputs, weight, bias):
    return 1 / (1 + np.exp(-(inputs.reshape(len(inputs), -1) @ weight + bias)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(0)
    n = 600
    inputs = rng.normal(size=(n, 1, 2, 2)).astype(np.float32)
    weight = rng.normal(size=(FEATURES, K)) * 2
    labels = (_linear(inputs, weight, 0) > rng.random((n, K))).astype(np.uint8)
    groups = rng.random((n, 1)) < 0.5
    data = EvalData(ids=np.array([f"x{i}" for i in range(n)]), labels=labels,
                    split=np.repeat(["train", "calib", "test"], [200, 100, 300]), groups=groups,
                    group_names=("g",), attribute_names=("a", "b"), task="multilabel", inputs=inputs)
    paths = {"data": save_eval_data(data, root / "data.npz"),
             "teacher": _write_model(root / "teacher.onnx", weight, np.zeros(K)),
             "student": _write_model(root / "student.onnx", weight * 0.9, np.full(K, 0.1))}
    return paths, data, weight


def test_models_are_scored_and_judged(setup, tmp_path):
    paths, data, weight = setup
    out = tmp_path / "out"
    result = runner.invoke(app, ["gate", "--data", str(paths["data"]), "--teacher-model", str(paths["teacher"]),
                                 "--student-model", str(paths["student"]), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["inputs"]["teacher"] == [str(paths["teacher"])] and report["inputs"]["n_test"] == 300
    # the final paths, not those of the temporary directory the outputs were built in
    assert report["inputs"]["predictions"] == [str(out / "predictions" / n) for n in ("teacher.npz", "student_1.npz")]
    rows = data.mask("calib", "test")
    saved = load_predictions(out / "predictions" / "student_1.npz")
    np.testing.assert_array_equal(saved.ids, data.ids[rows])
    np.testing.assert_allclose(saved.scores, _linear(data.inputs[rows], weight * 0.9, 0.1), atol=1e-5)
    teacher = load_predictions(out / "predictions" / "teacher.npz").scores
    test_rows = data.split[rows] == "test"
    expected = ((teacher[test_rows] > 0.5) == data.labels[data.mask("test")]).mean()
    assert report["metrics"]["teacher"]["accuracy"] == pytest.approx(expected)


def test_models_need_inputs(setup, tmp_path):
    paths, data, _ = setup
    no_inputs = EvalData(**{**data.__dict__, "inputs": None})
    path = save_eval_data(no_inputs, tmp_path / "data.npz")
    result = runner.invoke(app, ["gate", "--data", str(path), "--teacher-model", str(paths["teacher"]),
                                 "--student-model", str(paths["student"]), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {paths['teacher']}: scoring a model needs the preprocessed inputs")
