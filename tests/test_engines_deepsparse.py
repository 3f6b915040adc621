"""DeepSparse in a worker: matches ONNX Runtime; a crash or hang is a RuntimeFailure; the fallback works."""

from __future__ import annotations

import time

import _engine_fixtures as fx
import numpy as np
import pytest
from _worlds import needs_deepsparse

from compress_gate.engines import engine_availability, open_engine, open_engine_with_fallback, predict_scores
from compress_gate.engines import ds_worker
from compress_gate.engines.ds_worker import DeepSparseEngine
from compress_gate.errors import RuntimeFailure

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return fx.write_tiny_onnx(tmp_path_factory.mktemp("ds") / "tiny.onnx")


def test_deepsparse_matches_onnxruntime_on_tiny_model(tiny):
    reason = engine_availability()["deepsparse"]
    if reason:
        pytest.skip(f"deepsparse unavailable: {reason}")
    inputs = fx.tiny_inputs(7, seed=3)
    with open_engine("onnxruntime", tiny, batch_size=4) as ort_engine:
        expected = predict_scores(ort_engine, inputs)
    with open_engine("deepsparse", tiny, batch_size=4, num_threads=1) as engine:
        assert engine.kind == "deepsparse" and engine.fixed_batch
        assert engine.details["fraction_of_supported_ops"] > 0
        scores = predict_scores(engine, inputs)  # 4 + 3 rows, the last batch padded
        batch = inputs[:4].copy()
        batch.flags.writeable = False
        first = engine.time_run(batch)  # sends the array
        again = engine.time_run(batch)  # reuses the array already in the worker
        assert first > 0 and again > 0
    np.testing.assert_allclose(scores, expected, atol=1e-4)
    np.testing.assert_allclose(scores, fx.reference_scores(inputs), atol=1e-4)


def _assert_quick(start: float, limit: float = 30.0) -> None:
    assert time.monotonic() - start < limit, "the parent waited far longer than the worker lived"


def test_worker_abort_while_compiling_is_runtime_failure_naming_model_and_signal(tiny):
    start = time.monotonic()
    with pytest.raises(RuntimeFailure) as caught:
        DeepSparseEngine(tiny, batch_size=2, worker_target=fx.abort_on_start)
    message = str(caught.value)
    assert str(tiny) in message
    assert "killed by SIGABRT (signal 6) while compiling the model" in message
    _assert_quick(start)


def test_worker_abort_on_first_run_is_runtime_failure(tiny):
    start = time.monotonic()
    engine = DeepSparseEngine(tiny, batch_size=2, worker_target=fx.abort_on_first_run)
    with pytest.raises(RuntimeFailure, match="SIGABRT.*while running a batch of 2"):
        engine.run(fx.tiny_inputs(2))
    with pytest.raises(RuntimeFailure):  # a dead worker stays an error, never a hang
        engine.run(fx.tiny_inputs(2))
    engine.close()
    engine.close()
    _assert_quick(start)


def test_silent_worker_times_out(tiny):
    start = time.monotonic()
    with pytest.raises(RuntimeFailure, match="no answer within 1 s while compiling the model"):
        DeepSparseEngine(tiny, batch_size=2, timeout_s=1.0, worker_target=fx.never_answer)
    _assert_quick(start)


@needs_deepsparse
@pytest.mark.parametrize("target", [fx.abort_on_start, fx.abort_on_first_run])
def test_fallback_to_onnxruntime_when_deepsparse_crashes(tiny, monkeypatch, target):
    monkeypatch.setattr(ds_worker, "_deepsparse_worker_main", target)
    reasons = []
    inputs = fx.tiny_inputs(3)
    with open_engine_with_fallback("deepsparse", tiny, batch_size=3, on_fallback=reasons.append) as engine:
        assert engine.kind == "onnxruntime"
        scores = engine.run(inputs)
    assert len(reasons) == 1
    assert "falling back to ONNX Runtime" in reasons[0] and "SIGABRT" in reasons[0]
    np.testing.assert_allclose(scores, fx.reference_scores(inputs), atol=1e-5)


def test_fallback_warns_by_default(tiny, monkeypatch):
    monkeypatch.setattr(ds_worker, "_deepsparse_worker_main", fx.abort_on_start)
    with pytest.warns(RuntimeWarning, match="DeepSparse is not used"):
        open_engine_with_fallback("deepsparse", tiny, batch_size=1).close()
