"""The torch backend end to end on a tiny ResNet: targets and patterns measured on the exported ONNX graphs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from compress_gate.compress.export import QUANTIZED_KEY, load_onnx, run_onnx_cpu  # noqa: E402
from compress_gate.compress.torch_backend import TorchCompressor  # noqa: E402
from compress_gate.compress.torch_backend.export import export_fp32  # noqa: E402
from compress_gate.config.torch_backend import TorchCompressionConfig  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from compress_gate.models.build import build_model  # noqa: E402

PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
SIZE = 8


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return build_model("resnet", num_outputs=3, input_size=SIZE, width=8, depth=1).eval()


@pytest.fixture(scope="module")
def loader():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(16, 3, SIZE, SIZE, generator=generator)
    targets = torch.randint(0, 3, (16,), generator=generator)
    return [(inputs[i:i + 8], targets[i:i + 8]) for i in range(0, 16, 8)]  # 2 steps per epoch


def _run(teacher, loader, tmp_path, **section):
    config = TorchCompressionConfig.model_validate({"backend": "torch", **section})
    compressor = TorchCompressor(config)
    result = compressor.compress(teacher, loader, task="multiclass", seed=0)
    inputs = torch.cat([x for x, _ in loader]).numpy()
    artefacts = compressor.export(result, tmp_path, sample=inputs[:16], task="multiclass", calib=inputs)
    return compressor, result, artefacts


def _conv_weights(path):
    from onnx import numpy_helper

    graph = load_onnx(path).graph
    initializers = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    return [initializers[n.input[1]] for n in graph.node if n.op_type == "Conv" and n.input[1] in initializers]


def test_gmp_reaches_target_on_the_exported_graph(teacher, loader, tmp_path):
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    compressor, result, artefacts = _run(teacher, loader, tmp_path, epochs=3, pruning={
        "params": PARAMS, "final_sparsity": 0.6, "end_epoch": 2.0, "update_frequency": 0.5})
    pruned = sum(size for size in (p.numel() for n, p in result.model.named_parameters() if n in result.sparsity))
    assert len(result.sparsity) == 8  # 3 stages x 2 convs, and the downsamples of stages 2 and 3
    zeros = sum(int((w == 0).sum()) for w in _conv_weights(artefacts["onnxruntime"]))  # dense weights: no zeros
    assert abs(zeros / pruned - 0.6) <= 0.01
    assert result.overall_sparsity == pytest.approx(0.6, abs=0.01) and result.target_sparsity == 0.6
    assert compressor.parity["student.onnx"]["max_score_difference"] <= 1e-4
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # the teacher is not modified


def test_two_four_pattern_in_the_exported_graph(teacher, loader, tmp_path):
    _, result, artefacts = _run(teacher, loader, tmp_path, epochs=3, pruning={
        "params": PARAMS, "final_sparsity": 0.5, "end_epoch": 2.0, "update_frequency": 0.5, "mask": "2:4"})
    checked = 0
    for weight in _conv_weights(artefacts["onnxruntime"]):
        if weight.shape[1] % 4:
            continue  # the stem conv (3 input channels) is not pruned
        groups = np.moveaxis(weight, 1, -1).reshape(-1, 4)  # runs of 4 input channels
        assert int((groups != 0).sum(axis=1).max()) <= 2
        checked += 1
    assert checked == len(result.sparsity) == 8
    assert result.overall_sparsity == pytest.approx(0.5, abs=1e-9)


def test_structured_pruning_shrinks_the_graph_and_static_int8_keeps_parity(teacher, loader, tmp_path):
    pytest.importorskip("torch_pruning")
    compressor, result, artefacts = _run(teacher, loader, tmp_path, epochs=1, structured={"ratio": 0.5},
                                         quantization="static")
    pruning = compressor.channel_pruning
    # both sides of every inner conv halve: parameters and MACs fall to about a quarter
    assert pruning.params_after < 0.4 * pruning.params_before
    assert pruning.macs_after < 0.4 * pruning.macs_before
    dense = export_fp32(teacher, tmp_path / "teacher.onnx", input_shape=(3, SIZE, SIZE), task="multiclass")
    dense_channels = [w.shape[0] for w in _conv_weights(dense)]
    student_channels = [w.shape[0] for w in _conv_weights(artefacts["deepsparse"])]
    assert len(student_channels) == len(dense_channels)
    assert student_channels == [c // 2 for c in dense_channels]
    int8 = load_onnx(artefacts["onnxruntime"])
    assert artefacts["onnxruntime"].name == "student.ort.onnx"
    assert {p.key: p.value for p in int8.metadata_props}[QUANTIZED_KEY] == "qdq"
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)
    assert compressor.parity["student.ort.onnx"]["max_score_difference"] <= compressor.requantized_parity_atol
    assert compressor.parity["student.onnx"]["max_score_difference"] <= 1e-4


def test_dynamic_int8_artefact_and_parity(teacher, loader, tmp_path):
    compressor, result, artefacts = _run(teacher, loader, tmp_path, quantization="dynamic")
    graph = load_onnx(artefacts["onnxruntime"])
    assert {p.key: p.value for p in graph.metadata_props}[QUANTIZED_KEY] == "dynamic"
    assert any(n.op_type == "ConvInteger" for n in graph.graph.node)
    inputs = torch.cat([x for x, _ in loader]).numpy()[:16]
    with torch.no_grad():
        expected = torch.softmax(result.model(torch.from_numpy(inputs)), dim=1).numpy()
    difference = float(np.abs(run_onnx_cpu(artefacts["onnxruntime"], inputs) - expected).max())
    assert difference == pytest.approx(compressor.parity["student.ort.onnx"]["max_score_difference"])
    assert 0 < difference <= compressor.requantized_parity_atol
    assert np.isnan(result.overall_sparsity) and result.sparsity == {}


def test_static_int8_needs_calibration_inputs(teacher, loader, tmp_path):
    config = TorchCompressionConfig(backend="torch", quantization="static")
    compressor = TorchCompressor(config)
    result = compressor.compress(teacher, loader, task="multiclass", seed=0)
    with pytest.raises(InputError, match="needs calibration inputs"):
        compressor.export(result, tmp_path, sample=loader[0][0].numpy(), task="multiclass", calib=None)


def test_schedule_that_never_ends_is_refused(teacher, loader):
    # one batch per epoch: the schedule is consulted at epochs 0, 1, 2 and never reaches 2.9
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 3, "pruning": {
        "params": PARAMS, "final_sparsity": 0.6, "end_epoch": 2.9, "update_frequency": 0.5}})
    with pytest.raises(InputError, match="cannot reach end_epoch = 2.9"):
        TorchCompressor(config).compress(teacher, loader[:1], task="multiclass", seed=0)


def test_multilabel_student_distilled_and_pruned(teacher, loader, tmp_path):
    generator = torch.Generator().manual_seed(1)
    multilabel = [(x, torch.randint(0, 2, (len(x), 3), generator=generator).float()) for x, _ in loader]
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 3, "pruning": {
        "params": PARAMS, "final_sparsity": 0.6, "end_epoch": 2.0, "update_frequency": 0.5},
        "distillation": {"hardness": 0.5, "temperature": 2.0}})
    compressor = TorchCompressor(config)
    result = compressor.compress(teacher, multilabel, task="multilabel", seed=0)
    inputs = torch.cat([x for x, _ in loader]).numpy()
    artefacts = compressor.export(result, tmp_path, sample=inputs, task="multilabel", calib=None)
    scores = run_onnx_cpu(artefacts["onnxruntime"], inputs)
    with torch.no_grad():
        expected = torch.sigmoid(result.model(torch.from_numpy(inputs))).numpy()  # sigmoid scores, not softmax
    assert np.abs(scores - expected).max() <= 1e-4
    assert result.distilled and result.overall_sparsity == pytest.approx(0.6, abs=0.01)
