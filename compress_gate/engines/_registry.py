"""Which engines this machine can run, opening one by kind, and the DeepSparse fallback."""

from __future__ import annotations

import importlib.util
import os
import platform
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from compress_gate.engines._base import ENGINE_KINDS, Engine, EngineUnavailable, ModelInfo, read_model_info
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["engine_availability", "open_engine", "open_engine_with_fallback"]


def engine_availability() -> dict[str, str | None]:
    """Map each kind in :data:`ENGINE_KINDS` to ``None`` if usable here, else the reason.

    DeepSparse is checked without importing it (the import loads its native
    library): the package must be installed and the CPU must be x86-64 with AVX2
    or aarch64. ONNX Runtime kinds need their provider in this build and, for the
    GPU kinds, a CUDA device. OpenVINO must import and find its CPU device.
    """
    from compress_gate.engines.openvino_engine import openvino_unavailable_reason
    from compress_gate.engines.ort import ort_unavailable_reason

    reasons: dict[str, str | None] = {kind: ort_unavailable_reason(kind) for kind in ENGINE_KINDS
                                      if kind.startswith("onnxruntime")}
    reasons["deepsparse"] = _deepsparse_unavailable_reason()
    reasons["openvino"] = openvino_unavailable_reason()
    return {kind: reasons[kind] for kind in ENGINE_KINDS}


def _deepsparse_unavailable_reason() -> str | None:
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


def open_engine(kind: str, onnx_path: str | os.PathLike[str], *, batch_size: int, num_threads: int | None = None,
                timeout_s: float = 600.0) -> Engine:
    """Open ``onnx_path`` on engine ``kind`` for batches of ``batch_size``.

    Raises :class:`InputError` for an unknown kind, a batch size < 1, or a missing or
    corrupt model; :class:`EngineUnavailable` (a RuntimeFailure) when the kind cannot
    run here; :class:`RuntimeFailure` when the engine fails to load the model or
    its worker dies. ``timeout_s`` bounds DeepSparse's compile and each run.
    """
    if kind not in ENGINE_KINDS:
        raise InputError(f"unknown engine {kind!r}. It should be one of {list(ENGINE_KINDS)}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch size {batch_size!r} must be an integer >= 1.")
    info = read_model_info(onnx_path)  # missing or corrupt models are input errors on every engine
    reason = engine_availability()[kind]
    if reason:
        raise EngineUnavailable(f"{kind} is not available here: {reason}.")
    if kind == "deepsparse":
        from compress_gate.engines.ds_worker import DeepSparseEngine

        return DeepSparseEngine(info, batch_size=batch_size, num_threads=num_threads, timeout_s=timeout_s)
    if kind == "openvino":
        from compress_gate.engines.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(info, batch_size=batch_size, num_threads=num_threads)
    from compress_gate.engines.ort import OrtEngine

    return OrtEngine(info, batch_size=batch_size, num_threads=num_threads, kind=kind)


def open_engine_with_fallback(kind: str, onnx_path: str | os.PathLike[str], *, batch_size: int,
                              on_fallback: Callable[[str], None] | None = None,
                              num_threads: int | None = None) -> Engine:
    """Open ``kind``; if it is DeepSparse and it is unavailable or crashes, open ONNX Runtime CPU.

    The DeepSparse engine is probed with one batch of zeros right after compiling,
    so a crash at the first run also falls back before any real input is scored.
    ``on_fallback(reason)`` is called with the failure's message (default: a
    ``RuntimeWarning``); the returned engine's ``kind`` says which one runs. Input
    errors (missing or corrupt model) are raised, never hidden by a fallback.
    """
    if kind != "deepsparse":
        return open_engine(kind, onnx_path, batch_size=batch_size, num_threads=num_threads)
    probe = np.zeros((batch_size, *_static_dims(read_model_info(onnx_path))), dtype=np.float32)
    try:
        engine = open_engine(kind, onnx_path, batch_size=batch_size, num_threads=num_threads)
        try:
            engine.run(probe)
        except RuntimeFailure:
            engine.close()
            raise
    except RuntimeFailure as err:
        reason = f"DeepSparse is not used for {Path(onnx_path)}; falling back to ONNX Runtime (CPU): {err}"
        (on_fallback or _warn)(reason)
        return open_engine("onnxruntime", onnx_path, batch_size=batch_size, num_threads=num_threads)
    return engine


def _static_dims(info: ModelInfo) -> tuple[int, ...]:
    dims = info.input_shape[1:]
    if any(dim is None for dim in dims):
        raise InputError(f"{info.path}: DeepSparse needs static input dimensions, got "
                         f"{info.input_shape}. Export with a fixed image size.")
    return tuple(int(dim) for dim in dims)


def _warn(reason: str) -> None:
    warnings.warn(reason, RuntimeWarning, stacklevel=3)
