"""ONNX export, parity check, ONNX Runtime QDQ quantization and graph sparsity (tiny models, fast)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytest.importorskip("torch")  # needs torch: skipped in the core environment (make test-core)
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.utils.data import DataLoader, TensorDataset
from _worlds import needs_sparseml

from compress_gate.compress import (
    PARITY_ATOL_FP32,
    PARITY_ATOL_QUANTIZED,
    check_parity,
    compress_model,
    export_onnx,
    load_onnx,
    onnx_sparsity,
    pooled_sparsity,
    quantize_for_ort,
)
from compress_gate.compress.export import run_onnx_cpu
from compress_gate.compress.sparsity import per_weight_sparsity, zero_count
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.models import build_model

SHAPE = (3, 8, 8)


def _model(k=3, seed=0):
    torch.manual_seed(seed)
    model = build_model("resnet", num_outputs=k, input_size=8, width=4, depth=1)
    with torch.no_grad():  # non-trivial BN statistics, so folding them into the convs is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def _inputs(n=6, seed=1):
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).astype(np.float32)


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_export_outputs_scores_with_fixed_names_and_dynamic_batch(tmp_path, task):
    model = _model()
    path = export_onnx(model, tmp_path / "m.onnx", input_shape=SHAPE, task=task)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["scores"]
    for n in (1, 5):
        scores = session.run(None, {"input": _inputs(n)})[0]
        assert scores.shape == (n, 3)
        assert ((scores >= 0) & (scores <= 1)).all()
    if task == "multiclass":
        assert np.allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    meta = {p.key: p.value for p in load_onnx(path).metadata_props}
    assert meta == {"compress_gate.task": task, "compress_gate.quantized": "false"}
    assert check_parity(model, path, _inputs(), task=task, atol=PARITY_ATOL_FP32) <= PARITY_ATOL_FP32
    assert list(tmp_path.iterdir()) == [path]  # nothing temporary left behind


def test_parity_mismatch_names_model_difference_and_tolerance(tmp_path):
    model = _model()
    path = export_onnx(model, tmp_path / "teacher.onnx", input_shape=SHAPE, task="multilabel")
    with torch.no_grad():
        model.fc.bias += 1.0  # the torch model drifts after export
    with pytest.raises(RuntimeFailure, match=r"teacher\.onnx: exported scores differ from the torch model by up "
                                             r"to 0\.\d+ \(tolerance 0\.0001\)"):
        check_parity(model, path, _inputs(), task="multilabel", atol=PARITY_ATOL_FP32)


def test_missing_and_corrupt_onnx_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such ONNX model"):
        load_onnx(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07not really protobuf" * 10)
    with pytest.raises(InputError, match="corrupt.onnx: not a valid ONNX model"):
        check_parity(_model(), corrupt, _inputs(), task="multilabel", atol=1e-4)
    with pytest.raises(InputError, match="not a valid ONNX model"):
        quantize_for_ort(corrupt, tmp_path / "q.onnx", _inputs())


def test_bad_export_arguments_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="needs a model trained with QAT"):
        export_onnx(_model(), tmp_path / "m.onnx", input_shape=SHAPE, task="multilabel", quantized=True)
    with pytest.raises(InputError, match=r"input_shape = \(8, 8\) must be"):
        export_onnx(_model(), tmp_path / "m.onnx", input_shape=(8, 8), task="multilabel")
    with pytest.raises(InputError, match="task = 'binary'"):
        export_onnx(_model(), tmp_path / "m.onnx", input_shape=SHAPE, task="binary")
    assert not list(tmp_path.iterdir())


def test_quantize_for_ort_writes_a_calibrated_qdq_graph(tmp_path):
    model = _model()
    fp32 = export_onnx(model, tmp_path / "fp32.onnx", input_shape=SHAPE, task="multilabel")
    qdq = quantize_for_ort(fp32, tmp_path / "int8.onnx", _inputs(40, seed=2))
    graph = load_onnx(qdq).graph
    ops = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    # the scores node stays float: its input comes from a DequantizeLinear, its output is the graph's
    last = next(node for node in graph.node if "scores" in node.output)
    assert last.op_type == "Sigmoid"
    x = _inputs(8, seed=3)
    difference = np.abs(run_onnx_cpu(qdq, x) - run_onnx_cpu(fp32, x)).max()
    assert difference < 0.1  # INT8 post-training quantization of a random tiny net
    assert check_parity(model, qdq, x, task="multilabel", atol=0.1) == pytest.approx(difference, abs=1e-6)
    meta = {p.key: p.value for p in load_onnx(qdq).metadata_props if p.key.startswith("compress_gate.")}
    assert meta == {"compress_gate.task": "multilabel", "compress_gate.quantized": "qdq"}


def test_quantize_for_ort_quantizes_graphs_whose_nodes_have_no_names(tmp_path):
    # the output node is excluded by name: an unnamed graph must not exclude every node
    import onnx

    fp32 = export_onnx(_model(), tmp_path / "fp32.onnx", input_shape=SHAPE, task="multilabel")
    model = onnx.load(str(fp32))
    for node in model.graph.node:
        node.name = ""
    onnx.save(model, str(tmp_path / "unnamed.onnx"))
    qdq = quantize_for_ort(tmp_path / "unnamed.onnx", tmp_path / "int8.onnx", _inputs(40, seed=2))
    graph = load_onnx(qdq).graph
    convs = [node for node in graph.node if node.op_type == "Conv"]
    dequantized = {out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output}
    assert convs and all(node.input[0] in dequantized for node in convs)
    last = next(node for node in graph.node if "scores" in node.output)
    assert last.op_type == "Sigmoid" and last.input[0] in dequantized


def test_quantize_for_ort_checks_its_inputs(tmp_path):
    fp32 = export_onnx(_model(), tmp_path / "fp32.onnx", input_shape=SHAPE, task="multilabel")
    with pytest.raises(InputError, match=r"per-sample shape \(3, 4, 4\); .* expects \(3, 8, 8\)"):
        quantize_for_ort(fp32, tmp_path / "q.onnx", np.zeros((4, 3, 4, 4), np.float32))
    with pytest.raises(InputError, match="non-empty batch"):
        quantize_for_ort(fp32, tmp_path / "q.onnx", np.zeros((0, *SHAPE), np.float32))
    qdq = quantize_for_ort(fp32, tmp_path / "q.onnx", _inputs(4))
    with pytest.raises(InputError, match="already quantized"):
        quantize_for_ort(qdq, tmp_path / "qq.onnx", _inputs(4))


def test_dynamic_quantization_refuses_every_quantized_format(tmp_path):
    # one check for both quantizers: a QDQ graph and a dynamic (QOperator) graph are both refused
    from compress_gate.compress.torch_backend.quantize import quantize_dynamic_int8

    fp32 = export_onnx(_model(), tmp_path / "fp32.onnx", input_shape=SHAPE, task="multilabel")
    qdq = quantize_for_ort(fp32, tmp_path / "q.onnx", _inputs(4))
    dynamic = quantize_dynamic_int8(fp32, tmp_path / "d.onnx")
    for quantized in (qdq, dynamic):
        with pytest.raises(InputError, match=f"{quantized}: the graph is already quantized; dynamic quantization"):
            quantize_dynamic_int8(quantized, tmp_path / "dd.onnx")
        with pytest.raises(InputError, match="already quantized; quantize_for_ort needs the FP32 export"):
            quantize_for_ort(quantized, tmp_path / "qq.onnx", _inputs(4))


@needs_sparseml
def test_qat_model_exports_for_deepsparse_and_its_float_twin(tmp_path):
    recipe = ("version: 1.1.0\nmodifiers:\n  - !EpochRangeModifier\n    start_epoch: 0.0\n    end_epoch: 2.0\n"
              "  - !QuantizationModifier\n    start_epoch: 0.0\n    scheme: deepsparse\n")
    x = torch.from_numpy(_inputs(32, seed=4))
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    result = compress_model(_model(k=2), loader, recipe, task="multiclass")
    assert result.quantized
    converted = export_onnx(result.model, tmp_path / "ds.onnx", input_shape=SHAPE, task="multiclass",
                            quantized=True)
    ops = {node.op_type for node in load_onnx(converted).graph.node}
    assert "ConvInteger" in ops or "QLinearConv" in ops  # SparseML's converted INT8 graph
    assert check_parity(result.model, converted, _inputs(), task="multiclass",
                        atol=PARITY_ATOL_QUANTIZED) <= PARITY_ATOL_QUANTIZED
    twin = export_onnx(result.model, tmp_path / "fp32.onnx", input_shape=SHAPE, task="multiclass")
    dense = export_onnx(_model(k=2), tmp_path / "dense.onnx", input_shape=SHAPE, task="multiclass")

    def ops(path):
        return sorted(node.op_type for node in load_onnx(path).graph.node if node.op_type != "Identity")

    # BN folded back into the convs: the twin's graph is the dense model's (no Div/BatchNormalization/Q/DQ)
    assert ops(twin) == ops(dense)
    # the float twin matches the QAT model with fake quantization off, and stays near the INT8 graph
    assert check_parity(result.model, twin, _inputs(), task="multiclass", atol=PARITY_ATOL_FP32) <= PARITY_ATOL_FP32
    assert np.abs(run_onnx_cpu(twin, _inputs()) - run_onnx_cpu(converted, _inputs())).max() < 0.1
    meta = {p.key: p.value for p in load_onnx(converted).metadata_props}
    assert meta["compress_gate.quantized"] == "true"


def test_pooled_sparsity_by_hand():
    # 9 of 10 zeros and 0 of 10 -> 9 / 20
    assert pooled_sparsity([(9, 10), (0, 10)]) == 0.45
    assert np.isnan(pooled_sparsity([]))


def test_zero_count_and_per_weight_sparsity_by_hand():
    # 3 of 4 entries are exactly 0 (-0.0 counts as 0); 0 of 2 -> 0.75 and 0.0; pooled 3 / 6
    counts = {"a": zero_count(torch.tensor([[0.0, -0.0], [0.0, 1e-9]])), "b": zero_count(torch.ones(2))}
    assert counts == {"a": (3, 4), "b": (0, 2)}
    assert per_weight_sparsity(counts) == {"a": 0.75, "b": 0.0}
    assert pooled_sparsity(counts.values()) == 0.5


def test_onnx_sparsity_counts_zero_points_of_integer_weights(tmp_path):
    # ConvInteger weight (uint8) with zero point 128: 3 of 4 entries equal 128 -> 0.75;
    # a float Gemm weight with 1 zero of 4 -> 0.25
    conv_w = numpy_helper.from_array(np.array([128, 3, 128, 128], np.uint8).reshape(1, 1, 2, 2), "conv_w")
    conv_zp = numpy_helper.from_array(np.array(128, np.uint8), "conv_zp")
    gemm_w = numpy_helper.from_array(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32), "gemm_w")
    nodes = [
        helper.make_node("ConvInteger", ["x", "conv_w", "", "conv_zp"], ["c"]),
        helper.make_node("Cast", ["c"], ["cf"], to=TensorProto.FLOAT),
        helper.make_node("Flatten", ["cf"], ["f"]),
        helper.make_node("Gemm", ["f", "gemm_w"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 1, 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [conv_w, conv_zp, gemm_w])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    assert onnx_sparsity(path) == {"conv_w": 0.75, "gemm_w": 0.25}


def test_quantize_for_ort_calibrates_on_every_batch(tmp_path):
    """8 calibration batches (a multiple of ONNX Runtime's intermediate-output group, which its
    calibrator discards when that option is set): the graph input's activation range covers the largest
    input, which sits in the first batch. By hand: asymmetric uint8, scale = (max(x) - min(x, 0)) / 255."""
    from compress_gate.compress.ort_quant import CALIBRATION_BATCH_SIZE

    fp32 = export_onnx(_model(), tmp_path / "fp32.onnx", input_shape=SHAPE, task="multilabel")
    x = _inputs(8 * CALIBRATION_BATCH_SIZE, seed=4)
    x[0] *= 20.0                                           # the widest values are in batch 1 of 8
    qdq = load_onnx(quantize_for_ort(fp32, tmp_path / "int8.onnx", x))
    graph_input = qdq.graph.input[0].name
    quantize = next(node for node in qdq.graph.node if node.op_type == "QuantizeLinear" and node.input[0] == graph_input)
    scale = next(init for init in qdq.graph.initializer if init.name == quantize.input[1])
    expected = (max(float(x.max()), 0.0) - min(float(x.min()), 0.0)) / 255.0
    assert numpy_helper.to_array(scale).item() == pytest.approx(expected, rel=1e-6)
