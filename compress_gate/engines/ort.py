"""ONNX Runtime engines: CPU (the default runtime), CUDA and TensorRT providers on a GPU.

A GPU kind is usable only when this onnxruntime build has the provider *and* a CUDA
device answers; otherwise :func:`ort_unavailable_reason` says why, and the caller
skips it with that reason. A session that silently falls back to the CPU provider
is refused (:class:`EngineUnavailable`), so a GPU number is never a CPU number.
GPU timings include the host-to-device copies of ``session.run``.
"""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from compress_gate.engines._base import Engine, EngineUnavailable, ModelInfo, default_num_threads, read_model_info
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["ORT_PROVIDERS", "OrtEngine", "ort_unavailable_reason", "cuda_unavailable_reason"]

ORT_PROVIDERS = {
    "onnxruntime": "CPUExecutionProvider",
    "onnxruntime-cuda": "CUDAExecutionProvider",
    "onnxruntime-tensorrt": "TensorrtExecutionProvider",
}
_TENSORRT_LIBRARIES = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")


def cuda_unavailable_reason() -> str | None:
    """``None`` when the CUDA driver reports at least one device, else why not.

    Asks the driver library directly (``cuInit``, ``cuDeviceGetCount``), because the
    pinned torch is a CPU build and cannot tell.
    """
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "no CUDA device: the NVIDIA driver library libcuda.so.1 is not present on this machine"
    status = driver.cuInit(0)
    if status != 0:
        return f"no CUDA device: the CUDA driver failed to initialise (cuInit error {status})"
    count = ctypes.c_int(0)
    if driver.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value < 1:
        return "no CUDA device: the CUDA driver reports 0 devices"
    return None


def ort_unavailable_reason(kind: str) -> str | None:
    """``None`` when ONNX Runtime can run ``kind`` here, else the reason (one sentence)."""
    try:
        import onnxruntime
    except ImportError as err:
        return f"onnxruntime cannot be imported ({err}); install the package with `make install`"
    provider = ORT_PROVIDERS[kind]
    reasons = []
    if kind != "onnxruntime":
        cuda_reason = cuda_unavailable_reason()
        if cuda_reason:
            reasons.append(cuda_reason)
    if provider not in onnxruntime.get_available_providers():
        hint = "; the GPU build comes with `make install-gpu`" if kind != "onnxruntime" else ""
        reasons.append(f"this onnxruntime {onnxruntime.__version__} build has no {provider}{hint}")
    if kind == "onnxruntime-tensorrt" and not reasons and not _tensorrt_libraries_load():
        reasons.append(f"the TensorRT libraries ({_TENSORRT_LIBRARIES[0]}) are not installed")
    return "; ".join(reasons) or None


def _tensorrt_libraries_load() -> bool:
    for name in _TENSORRT_LIBRARIES:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


class OrtEngine(Engine):
    """An ONNX Runtime session on one execution provider.

    Settings: ``intra_op_num_threads = num_threads`` (default: the CPUs this process
    may use), one inter-op thread, sequential execution, all graph optimisations.
    ``fixed_batch`` is true when the graph fixes its batch dimension; then
    ``batch_size`` must equal it.
    """

    def __init__(self, model_path: str | os.PathLike[str] | ModelInfo, *, batch_size: int,
                 num_threads: int | None = None, kind: str = "onnxruntime") -> None:
        import onnxruntime

        self.kind = kind
        self.info = read_model_info(model_path)
        self.batch_size = batch_size
        self.num_threads = num_threads or default_num_threads()
        self.fixed_batch = self.info.fixed_batch is not None
        if self.fixed_batch and self.info.fixed_batch != batch_size:
            raise InputError(
                f"{self.model_path}: the graph fixes the batch size to {self.info.fixed_batch}, so it cannot run "
                f"batches of {batch_size} on ONNX Runtime. Use batch size {self.info.fixed_batch}, or re-export "
                "with a dynamic batch axis."
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        provider = ORT_PROVIDERS[kind]
        providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
        try:
            self._session = onnxruntime.InferenceSession(str(self.model_path), options, providers=providers)
        except Exception as err:
            raise RuntimeFailure(f"ONNX Runtime ({provider}) could not load {self.model_path}: "
                                 f"{type(err).__name__}: {err}") from err
        active = self._session.get_providers()
        if active[0] != provider:
            raise EngineUnavailable(f"{kind}: ONNX Runtime did not start {provider} for {self.model_path} "
                                    f"(active providers: {active}); skipping rather than reporting CPU numbers.")

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        if self._session is None:
            raise RuntimeFailure(f"{self!r} is closed; open a new engine.")
        feed = {self.info.input_name: batch}
        try:
            start = time.perf_counter()
            outputs = self._session.run([self.info.output_name], feed)
            seconds = time.perf_counter() - start
        except Exception as err:
            raise RuntimeFailure(f"ONNX Runtime failed running {self.model_path}: {type(err).__name__}: {err}") \
                from err
        scores = np.asarray(outputs[0], dtype=np.float32)
        return scores.reshape(scores.shape[0], -1), seconds

    def close(self) -> None:
        self._session = None
