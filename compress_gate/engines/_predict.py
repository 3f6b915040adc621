"""The one path from (model, engine, inputs) to scores: :func:`score_model`, batch by batch.

:func:`score_model` opens an ONNX model on an engine kind of the registry, scores the
inputs with :func:`predict_scores` and closes the engine; a caller that keeps an engine
open (the release runtime) calls :func:`predict_scores` on it. Scores become labels with
:func:`compress_gate.metrics.predict_labels` (score > threshold, or argmax), everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from compress_gate.data.contract import SCORE_TOLERANCE
from compress_gate.engines._base import Engine
from compress_gate.engines._registry import open_engine, open_engine_with_fallback
from compress_gate.errors import InputError, RuntimeFailure

if TYPE_CHECKING:
    from compress_gate.data.image_files import ImageFiles

__all__ = ["ModelScores", "score_model", "predict_scores"]


@dataclass(frozen=True)
class ModelScores:
    """What :func:`score_model` returns: ``scores`` (N, K) float32, the engine kind that ran
    them (``engine``), and why the asked kind did not (``fallback``, else ``None``)."""

    scores: np.ndarray
    engine: str
    fallback: str | None


def score_model(model: str | os.PathLike[str], inputs: np.ndarray | ImageFiles, *, engine: str = "onnxruntime",
                batch_size: int, allow_fallback: bool = False,
                progress: Callable[[int], None] | None = None) -> ModelScores:
    """Scores of the ONNX ``model`` on ``inputs`` (N, *input dims), run on engine kind ``engine``.

    With ``allow_fallback`` a kind whose registry entry has a fallback (DeepSparse) that
    cannot run or crashes on its probe batch is replaced by that fallback, and the
    result says so; without it (what is judged must run on the named engine) the
    failure is raised. ``progress(n)`` is called after each batch with its real rows.

    Raises
    ------
    InputError
        Unknown engine kind, batch size < 1, a missing or corrupt model, misshapen inputs.
    RuntimeFailure
        The engine cannot run here (without a fallback), crashed, or returned non-finite scores.
    """
    reasons: list[str] = []
    if allow_fallback:
        opened = open_engine_with_fallback(engine, model, batch_size=batch_size, on_fallback=reasons.append)
    else:
        opened = open_engine(engine, model, batch_size=batch_size)
    with opened:
        scores = predict_scores(opened, inputs, progress=progress)
        return ModelScores(scores, opened.kind, reasons[0] if reasons else None)


def predict_scores(engine: Engine, inputs: np.ndarray | ImageFiles, *, progress: Callable[[int], None] | None = None,
                   probabilities: bool = True) -> np.ndarray:
    """Run ``inputs`` (N, *input dims) through ``engine`` in batches of ``engine.batch_size``.

    ``inputs`` is an array, or :class:`~compress_gate.data.ImageFiles` decoded batch by batch
    (the next batch read while the engine runs this one): memory holds two batches, not N rows.

    For a fixed-batch engine the last, short batch is padded with zeros to
    ``batch_size`` and the padding rows are dropped from the result, so every input
    row gets exactly one score row. ``progress(n)`` is called after each batch with
    the number of real rows it scored. With ``probabilities`` (the default: every
    model the gate judges outputs sigmoid or softmax scores), an output outside
    [0, 1] by more than 1e-6 is refused and float32 rounding beyond it is clipped.

    Returns
    -------
    ndarray of shape (N, K), float32
        Raises :class:`InputError`, naming the model file, for an empty or misshapen
        ``inputs``, for non-finite scores (with the input rows that produce them)
        and, with ``probabilities``, for scores outside [0, 1] (logits); and
        :class:`RuntimeFailure` when the engine returns a number of rows other than
        it was given.
    """
    from compress_gate.data.image_files import ImageFiles, input_batches

    if not isinstance(inputs, (ImageFiles, np.ndarray)) or inputs.ndim < 1 or inputs.shape[0] == 0:
        raise InputError(f"{engine.model_path}: no inputs to score (got shape {getattr(inputs, 'shape', None)}). "
                         "Pass an array (N, *input dims) with N >= 1.")
    size = engine.batch_size
    parts = []
    for batch in input_batches(inputs, size):
        rows = batch.shape[0]
        if engine.fixed_batch and rows < size:
            padding = np.zeros((size - rows, *batch.shape[1:]), dtype=batch.dtype)
            batch = np.concatenate([batch, padding])
        scores = engine.run(batch)
        if scores.shape[0] != batch.shape[0]:
            raise RuntimeFailure(f"{engine!r} returned {scores.shape[0]} score rows for a batch of "
                                 f"{batch.shape[0]}.")
        parts.append(scores[:rows])
        if progress is not None:
            progress(rows)
    result = np.concatenate(parts).astype(np.float32, copy=False)
    bad_rows = np.flatnonzero(~np.isfinite(result).all(axis=1))
    if bad_rows.size:
        raise InputError(f"{engine.model_path}: the model produced non-finite scores for {bad_rows.size} of "
                         f"{len(result)} inputs (NaN or inf; input rows {bad_rows[:10].tolist()}"
                         f"{', ...' if bad_rows.size > 10 else ''}). The gate does not guess scores: check "
                         "the model export and the preprocessing of those rows.")
    if probabilities:
        outside = (result < -SCORE_TOLERANCE) | (result > 1 + SCORE_TOLERANCE)
        if outside.any():
            row, col = (int(v) for v in np.argwhere(outside)[0])
            raise InputError(f"{engine.model_path}: the model's output {engine.info.output_name!r} is not "
                             f"probabilities in [0, 1]: {int(outside.any(axis=1).sum())} of {len(result)} input "
                             f"rows have values outside, e.g. {float(result[row, col])!r} at row {row}, "
                             f"column {col}. It looks like logits: export the model with a sigmoid "
                             "(multi-label) or softmax (multi-class) on its output.")
        result = np.clip(result, 0.0, 1.0)
    return result
