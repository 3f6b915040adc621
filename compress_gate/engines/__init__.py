"""Inference engines behind one small interface, one registry, and the benchmark that compares them.

Every kind is declared once in :data:`ENGINES` (factory, availability check, artefact it
runs, fallback); :data:`ENGINE_KINDS` lists them:

- ``onnxruntime``: ONNX Runtime on CPU, the default runtime.
- ``deepsparse``: DeepSparse on CPU, compiled and run in a worker process, so a
  C++ abort becomes :class:`~compress_gate.errors.RuntimeFailure` (or a fallback
  to ONNX Runtime with :func:`open_engine_with_fallback`). Its community licence
  allows evaluation only, so it is the benchmark engine and an opt-in runtime.
- ``openvino``: OpenVINO on CPU (the ``[openvino]`` extra), running the same FP32 or
  QDQ INT8 artefact as ONNX Runtime, with float layers pinned to f32.
- ``onnxruntime-cuda`` / ``onnxruntime-tensorrt``: ONNX Runtime on a GPU, used when
  the provider and a CUDA device exist, otherwise skipped with the reason
  (:func:`engine_availability`).

Heavy libraries are imported inside the functions that use them.
"""

from compress_gate.engines._base import Engine, EngineUnavailable, ModelInfo, read_model_info
from compress_gate.engines._predict import ModelScores, predict_scores, score_model
from compress_gate.engines._registry import (ENGINE_KINDS, ENGINES, EngineEntry, engine_availability, open_engine,
                                             open_engine_with_fallback)
from compress_gate.engines.benchmark import benchmark_models, paired_speedup
from compress_gate.engines.machine import machine_description

__all__ = [
    "ENGINES",
    "ENGINE_KINDS",
    "EngineEntry",
    "Engine",
    "EngineUnavailable",
    "ModelInfo",
    "read_model_info",
    "engine_availability",
    "open_engine",
    "open_engine_with_fallback",
    "ModelScores",
    "score_model",
    "predict_scores",
    "benchmark_models",
    "paired_speedup",
    "machine_description",
]
