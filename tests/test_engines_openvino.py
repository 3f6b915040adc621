"""OpenVINO (CPU): parity with ONNX Runtime on FP32 and QDQ INT8 graphs, the benchmark, the unavailable path."""

from __future__ import annotations

import json
import subprocess
import sys

import _engine_fixtures as fx
import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.engines import EngineUnavailable, benchmark_models, engine_availability, open_engine, predict_scores
from compress_gate.engines.openvino_engine import openvino_unavailable_reason
from compress_gate.errors import InputError

pytestmark = pytest.mark.timeout(120)
OPENVINO_REASON = openvino_unavailable_reason()
needs_openvino = pytest.mark.skipif(OPENVINO_REASON is not None, reason=f"openvino: {OPENVINO_REASON}")

#: Largest |score difference| allowed between OpenVINO and ONNX Runtime on the same FP32 graph.
FP32_ATOL = 1e-5
#: Score tolerance on the same QDQ INT8 graph, in INT8 steps of the logits (the input of the float
#: Sigmoid). Both engines run the graph's INT8 arithmetic but may round a requantized activation
#: differently; one step of the logits' scale moves a score by at most scale / 4 (a sigmoid's
#: largest slope). Two steps: 2 * 0.0142 / 4 = 0.0071 on this graph, below the INT8 model's own
#: distance from its FP32 twin (0.0097). Measured with OpenVINO 2026.4.1 on AMD EPYC: 6e-8.
INT8_LOGIT_STEPS = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return fx.write_tiny_onnx(tmp_path_factory.mktemp("ov") / "tiny.onnx")


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    """FP32 and ORT static QDQ INT8 versions of a small conv net (3x3 convs, ReLU, Gemm)."""
    from compress_gate.compress import quantize_for_ort

    folder = tmp_path_factory.mktemp("ov")
    fp32 = _write_convnet(folder / "convnet.onnx")
    qdq = quantize_for_ort(fp32, folder / "convnet_qdq.onnx", fx.tiny_inputs(64, seed=3))
    return fp32, qdq


def _write_convnet(path):
    """input (B, 3, 8, 8) -> Conv3x3(8)+ReLU -> Conv3x3(8)+ReLU -> GAP -> Gemm(4) -> Sigmoid -> scores (B, 4)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    weights = {"w1": rng.normal(0, 0.3, (8, 3, 3, 3)), "b1": rng.normal(0, 0.1, 8),
               "w2": rng.normal(0, 0.2, (8, 8, 3, 3)), "b2": rng.normal(0, 0.1, 8),
               "w3": rng.normal(0, 0.5, (4, 8)), "b3": rng.normal(0, 0.1, 4)}
    pads = {"pads": [1, 1, 1, 1]}
    # Named nodes: quantize_for_ort excludes the output node *by name*, so unnamed nodes would all be excluded.
    nodes = [("Conv", ["input", "w1", "b1"], ["c1"], pads), ("Relu", ["c1"], ["r1"], {}),
             ("Conv", ["r1", "w2", "b2"], ["c2"], pads), ("Relu", ["c2"], ["r2"], {}),
             ("GlobalAveragePool", ["r2"], ["pooled"], {}), ("Flatten", ["pooled"], ["flat"], {}),
             ("Gemm", ["flat", "w3", "b3"], ["logits"], {"transB": 1}), ("Sigmoid", ["logits"], ["scores"], {})]
    graph = helper.make_graph(
        [helper.make_node(op, ins, outs, name=f"{op}_{i}", **attrs) for i, (op, ins, outs, attrs) in enumerate(nodes)],
        "convnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(value.astype(np.float32), name) for name, value in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _scores(kind, path, inputs, batch_size=8):
    with open_engine(kind, path, batch_size=batch_size, num_threads=1) as engine:
        return predict_scores(engine, inputs)


@needs_openvino
def test_openvino_matches_numpy_reference_and_pins_fp32(tiny):
    inputs = fx.tiny_inputs(3)
    with open_engine("openvino", tiny, batch_size=3, num_threads=1) as engine:
        scores = engine.run(inputs)
        assert engine.kind == "openvino" and engine.fixed_batch
        assert engine.time_run(inputs) > 0
        # OpenVINO would run float layers in bfloat16 on CPUs that have it; the engine pins f32
        assert engine.details["inference_precision"] == "f32"
        assert (engine.details["num_streams"], engine.details["num_threads"]) == (1, 1)
    assert scores.dtype == np.float32 and scores.shape == (3, 4)
    np.testing.assert_allclose(scores, fx.reference_scores(inputs), atol=1e-5)


@needs_openvino
def test_openvino_fp32_parity_with_onnxruntime(convnet):
    inputs = fx.tiny_inputs(21, seed=5)  # 21 rows at batch 8: the last batch is padded and trimmed
    ov_scores = _scores("openvino", convnet[0], inputs)
    ort_scores = _scores("onnxruntime", convnet[0], inputs)
    assert ov_scores.shape == (21, 4)
    np.testing.assert_allclose(ov_scores, ort_scores, atol=FP32_ATOL, rtol=0)


@needs_openvino
def test_openvino_int8_qdq_parity_with_onnxruntime(convnet):
    inputs = fx.tiny_inputs(64, seed=6)
    ov_int8 = _scores("openvino", convnet[1], inputs)
    ort_int8 = _scores("onnxruntime", convnet[1], inputs)
    fp32 = _scores("onnxruntime", convnet[0], inputs)
    assert np.abs(ort_int8 - fp32).max() > 1e-3  # the QDQ graph really is quantized, else this proves nothing
    tolerance = INT8_LOGIT_STEPS * _logits_scale(convnet[1]) / 4
    assert 1e-3 < tolerance < 0.01
    np.testing.assert_allclose(ov_int8, ort_int8, atol=tolerance, rtol=0)


def _logits_scale(qdq_path):
    """The quantization step of the tensor the graph's Sigmoid reads (its DequantizeLinear's scale)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(qdq_path)).graph
    (sigmoid,) = [node for node in graph.node if node.op_type == "Sigmoid"]
    (dequantize,) = [node for node in graph.node if sigmoid.input[0] in node.output]
    assert dequantize.op_type == "DequantizeLinear"
    (scale,) = [init for init in graph.initializer if init.name == dequantize.input[1]]
    return float(numpy_helper.to_array(scale))


