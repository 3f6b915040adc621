"""The engine registry is the one declaration of an engine, and score_model the one scoring path."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import _engine_fixtures as fx
import numpy as np
import pytest

import compress_gate.engines as engines
from compress_gate.engines import ENGINE_KINDS, ENGINES, Engine, EngineEntry, engine_availability, score_model
from compress_gate.engines import _registry, ds_worker
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.compress.sparseml_backend import student_artefacts
from compress_gate.pipeline.export import ExportedModels


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return fx.write_tiny_onnx(tmp_path_factory.mktemp("registry") / "tiny.onnx")


class _NumpyEngine(Engine):
    """An engine that only the test registers: the tiny model's NumPy reference."""

    fixed_batch = False

    def __init__(self, info, *, kind, batch_size, num_threads, timeout_s):
        self.kind, self.info, self.batch_size, self.num_threads = kind, info, batch_size, 1

    def _run(self, batch):
        return fx.reference_scores(batch).astype(np.float32), 0.0

    def close(self):
        pass


def test_every_name_of_an_engine_comes_from_the_registry():
    from compress_gate.config.run import EngineKind

    assert ENGINE_KINDS == tuple(ENGINES) == tuple(get_args(EngineKind))
    assert tuple(engine_availability()) == ENGINE_KINDS
    assert [kind for kind, entry in ENGINES.items() if entry.fallback] == ["deepsparse"]
    assert ENGINES["deepsparse"].fallback in ENGINES


def test_a_new_engine_is_one_entry(tiny, monkeypatch):
    # one entry makes the kind openable, listed as available, and gives it its student artefact
    entry = EngineEntry("NumPy", _NumpyEngine, lambda kind: None, "converted-int8")
    registry = {**ENGINES, "numpy": entry}
    monkeypatch.setattr(_registry, "ENGINES", registry)
    monkeypatch.setattr(engines, "ENGINES", registry)
    assert engine_availability()["numpy"] is None
    inputs = fx.tiny_inputs(5)
    result = score_model(tiny, inputs, engine="numpy", batch_size=2)
    assert result.engine == "numpy" and result.fallback is None
    np.testing.assert_allclose(result.scores, fx.reference_scores(inputs), rtol=1e-6)
    exported = ExportedModels(Path("t.onnx"), student_artefacts(Path("s.onnx"), Path("s.ort.onnx"), Path("s.ds.onnx")),
                              {})
    assert exported.student_for("numpy") == Path("s.ds.onnx")


def test_score_model_scores_on_the_named_engine(tiny):
    inputs = fx.tiny_inputs(7)
    result = score_model(tiny, inputs, engine="onnxruntime", batch_size=3)
    assert result.engine == "onnxruntime" and result.fallback is None
    assert result.scores.dtype == np.float32 and result.scores.shape == (7, fx.OUTPUTS)
    np.testing.assert_allclose(result.scores, fx.reference_scores(inputs), atol=1e-5)


def test_score_model_refuses_an_unknown_engine(tiny):
    with pytest.raises(InputError, match=r"unknown engine 'tflite'. It should be one of \['onnxruntime'"):
        score_model(tiny, fx.tiny_inputs(1), engine="tflite", batch_size=1)


def test_score_model_falls_back_only_when_allowed(tiny, monkeypatch):
    if engine_availability()["deepsparse"]:
        pytest.skip(f"deepsparse unavailable: {engine_availability()['deepsparse']}")
    monkeypatch.setattr(ds_worker, "_deepsparse_worker_main", fx.abort_on_start)
    inputs = fx.tiny_inputs(3)
    result = score_model(tiny, inputs, engine="deepsparse", batch_size=3, allow_fallback=True)
    assert result.engine == "onnxruntime"
    assert "DeepSparse is not used" in result.fallback and "falling back to ONNX Runtime (CPU)" in result.fallback
    np.testing.assert_allclose(result.scores, fx.reference_scores(inputs), atol=1e-5)
    with pytest.raises(RuntimeFailure, match="SIGABRT"):
        score_model(tiny, inputs, engine="deepsparse", batch_size=3)
