"""The engine registry: each kind declared once, opening one by kind, and the fallback.

:data:`ENGINES` maps an engine kind to its :class:`EngineEntry`: the factory that opens
a model on it, the check that says whether it can run on this machine, which exported
student artefact it runs, and the kind it falls back to when it cannot run. Everything
that names engines reads it: :data:`ENGINE_KINDS`, the recipe's ``engines`` keys
(:mod:`compress_gate.config.run`), :func:`engine_availability`, :func:`open_engine`,
:func:`open_engine_with_fallback`, the student artefact of each engine
(``ExportedModels.student_for``) and the engine checks of ``compress-gate run``.
Adding an engine is one entry here plus its :class:`~compress_gate.engines.Engine`
class. This module imports no engine library, so the config stage may read it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np

from compress_gate.engines._base import Engine, EngineUnavailable, ModelInfo, read_model_info
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["ENGINES", "ENGINE_KINDS", "EngineEntry", "Artefact", "engine_availability", "open_engine",
           "open_engine_with_fallback"]

#: Which exported student an engine runs when the student is quantized: ``"qdq"``, ONNX Runtime's
#: QDQ INT8 graph (``student.ort.onnx``), or ``"converted-int8"``, SparseML's converted INT8 graph
#: (``student.deepsparse.onnx``). An FP32 student is one file that every engine runs.
Artefact = Literal["qdq", "converted-int8"]


@dataclass(frozen=True)
class EngineEntry:
    """One engine kind as the registry declares it.

    Attributes
    ----------
    label : the engine's name in messages (``"DeepSparse"``)
    factory : ``factory(info, kind=, batch_size=, num_threads=, timeout_s=)`` opens the model
        on this kind (it imports the engine's library)
    unavailable_reason : ``unavailable_reason(kind)`` is ``None`` when the kind can run here,
        else the reason in one sentence
    artefact : the quantized student this kind runs (:data:`Artefact`)
    fallback : the kind :func:`open_engine_with_fallback` opens when this one cannot run or
        crashes on a probe batch, or ``None`` (then its absence is an error, and the engine
        checks of ``compress-gate run`` skip it)
    """

    label: str
    factory: Callable[..., Engine]
    unavailable_reason: Callable[[str], str | None]
    artefact: Artefact
    fallback: str | None = None


def _open_ort(info: ModelInfo, *, kind: str, batch_size: int, num_threads: int | None,
              timeout_s: float) -> Engine:
    from compress_gate.engines.ort import OrtEngine

    return OrtEngine(info, batch_size=batch_size, num_threads=num_threads, kind=kind)


def _open_deepsparse(info: ModelInfo, *, kind: str, batch_size: int, num_threads: int | None,
                     timeout_s: float) -> Engine:
    from compress_gate.engines.ds_worker import DeepSparseEngine

    return DeepSparseEngine(info, batch_size=batch_size, num_threads=num_threads, timeout_s=timeout_s)


def _open_openvino(info: ModelInfo, *, kind: str, batch_size: int, num_threads: int | None,
                   timeout_s: float) -> Engine:
    from compress_gate.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(info, batch_size=batch_size, num_threads=num_threads)


def _openvino_unavailable_reason(kind: str) -> str | None:
    from compress_gate.engines.openvino_engine import openvino_unavailable_reason

    return openvino_unavailable_reason()


def _ort_unavailable_reason(kind: str) -> str | None:
    from compress_gate.engines.ort import ort_unavailable_reason

    return ort_unavailable_reason(kind)


def _deepsparse_unavailable_reason(kind: str) -> str | None:
    """DeepSparse is checked without importing it (the import loads its native library):
    the package must be installed and the CPU must be x86-64 with AVX2, or aarch64."""
    if importlib.util.find_spec("deepsparse") is None:
        return "deepsparse is not installed (pip install deepsparse==1.8.0)"
    machine = platform.machine().lower()
    if machine in ("aarch64", "arm64"):
        return None
    if machine not in ("x86_64", "amd64"):
        return f"DeepSparse runs on x86-64 and aarch64 CPUs, not {machine}"
    from compress_gate.engines.machine import cpu_flags

    if not cpu_flags().get("avx2"):
        return "DeepSparse needs a CPU with AVX2, which this one lacks"
    return None


#: The registry, in the order engines are listed in reports and benchmarks.
ENGINES: Mapping[str, EngineEntry] = MappingProxyType({
    "onnxruntime": EngineEntry("ONNX Runtime (CPU)", _open_ort, _ort_unavailable_reason, "qdq"),
    "deepsparse": EngineEntry("DeepSparse", _open_deepsparse, _deepsparse_unavailable_reason, "converted-int8",
                              fallback="onnxruntime"),
    "openvino": EngineEntry("OpenVINO (CPU)", _open_openvino, _openvino_unavailable_reason, "qdq"),
    "onnxruntime-cuda": EngineEntry("ONNX Runtime (CUDA)", _open_ort, _ort_unavailable_reason, "qdq"),
    "onnxruntime-tensorrt": EngineEntry("ONNX Runtime (TensorRT)", _open_ort, _ort_unavailable_reason, "qdq"),
})
#: The engine kinds, in registry order.
ENGINE_KINDS: tuple[str, ...] = tuple(ENGINES)


def engine_availability() -> dict[str, str | None]:
    """Map each kind in :data:`ENGINE_KINDS` to ``None`` if usable here, else the reason.

    Each entry's own check decides: DeepSparse needs its package and an x86-64 CPU with
    AVX2 (or aarch64); ONNX Runtime kinds need their provider in this build and, for the
    GPU kinds, a CUDA device; OpenVINO must import and find its CPU device.
    """
    return {kind: entry.unavailable_reason(kind) for kind, entry in ENGINES.items()}


def open_engine(kind: str, onnx_path: str | os.PathLike[str], *, batch_size: int, num_threads: int | None = None,
                timeout_s: float = 600.0) -> Engine:
    """Open ``onnx_path`` on engine ``kind`` for batches of ``batch_size``.

    Raises :class:`InputError` for an unknown kind, a batch size < 1, or a missing or
    corrupt model; :class:`EngineUnavailable` (a RuntimeFailure) when the kind cannot
    run here; :class:`RuntimeFailure` when the engine fails to load the model or
    its worker dies. ``timeout_s`` bounds DeepSparse's compile and each run.
    """
    if kind not in ENGINES:
        raise InputError(f"unknown engine {kind!r}. It should be one of {list(ENGINE_KINDS)}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch size {batch_size!r} must be an integer >= 1.")
    info = read_model_info(onnx_path)  # missing or corrupt models are input errors on every engine
    reason = engine_availability()[kind]
    if reason:
        raise EngineUnavailable(f"{kind} is not available here: {reason}.")
    return ENGINES[kind].factory(info, kind=kind, batch_size=batch_size, num_threads=num_threads,
                                 timeout_s=timeout_s)


def open_engine_with_fallback(kind: str, onnx_path: str | os.PathLike[str], *, batch_size: int,
                              on_fallback: Callable[[str], None] | None = None,
                              num_threads: int | None = None) -> Engine:
    """Open ``kind``; if it has a fallback and it is unavailable or crashes, open the fallback.

    Only DeepSparse has one (ONNX Runtime, CPU). Such an engine is probed with one batch
    of zeros right after opening, so a crash at the first run also falls back before
    any real input is scored. ``on_fallback(reason)`` is called with the failure's
    message (default: a ``RuntimeWarning``); the returned engine's ``kind`` says which
    one runs. Input errors (missing or corrupt model, an unknown kind) are raised, never
    hidden by a fallback.
    """
    entry = ENGINES.get(kind)
    if entry is None or entry.fallback is None:
        return open_engine(kind, onnx_path, batch_size=batch_size, num_threads=num_threads)
    probe = np.zeros((batch_size, *_static_dims(read_model_info(onnx_path), entry.label)), dtype=np.float32)
    try:
        engine = open_engine(kind, onnx_path, batch_size=batch_size, num_threads=num_threads)
        try:
            engine.run(probe)
        except RuntimeFailure:
            engine.close()
            raise
    except RuntimeFailure as err:
        reason = (f"{entry.label} is not used for {Path(onnx_path)}; falling back to "
                  f"{ENGINES[entry.fallback].label}: {err}")
        (on_fallback or _warn)(reason)
        return open_engine(entry.fallback, onnx_path, batch_size=batch_size, num_threads=num_threads)
    return engine


def _static_dims(info: ModelInfo, label: str) -> tuple[int, ...]:
    dims = info.input_shape[1:]
    if any(dim is None for dim in dims):
        raise InputError(f"{info.path}: {label} needs static input dimensions, got "
                         f"{info.input_shape}. Export with a fixed image size.")
    return tuple(int(dim) for dim in dims)


def _warn(reason: str) -> None:
    warnings.warn(reason, RuntimeWarning, stacklevel=3)