@needs_openvino
def test_openvino_refuses_other_batch_than_the_graph_fixes(tmp_path):
    fixed = fx.write_tiny_onnx(tmp_path / "tiny_b4.onnx", batch=4)
    with pytest.raises(InputError, match="fixes the batch size to 4, so it cannot run batches of 8 on OpenVINO"):
        open_engine("openvino", fixed, batch_size=8)
    with open_engine("openvino", fixed, batch_size=4) as engine:
        with pytest.raises(InputError, match="exactly 4 rows, got 3"):
            engine.run(fx.tiny_inputs(3))


@needs_openvino
def test_benchmark_runs_openvino_beside_onnxruntime(tiny):
    result = benchmark_models({"teacher": tiny, "student": tiny}, ["onnxruntime", "openvino"], batch_sizes=(2,),
                              warmup=1, iterations=3, num_threads=1, settle_s=0.0)
    rows = {(row["model"], row["engine"]): row for row in result["results"]}
    assert {key: row["status"] for key, row in rows.items()} == {
        ("teacher", "onnxruntime"): "ok", ("student", "onnxruntime"): "ok",
        ("teacher", "openvino"): "ok", ("student", "openvino"): "ok"}
    assert rows[("student", "openvino")]["details"]["inference_precision"] == "f32"
    assert len(rows[("student", "openvino")]["times_ms"]) == 3
    assert {(s["model"], s["engine"]) for s in result["speedups"]} == {("student", "onnxruntime"),
                                                                      ("student", "openvino")}
    assert result["engines"] == {"onnxruntime": None, "openvino": None}


def test_missing_openvino_names_the_extra_everywhere(tiny, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now fails as if not installed
    reason = "openvino is not installed; install the extra: pip install 'compress-gate[openvino]'"
    assert openvino_unavailable_reason() == reason
    assert engine_availability()["openvino"] == reason
    with pytest.raises(EngineUnavailable, match=r"openvino is not available here: openvino is not installed; "
                                                r"install the extra: pip install 'compress-gate\[openvino\]'"):
        open_engine("openvino", tiny, batch_size=1)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", str(tiny), "-e", "onnxruntime", "-e", "openvino", "-b", "1",
                                      "--iterations", "1", "--warmup", "0", "--out", str(out)])
    assert result.exit_code == 3
    assert f"openvino was requested but is not available: {reason}" in " ".join(result.stderr.split())
    assert f"openvino: skipped, {reason}" in " ".join(result.stdout.split())  # the table's note keeps [openvino]
    rows = {row["engine"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["openvino"]["status"] == "skipped" and rows["onnxruntime"]["status"] == "ok"


def test_engines_import_does_not_import_openvino():
    code = "import sys, compress_gate.engines, compress_gate.cli; print('openvino' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_recipes_may_name_openvino_and_it_runs_the_onnxruntime_student(tmp_path):
    from compress_gate.config.run import EnginesConfig
    from compress_gate.compress.sparseml_backend import student_artefacts
    from compress_gate.pipeline.export import ExportedModels

    engines = EnginesConfig(check=("openvino",), benchmark={"engines": ["onnxruntime", "deepsparse", "openvino"]})
    assert engines.benchmark.engines[-1] == "openvino"
    exported = ExportedModels(tmp_path / "teacher.onnx", student_artefacts(
        tmp_path / "student.onnx", tmp_path / "student.ort.onnx", tmp_path / "student.deepsparse.onnx"), {})
    assert exported.student_for("openvino") == tmp_path / "student.ort.onnx"  # the QDQ graph, as ONNX Runtime
