"""The one small interface every inference engine implements, and ONNX model checks.

An :class:`Engine` loads one ONNX model for one batch size and runs batches of
preprocessed inputs, returning the model's scores. ``time_run`` returns the seconds
spent inside the engine's inference call only (for DeepSparse, measured inside the
worker process), so benchmarks exclude input generation and inter-process copies.
"""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["Engine", "EngineUnavailable", "ModelInfo", "read_model_info", "default_num_threads"]

_FLOAT = 1    # onnx.TensorProto.FLOAT (onnx is imported lazily)


class EngineUnavailable(RuntimeFailure):
    """The engine cannot run on this machine (library, provider or device missing)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the engines need to know about an ONNX model.

    ``input_shape`` is the full input shape with ``None`` for symbolic (dynamic)
    dimensions, e.g. ``(None, 3, 224, 224)``; ``output_index`` is the position of the
    output named ``scores`` (or 0 when no output has that name).
    """

    path: Path
    input_name: str
    input_shape: tuple[int | None, ...]
    output_name: str
    output_index: int

    @property
    def fixed_batch(self) -> int | None:
        """The batch size fixed in the graph, or ``None`` for a dynamic batch axis."""
        return self.input_shape[0] if self.input_shape else None


def read_model_info(path: str | os.PathLike[str] | ModelInfo) -> ModelInfo:
    """Read and check an ONNX model's single input and its scores output (a ModelInfo is returned as is).

    Raises :class:`InputError` for a missing file, a file that is not a valid ONNX
    model (checked with ``onnx.checker``, so DeepSparse never sees a corrupt graph),
    a model with other than one non-initializer input, or an input that is not
    float32 (the engines feed float32; the message names the input and its dtype).
    """
    from compress_gate.compress.export import load_onnx

    if isinstance(path, ModelInfo):
        return path
    path = Path(path)
    model = load_onnx(path)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise InputError(
            f"{path}: the engines run models with exactly one input; this one has "
            f"{[value.name for value in inputs]}. Export the model with a single image input."
        )
    elem_type = inputs[0].type.tensor_type.elem_type
    if elem_type != _FLOAT:
        import onnx

        dtype = onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() \
            else f"type {elem_type}"
        raise InputError(
            f"{path}: the model's input {inputs[0].name!r} has dtype {dtype.lower()}; the tool feeds "
            "float32 preprocessed inputs (N, C, H, W). Export the model with a float32 input (cast inside "
            "the graph if it needs another type)."
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(dim.dim_value if dim.HasField("dim_value") else None for dim in dims)
    outputs = [value.name for value in model.graph.output]
    output_index = outputs.index("scores") if "scores" in outputs else 0
    return ModelInfo(path, inputs[0].name, shape, outputs[output_index], output_index)


def default_num_threads() -> int:
    """Number of CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Engine(abc.ABC):
    """One ONNX model loaded in one engine for one batch size.

    Attributes: ``kind`` (one of :data:`~compress_gate.engines.ENGINE_KINDS`), ``model_path``, ``batch_size``,
    ``num_threads``, ``fixed_batch`` (true when every batch must have exactly
    ``batch_size`` rows; :func:`predict_scores` pads the last batch) and ``info``.
    Use as a context manager, or call :meth:`close`.
    """

    kind: str
    info: ModelInfo
    batch_size: int
    num_threads: int
    fixed_batch: bool

    @property
    def model_path(self) -> Path:
        return self.info.path

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Scores of ``batch`` (B, *input dims) float32 as a float32 array (B, K)."""
        return self._run(self.check_batch(batch))[0]

    def time_run(self, batch: np.ndarray) -> float:
        """Seconds spent inside the engine's inference call for one run of ``batch``."""
        return self._run(self.check_batch(batch))[1]

    @abc.abstractmethod
    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        """Run a checked batch; return (scores (B, K) float32, seconds inside the engine)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the engine (idempotent)."""

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """Return ``batch`` as C-contiguous float32, or raise InputError naming the model.

        The batch must have the model's rank and static dimensions; its first
        dimension must equal ``batch_size`` when ``fixed_batch`` is true.
        """
        if not isinstance(batch, np.ndarray) or not np.issubdtype(batch.dtype, np.floating):
            raise InputError(f"{self.model_path}: inputs must be a float ndarray, got {type(batch).__name__} "
                             f"{getattr(batch, 'dtype', '')}.")
        expected = self.info.input_shape
        wrong = batch.ndim != len(expected) or any(
            want is not None and got != want for got, want in zip(batch.shape[1:], expected[1:])
        )
        if wrong or batch.shape[0] < 1:
            shown = ("B",) + tuple("?" if dim is None else dim for dim in expected[1:])
            raise InputError(f"{self.model_path}: inputs of shape {batch.shape} do not fit the model's input "
                             f"{self.info.input_name!r} of shape {shown}. Preprocess to that shape.")
        if self.fixed_batch and batch.shape[0] != self.batch_size:
            raise InputError(f"{self.model_path}: this {self.kind} engine runs batches of exactly "
                             f"{self.batch_size} rows, got {batch.shape[0]} (predict_scores pads for you).")
        if batch.dtype == np.float32 and batch.flags.c_contiguous:
            return batch
        return np.ascontiguousarray(batch, dtype=np.float32)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.model_path.name} batch={self.batch_size}>"
