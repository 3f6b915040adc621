"""ONNX Runtime engines: scores, batching and padding, input errors, GPU kinds skipped with a reason."""

from __future__ import annotations

import numpy as np
import pytest
from _engine_fixtures import reference_scores, tiny_inputs, write_tiny_onnx

from compress_gate.engines import (
    ENGINE_KINDS,
    EngineUnavailable,
    engine_availability,
    open_engine,
    predict_scores,
)
from compress_gate.errors import InputError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("ort") / "tiny.onnx")


@pytest.fixture(scope="module")
def tiny_fixed4(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("ort") / "tiny_b4.onnx", batch=4)


def test_ort_engine_scores_match_numpy_reference(tiny):
    inputs = tiny_inputs(3)
    with open_engine("onnxruntime", tiny, batch_size=3, num_threads=1) as engine:
        scores = engine.run(inputs)
        assert engine.kind == "onnxruntime" and not engine.fixed_batch
        assert engine.time_run(inputs) > 0
    assert scores.dtype == np.float32 and scores.shape == (3, 4)
    np.testing.assert_allclose(scores, reference_scores(inputs), atol=1e-5)


def test_predict_scores_pads_last_batch_of_fixed_batch_model_and_trims(tiny_fixed4):
    inputs = tiny_inputs(10, seed=1)
    done = []
    with open_engine("onnxruntime", tiny_fixed4, batch_size=4) as engine:
        assert engine.fixed_batch
        scores = predict_scores(engine, inputs, progress=done.append)
    assert done == [4, 4, 2]  # 10 rows: two full batches, then 2 real rows + 2 padding rows
    assert scores.shape == (10, 4)
    np.testing.assert_allclose(scores, reference_scores(inputs), atol=1e-5)


def test_predict_scores_dynamic_batch_runs_short_last_batch(tiny):
    inputs = tiny_inputs(5, seed=2)
    with open_engine("onnxruntime", tiny, batch_size=2) as engine:
        scores = predict_scores(engine, inputs)
    np.testing.assert_allclose(scores, reference_scores(inputs), atol=1e-5)


def test_fixed_batch_engine_refuses_other_batch_and_other_batch_size(tiny_fixed4):
    with pytest.raises(InputError, match="fixes the batch size to 4"):
        open_engine("onnxruntime", tiny_fixed4, batch_size=8)
    with open_engine("onnxruntime", tiny_fixed4, batch_size=4) as engine:
        with pytest.raises(InputError, match="exactly 4 rows, got 3"):
            engine.run(tiny_inputs(3))


def test_wrong_input_shape_is_input_error_naming_model(tiny):
    with open_engine("onnxruntime", tiny, batch_size=2) as engine:
        with pytest.raises(InputError, match=r"tiny\.onnx: inputs of shape \(2, 3, 9, 8\)"):
            engine.run(np.zeros((2, 3, 9, 8), np.float32))
        with pytest.raises(InputError, match="float ndarray"):
            engine.run(np.zeros((2, 3, 8, 8), np.int64))


def test_float64_inputs_are_cast(tiny):
    inputs = tiny_inputs(2).astype(np.float64)
    with open_engine("onnxruntime", tiny, batch_size=2) as engine:
        np.testing.assert_allclose(engine.run(inputs), reference_scores(inputs), atol=1e-5)


def test_non_finite_scores_are_an_input_error_naming_model_and_rows(tiny):
    # issue 9: NaN scores are bad input (exit 2, as README says), not an engine failure (exit 3)
    inputs = tiny_inputs(2)
    inputs[1, 0, 0, 0] = np.nan
    with open_engine("onnxruntime", tiny, batch_size=2) as engine:
        with pytest.raises(InputError, match=r"non-finite scores for 1 of 2 inputs \(NaN or inf; input rows \[1\]"
                           ) as info:
            predict_scores(engine, inputs)
    assert str(info.value).startswith(f"{tiny}: ")


def test_empty_inputs_are_an_input_error(tiny):
    with open_engine("onnxruntime", tiny, batch_size=2) as engine:
        with pytest.raises(InputError, match="no inputs to score"):
            predict_scores(engine, np.zeros((0, 3, 8, 8), np.float32))


@pytest.mark.parametrize("kind", ["onnxruntime", "deepsparse"])
def test_missing_and_corrupt_onnx_are_input_errors(tmp_path, kind):
    with pytest.raises(InputError, match="no such ONNX model"):
        open_engine(kind, tmp_path / "absent.onnx", batch_size=1)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf model" * 10)
    with pytest.raises(InputError, match="corrupt.onnx: not a valid ONNX model"):
        open_engine(kind, corrupt, batch_size=1)


def test_unknown_kind_and_bad_batch_size_are_input_errors(tiny):
    with pytest.raises(InputError, match="unknown engine 'tensorflow'"):
        open_engine("tensorflow", tiny, batch_size=1)
    with pytest.raises(InputError, match="batch size 0 must be an integer >= 1"):
        open_engine("onnxruntime", tiny, batch_size=0)


def test_engine_availability_covers_every_kind():
    availability = engine_availability()
    assert tuple(availability) == ENGINE_KINDS
    assert availability["onnxruntime"] is None
    assert all(reason is None or isinstance(reason, str) and reason for reason in availability.values())


@pytest.mark.parametrize("kind", ["onnxruntime-cuda", "onnxruntime-tensorrt"])
def test_unavailable_gpu_kind_raises_with_the_reason(tiny, kind):
    reason = engine_availability()[kind]
    if reason is None:
        pytest.skip(f"{kind} is available here; the GPU test below covers it")
    with pytest.raises(EngineUnavailable, match="is not available here: no CUDA device|has no"):
        open_engine(kind, tiny, batch_size=1)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["onnxruntime-cuda", "onnxruntime-tensorrt"])
def test_gpu_engine_matches_cpu(tiny, kind):
    reason = engine_availability()[kind]
    if reason:
        pytest.skip(f"{kind} unavailable: {reason}")
    inputs = tiny_inputs(4)
    with open_engine(kind, tiny, batch_size=4) as engine:
        assert engine.kind == kind
        np.testing.assert_allclose(engine.run(inputs), reference_scores(inputs), atol=1e-3)
