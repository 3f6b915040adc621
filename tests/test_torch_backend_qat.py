"""QAT on the torch backend (torchao pt2e): wired into the training loop, folded, exported to INT8 QDQ with parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("torchao", reason="needs the [torch] extra (torchao): `make install-torch`")
pytest.importorskip("onnxscript", reason="needs the [torch] extra (onnxscript): `make install-torch`")

from compress_gate.compress.export import QUANTIZED_KEY, load_onnx, run_onnx_cpu  # noqa: E402
from compress_gate.compress.sparsity import onnx_layer_zero_counts  # noqa: E402
from compress_gate.compress.torch_backend import TorchCompressor  # noqa: E402
from compress_gate.compress.torch_backend.finetune import fine_tune  # noqa: E402
from compress_gate.compress.torch_backend.qat import FakeQuantization, QATStudent, fold_batchnorm  # noqa: E402
from compress_gate.config.torch_backend import QATConfig, TorchCompressionConfig  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from compress_gate.models.build import build_model  # noqa: E402
from tests import test_torch_backend_compressor as compressor_tests  # noqa: E402

PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
SIZE = compressor_tests.SIZE
loader = compressor_tests.loader          # the fixture: 2 steps of 8 random images


def _teacher():
    torch.manual_seed(0)
    model = build_model("resnet", num_outputs=3, input_size=SIZE, width=8, depth=1)
    model.train()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding changes the weights
        for _ in range(3):
            model(torch.randn(8, 3, SIZE, SIZE) * 2 + 0.5)
    return model.eval()


def _fake_quantizers(module):
    from torchao.quantization.pt2e import FakeQuantizeBase

    return [m for m in module.modules() if isinstance(m, FakeQuantizeBase)]


def test_fold_batchnorm_keeps_outputs_and_weight_objects():
    model = _teacher()
    probe = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        before = model(probe)
    weight = model.layer1[0].conv1.weight
    assert fold_batchnorm(model) == 9  # stem, 2 per block x 3 stages, 2 downsamples
    assert model.layer1[0].conv1.weight is weight  # pruning masks keep pointing at it
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        assert torch.allclose(model(probe), before, atol=1e-5)


def test_qat_is_wired_into_the_training_loop(loader):
    # 2 steps per epoch, epochs 2: step epochs 0, 0.5, 1, 1.5; QAT from 1.0, observers frozen from 1.5
    student = _teacher()
    qat = FakeQuantization(QATConfig(start_epoch=1.0, disable_quantization_observer_epoch=1.5),
                           input_shape=(3, SIZE, SIZE))
    seen, scales = [], []
    step = qat.step

    def spy(model, epoch):
        trained = step(model, epoch)
        seen.append((epoch, len(_fake_quantizers(trained))))
        if qat.fake_quant is not None:
            scales.append(torch.cat([fq.scale.flatten().clone() for fq in _fake_quantizers(trained)]))
        return trained

    qat.step = spy
    trained = fine_tune(student, loader, task="multiclass", epochs=2, lr=0.05, seed=0, qat=qat)
    snapshot = {name: p.detach().clone() for name, p in trained.named_parameters()}
    assert [epoch for epoch, _ in seen] == [0.0, 0.5, 1.0, 1.5]
    assert [count > 0 for _, count in seen] == [False, False, True, True]  # fake quantization from start_epoch
    assert trained is qat.fake_quant and trained is not student
    shared = dict(student.named_parameters())  # the float student holds the same weights
    assert all(p is shared[name] for name, p in trained.named_parameters())
    assert len(scales) == 2
    result = qat.finish()
    assert isinstance(result, QATStudent) and not result.training
    assert all(not fq.observer_enabled.item() for fq in _fake_quantizers(result))  # frozen after training
    # the weights moved under fake quantization: compare with the folded weights at QAT start
    start = _teacher()
    fold_batchnorm(start)
    moved = [float((snapshot[name] - p).abs().max()) for name, p in start.named_parameters() if name in snapshot]
    assert max(moved) > 1e-3


def test_qat_that_never_starts_is_refused(loader):
    config = TorchCompressionConfig.model_validate({"backend": "torch", "epochs": 3, "quantization": "qat",
                                                    "qat": {"start_epoch": 2.5}})
    # one batch per epoch: steps start at epochs 0, 1, 2 and never reach 2.5
    with pytest.raises(InputError, match="start_epoch = 2.5 is never reached"):
        TorchCompressor(config).compress(_teacher(), loader[:1], task="multiclass", seed=0)


@pytest.mark.slow
def test_pruned_qat_student_exports_int8_qdq_with_parity_and_sparsity(loader, tmp_path):
    teacher = _teacher()
    config = TorchCompressionConfig.model_validate({
        "backend": "torch", "epochs": 3, "quantization": "qat", "qat": {"start_epoch": 2.0},
        "pruning": {"params": PARAMS, "final_sparsity": 0.6, "end_epoch": 2.0, "update_frequency": 0.5}})
    compressor = TorchCompressor(config)
    result = compressor.compress(teacher, loader, task="multiclass", seed=0)
    assert result.quantized and isinstance(result.model, QATStudent)
    inputs = torch.cat([x for x, _ in loader]).numpy()
    artefacts = compressor.export(result, tmp_path, sample=inputs, task="multiclass", calib=None)
    shipped = artefacts["onnxruntime"]
    assert shipped.name == "student.ort.onnx" and artefacts["deepsparse"].name == "student.onnx"
    graph = load_onnx(shipped)
    ops = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert {p.key: p.value for p in graph.metadata_props}[QUANTIZED_KEY] == "qat"
    # parity against the fake-quantized torch model, recomputed here and as recorded
    with torch.no_grad():
        expected = torch.softmax(result.model(torch.from_numpy(inputs)), dim=1).numpy()
    difference = float(np.abs(run_onnx_cpu(shipped, inputs) - expected).max())
    recorded = json.loads((tmp_path / "parity.json").read_text())
    assert recorded["student.ort.onnx"]["max_score_difference"] == pytest.approx(difference)
    assert difference <= recorded["student.ort.onnx"]["tolerance"] == compressor.quantized_parity_atol
    assert recorded["student.onnx"]["max_score_difference"] <= 1e-4
    # sparsity read off the INT8 graph under the torch weight names: the pruning target survives QAT
    counts = onnx_layer_zero_counts(shipped)
    assert set(result.sparsity) <= set(counts)
    zeros = sum(counts[name][0] for name in result.sparsity)
    total = sum(counts[name][1] for name in result.sparsity)
    assert abs(zeros / total - 0.6) <= 0.01
    assert run_onnx_cpu(shipped, inputs[:1]).shape == (1, 3)  # dynamic batch axis


RECIPES = Path(__file__).parents[1] / "recipes" / "torch"


@pytest.mark.slow
def test_qat_recipe_runs_end_to_end(tmp_path):
    """`compress-gate run recipes/torch/qat_int8.yaml` with the epochs cut (test-only override)."""
    pytest.importorskip("torch_pruning", reason="needs the [torch] extra (Torch-Pruning): `make install-torch`")
    from typer.testing import CliRunner

    from compress_gate.cli import app

    raw = yaml.safe_load((RECIPES / "qat_int8.yaml").read_text(encoding="utf-8"))
    raw["output"], raw["model"]["cache_dir"] = str(tmp_path / "run"), str(tmp_path / "cache")
    raw["model"]["train"]["epochs"] = 2
    raw["compression"].update(epochs=2, qat={"start_epoch": 1.0, "disable_quantization_observer_epoch": 1.5})
    raw["engines"]["benchmark"] = {**raw["engines"]["benchmark"], "iterations": 3, "warmup": 1}
    recipe = tmp_path / "qat_int8.yaml"
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(recipe)])
    assert result.exit_code in (0, 1), result.output  # released or refused: a verdict, not an error
    run = tmp_path / "run"
    export = json.loads((run / "onnx" / "export.json").read_text())
    assert export["ships"] == export["students"]["onnxruntime"] == "student.ort.onnx"
    graph = load_onnx(run / "onnx" / "student.ort.onnx").graph
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in graph.node}
    parity = json.loads((run / "onnx" / "parity.json").read_text())
    assert parity["student.ort.onnx"]["reference"] == "student (torch, fake-quantized QAT model)"
    assert json.loads((run / "compression.json").read_text())["quantized"] is True
    similarity = json.loads((run / "similarity.json").read_text())  # the traced QAT graph has no layer modules
    assert similarity["student"] == "qat float twin" and similarity["mean"]["cka"] is not None
