"""DeepSparse and ONNX Runtime agree on real exports: pruned FP32 and SparseML's converted INT8 graph (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.engines import engine_availability, open_engine, predict_scores

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _pruned_and_quantized(tmp_path):
    import torch
    from sparseml.pytorch.optim import ScheduledModifierManager
    from torch.nn.utils import prune

    from compress_gate.compress import apply_compat, export_onnx
    from compress_gate.models import build_model
    from compress_gate.models.training import quiet_sparseml

    apply_compat()
    torch.manual_seed(0)
    model = build_model("resnet", num_outputs=5, input_size=32, width=16, depth=1)
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            prune.l1_unstructured(module, "weight", amount=0.9)
            prune.remove(module, "weight")
    fp32 = export_onnx(model.eval(), tmp_path / "s90.onnx", input_shape=(3, 32, 32), task="multilabel")
    model.train()  # SparseML fuses conv-bn for QAT in train mode
    recipe = "modifiers:\n  - !QuantizationModifier\n    start_epoch: 0.0\n"
    with quiet_sparseml() as loggers:
        ScheduledModifierManager.from_yaml(recipe).apply(model, loggers=loggers)
    model.eval()
    with torch.no_grad():
        for _ in range(4):  # observers record activation ranges
            model(torch.randn(8, 3, 32, 32))
    int8 = export_onnx(model, tmp_path / "s90_int8.onnx", input_shape=(3, 32, 32), task="multilabel",
                       quantized=True)
    return fp32, int8


def test_deepsparse_matches_onnxruntime_on_pruned_fp32_and_converted_int8(tmp_path):
    reason = engine_availability()["deepsparse"]
    if reason:
        pytest.skip(f"deepsparse unavailable: {reason}")
    from compress_gate.compress import onnx_sparsity

    fp32, int8 = _pruned_and_quantized(tmp_path)
    inputs = np.random.default_rng(1).standard_normal((10, 3, 32, 32), dtype=np.float32)
    # FP32: same arithmetic up to summation order. INT8: both run integer kernels on the same graph
    # (measured here: equal to 1e-7); 1e-2 leaves room for a CPU whose kernels round one step apart.
    for path, atol in ((fp32, 1e-4), (int8, 1e-2)):
        sparsity = onnx_sparsity(path)
        assert np.mean(list(sparsity.values())) == pytest.approx(0.9, abs=0.01)
        with open_engine("onnxruntime", path, batch_size=4) as engine:
            expected = predict_scores(engine, inputs)
        with open_engine("deepsparse", path, batch_size=4) as engine:
            scores = predict_scores(engine, inputs)
        assert scores.shape == expected.shape == (10, 5)
        assert np.max(np.abs(scores - expected)) <= atol, path.name
