"""Scores of a whole input array, batch by batch, on any engine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from compress_gate.engines._base import Engine
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["predict_scores"]


def predict_scores(engine: Engine, inputs: np.ndarray, *,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``inputs`` (N, *input dims) through ``engine`` in batches of ``engine.batch_size``.

    For a fixed-batch engine the last, short batch is padded with zeros to
    ``batch_size`` and the padding rows are dropped from the result, so every input
    row gets exactly one score row. ``progress(n)`` is called after each batch with
    the number of real rows it scored.

    Returns
    -------
    ndarray of shape (N, K), float32
        Raises :class:`InputError` for an empty or misshapen ``inputs``, and
        :class:`RuntimeFailure` when the engine returns non-finite scores or a
        number of rows other than it was given.
    """
    if not isinstance(inputs, np.ndarray) or inputs.ndim < 1 or inputs.shape[0] == 0:
        raise InputError(f"{engine.model_path}: no inputs to score (got shape {getattr(inputs, 'shape', None)}). "
                         "Pass an array (N, *input dims) with N >= 1.")
    size = engine.batch_size
    parts = []
    for start in range(0, inputs.shape[0], size):
        batch = inputs[start:start + size]
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
    if not np.isfinite(result).all():
        bad = int((~np.isfinite(result)).any(axis=1).sum())
        raise RuntimeFailure(f"{engine!r} produced non-finite scores for {bad} of {len(result)} inputs; "
                             "check the model export and the input preprocessing.")
    return result
