"""Tiny ONNX models with a NumPy reference, and worker targets that crash or hang.

The worker targets run in a spawned child, so they live in this importable module
(the child imports it by name; pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

CHANNELS, SIZE, OUTPUTS = 3, 8, 4
_RNG = np.random.default_rng(7)
WEIGHT = _RNG.normal(size=(OUTPUTS, CHANNELS, 1, 1)).astype(np.float32)
BIAS = _RNG.normal(size=(OUTPUTS,)).astype(np.float32)


def write_tiny_onnx(path: Path, *, batch: int | None = None) -> Path:
    """scores = sigmoid(mean_hw(conv1x1(x))): input "input" (B, 3, 8, 8), output "scores" (B, 4)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    batch_dim = batch if batch is not None else "batch"
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["input", "w", "b"], ["conv"]),
            helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("Sigmoid", ["flat"], ["scores"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch_dim, CHANNELS, SIZE, SIZE])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch_dim, OUTPUTS])],
        initializer=[numpy_helper.from_array(WEIGHT, "w"), numpy_helper.from_array(BIAS, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference_scores(inputs: np.ndarray) -> np.ndarray:
    """The tiny model in NumPy: a 1x1 conv is a channel mix, and it commutes with the mean."""
    mean = inputs.mean(axis=(2, 3))  # (B, C)
    logits = mean @ WEIGHT[:, :, 0, 0].T + BIAS
    return 1.0 / (1.0 + np.exp(-logits))


def tiny_inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, CHANNELS, SIZE, SIZE)).astype(np.float32)


def abort_on_start(conn, *args) -> None:
    """A worker that dies like a failed DeepSparse assertion while compiling."""
    os.abort()


def abort_on_first_run(conn, *args) -> None:
    """A worker that compiles fine and dies with SIGABRT on its first batch."""
    conn.send(("ready", {"fake": True}))
    conn.recv()
    os.abort()


def never_answer(conn, *args) -> None:
    """A worker that hangs while compiling (the parent must time out, not wait forever)."""
    time.sleep(3600)
