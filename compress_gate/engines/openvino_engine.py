"""OpenVINO on CPU: a maintained engine with fast INT8 kernels (VNNI, AMX) for the same ONNX artefacts.

OpenVINO reads the ONNX file directly (``Core.read_model``; no conversion step, so
OpenVINO's model-conversion telemetry never starts) and compiles it for the CPU
device. It runs the artefact ONNX Runtime runs: the FP32 graph, or the static QDQ
INT8 graph, whose QuantizeLinear/DequantizeLinear pairs OpenVINO folds into INT8
kernels.

Settings, so its numbers and scores compare with the other engines:

- ``INFERENCE_PRECISION_HINT = f32``. OpenVINO's CPU plugin otherwise runs float
  layers in bfloat16 on CPUs that have it (AVX-512 BF16, AMX), which changes the
  scores the gate judges (about 3 significant digits); INT8 layers stay INT8.
- ``PERFORMANCE_HINT = LATENCY``, one stream, ``INFERENCE_NUM_THREADS = num_threads``:
  one synchronous request uses every thread, as ONNX Runtime's session does.
- A dynamic batch axis is fixed to ``batch_size`` before compiling (static shapes
  compile to faster kernels), so ``fixed_batch`` is true and
  :func:`~compress_gate.engines.predict_scores` pads the last short batch. A graph
  that fixes another batch size is refused, as on ONNX Runtime.

Install with the ``[openvino]`` extra; without it :func:`openvino_unavailable_reason`
says so and the kind is skipped with that reason.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from compress_gate.engines._base import Engine, ModelInfo, default_num_threads, read_model_info
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["OpenVinoEngine", "openvino_unavailable_reason"]

_INSTALL = "install the extra: pip install 'compress-gate[openvino]'"


def openvino_unavailable_reason() -> str | None:
    """``None`` when OpenVINO can run on this machine's CPU, else the reason (one sentence).

    Reasons: the ``openvino`` package is missing (names the ``[openvino]`` extra), it
    fails to import (e.g. built for another numpy), or its runtime lists no ``CPU``
    device (a CPU its plugin does not support).
    """
    try:
        import openvino
    except ModuleNotFoundError as err:
        if err.name != "openvino":
            return f"openvino cannot be imported ({err}); reinstall it: {_INSTALL}"
        return f"openvino is not installed; {_INSTALL}"
    except ImportError as err:
        return f"openvino cannot be imported ({err}); reinstall it: {_INSTALL}"
    try:
        devices = openvino.Core().available_devices
    except Exception as err:  # the native runtime failed to start
        return f"the OpenVINO {openvino.__version__} runtime failed to start: {type(err).__name__}: {err}"
    if "CPU" not in devices:
        return f"OpenVINO {openvino.__version__} finds no CPU device it supports here (devices: {devices})"
    return None


class OpenVinoEngine(Engine):
    """One ONNX model compiled by OpenVINO for the CPU at one batch size: f32 inference precision (no
    bfloat16), the latency hint with one stream and ``num_threads`` threads, and a dynamic batch
    axis fixed to ``batch_size`` (``fixed_batch``: the caller pads the last short batch).

    ``details`` holds what the runtime reports: version, device name, its optimisation
    capabilities (``INT8``, ``BF16``, ...), and the compiled model's inference
    precision, streams and threads.
    """

    kind = "openvino"
    fixed_batch = True

    def __init__(self, model_path: str | os.PathLike[str] | ModelInfo, *, batch_size: int,
                 num_threads: int | None = None) -> None:
        import openvino

        self.info = read_model_info(model_path)
        self.batch_size = batch_size
        self.num_threads = num_threads or default_num_threads()
        if self.info.fixed_batch is not None and self.info.fixed_batch != batch_size:
            raise InputError(
                f"{self.model_path}: the graph fixes the batch size to {self.info.fixed_batch}, so it cannot run "
                f"batches of {batch_size} on OpenVINO. Use batch size {self.info.fixed_batch}, or re-export "
                "with a dynamic batch axis."
            )
        core = openvino.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1",
                  "INFERENCE_NUM_THREADS": str(self.num_threads)}
        try:
            model = core.read_model(str(self.model_path))
            shape = [batch_size, *(-1 if dim is None else dim for dim in self.info.input_shape[1:])]
            model.reshape({self.info.input_name: openvino.PartialShape(shape)})
            self._compiled = core.compile_model(model, "CPU", config)
            self._request = self._compiled.create_infer_request()
            self._output = self._compiled.output(self.info.output_name)
        except Exception as err:
            raise RuntimeFailure(f"OpenVINO could not load {self.model_path}: {type(err).__name__}: {err}") from err
        self.details: dict[str, Any] = {
            "version": openvino.__version__,
            "device": core.get_property("CPU", "FULL_DEVICE_NAME"),
            "capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
            "inference_precision": self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "num_streams": int(self._compiled.get_property("NUM_STREAMS")),
            "num_threads": int(self._compiled.get_property("INFERENCE_NUM_THREADS")),
        }

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        if self._request is None:
            raise RuntimeFailure(f"{self!r} is closed; open a new engine.")
        try:
            start = time.perf_counter()
            self._request.infer({self.info.input_name: batch}, share_inputs=True)
            seconds = time.perf_counter() - start
            scores = np.array(self._request.get_tensor(self._output).data, dtype=np.float32)
        except Exception as err:
            raise RuntimeFailure(f"OpenVINO failed running {self.model_path}: {type(err).__name__}: {err}") from err
        return scores.reshape(scores.shape[0], -1), seconds

    def close(self) -> None:
        self._request = None
        self._compiled = None
