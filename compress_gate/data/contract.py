"""The eval-data and predictions contract: what the gate judges, made anywhere.

``data.npz`` (see DESIGN.md, "Contracts") holds

- ``ids`` (N,) str, unique and stable per sample;
- ``labels`` (N, K) 0/1 for multi-label, or (N,) int class indices for multi-class;
- ``split`` (N,) str in {``train``, ``calib``, ``test``};
- one ``group__<name>`` (N,) 0/1 column per identity category;
- optional ``attribute_names`` (K,) str (class names for multi-class), ``task``
  (``multilabel`` or ``multiclass``; inferred from the shape of ``labels`` when absent)
  and ``inputs`` (N, ...) float32 preprocessed model inputs, or instead ``image_paths`` (N,) str
  with ``image_transform`` (a JSON string of :class:`~compress_gate.data.ImageTransform`): image
  files decoded on access, so scoring them streams (``score``, ``gate --*-model``);
- no other column, unless the caller allows it by name (``extra_columns``): it is then
  left unread.

``<model>.npz`` holds ``ids`` (M,) str and ``scores`` (M, K) in [0, 1] (read as float64 when
given as float64, else as float32: :func:`~compress_gate.data._contract_checks.score_dtype`) for
(at least) the calib and test rows. Rows join on ``ids``.

Every loader validates everything and raises one :class:`InputError` per problem
naming the file, the column (or id) and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate.data._columns import (EVAL_COLUMNS, INPUT_COLUMNS, PREDICTION_COLUMNS, WHOLE_COLUMNS,
                                         check_extra_columns, select_columns)
from compress_gate.data._contract_checks import (GROUP_PREFIX, SCORE_TOLERANCE, check_prediction_columns, names_of,
                                                score_dtype)
from compress_gate.data._contract_checks import check_eval_columns as _check_eval_columns
from compress_gate.data._npz import read_npz_columns
from compress_gate.data._records import SPLITS, EvalData, Predictions, Task
from compress_gate.data.image_files import ImageFiles
from compress_gate.errors import InputError

__all__ = ["Task", "SPLITS", "EvalData", "Predictions", "save_eval_data", "load_eval_data",
           "read_eval_columns", "save_predictions", "load_predictions", "align_scores",
           # the contract's column checks and readers, for the other packages (bundle, engines, pipeline)
           "INPUT_COLUMNS", "SCORE_TOLERANCE", "check_prediction_columns", "read_npz_columns", "score_dtype",
           "select_columns"]

_SOFTMAX_TOLERANCE = 1e-3    # |row sum - 1| allowed for multi-class scores


# --- writing -------------------------------------------------------------------------------
def save_eval_data(data: EvalData, path: str | Path) -> Path:
    """Write ``data`` to ``path`` as an npz in the contract format, atomically.

    Multi-class labels are written as (N,) class indices, multi-label as (N, K) uint8.
    Streamed image files are written as their absolute ``image_paths`` and ``image_transform``
    (JSON), never as decoded pixels; :func:`load_eval_data` reads them back as ImageFiles.
    The file reads back equal through :func:`load_eval_data`.
    """
    path = Path(path)
    labels = data.label_index.astype(np.int64) if data.task == "multiclass" else data.labels
    columns: dict[str, np.ndarray] = {
        "ids": np.asarray(data.ids, dtype=str), "labels": np.asarray(labels),
        "split": np.asarray(data.split, dtype=str),
        "attribute_names": np.asarray(data.attribute_names, dtype=str),
        "task": np.asarray(data.task),
    }
    for j, name in enumerate(data.group_names):
        columns[GROUP_PREFIX + name] = np.asarray(data.groups[:, j], dtype=np.uint8)
    if isinstance(data.inputs, ImageFiles):
        columns["image_paths"] = np.asarray([os.path.abspath(p) for p in data.inputs.paths], dtype=str)
        columns["image_transform"] = np.asarray(json.dumps(data.inputs.transform.describe(), sort_keys=True))
    elif data.inputs is not None:
        columns["inputs"] = np.asarray(data.inputs, dtype=np.float32)
    _check_eval_columns(columns, str(path))   # never write a file the loader would refuse
    return _write_npz(path, columns)


def save_predictions(path: str | Path, ids: np.ndarray, scores: np.ndarray) -> Path:
    """Write one model's scores (M, K) for ids (M,) to ``path`` (npz), atomically.

    Raises :class:`InputError` for what :func:`load_predictions` would refuse.
    """
    path = Path(path)
    columns = {"ids": np.asarray(ids), "scores": np.asarray(scores)}
    preds = check_prediction_columns(columns, str(path))
    return _write_npz(path, {"ids": preds.ids, "scores": preds.scores})


def _write_npz(path: Path, columns: dict[str, np.ndarray]) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **columns)
    return path


# --- reading -------------------------------------------------------------------------------
def read_eval_columns(path: str | Path, *, extra_columns: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The contract's columns of an eval-data npz, unvalidated; nothing else is read.

    A column that is neither a contract column nor ``group__<name>`` is an
    :class:`InputError` (with the likely intended name) unless listed in
    ``extra_columns``; listed columns are left unread (see :mod:`compress_gate.data._npz`
    for the size checks made before anything is decompressed).
    """
    source = str(path)
    extra = check_extra_columns(extra_columns, EVAL_COLUMNS, source=source)
    return read_npz_columns(path, "eval data", whole=WHOLE_COLUMNS, select=lambda names: select_columns(
        names, known=EVAL_COLUMNS, extra_columns=extra, source=source, what="eval data", groups=True))


def load_eval_data(path: str | Path, *, extra_columns: Sequence[str] = ()) -> EvalData:
    """Read and validate ``data.npz``; columns in ``extra_columns`` are allowed and left unread.

    Raises
    ------
    InputError
        Missing file, not an npz, a missing column, a column the contract does not
        define (a misspelled ``group__`` column is named with its likely spelling)
        and ``extra_columns`` does not list, wrong shapes, non-unique ids, labels
        not 0/1 (multi-label) or not class indices in [0, K) (multi-class), split
        values outside {train, calib, test}, no test rows, a group column that is
        not 0/1 or has no member in the test split, inconsistent ``task`` or
        ``attribute_names``, non-finite ``inputs``, a column too big to load.
    """
    return _check_eval_columns(read_eval_columns(path, extra_columns=extra_columns), str(path))


def load_predictions(path: str | Path, *, extra_columns: Sequence[str] = ()) -> Predictions:
    """Read and validate one model's predictions npz (``ids``, ``scores``; ``extra_columns`` unread).

    Raises
    ------
    InputError
        Missing file, not an npz, missing ``ids``/``scores``, another column not in
        ``extra_columns``, ``scores`` not 2-D or not as many rows as ``ids``,
        duplicate ids, NaN/inf scores or scores outside [0, 1].
        Values within 1e-6 of [0, 1] (float32 rounding) are clipped.
    """
    source = str(path)
    extra = check_extra_columns(extra_columns, PREDICTION_COLUMNS, source=source, groups=False)
    columns = read_npz_columns(path, "predictions", select=lambda names: select_columns(
        names, known=PREDICTION_COLUMNS, extra_columns=extra, source=source, what="predictions"),
        save_hint="numpy.savez(path, ids=ids, scores=scores)")
    return check_prediction_columns(columns, source)


def align_scores(data: EvalData, preds: Predictions, mask: np.ndarray) -> np.ndarray:
    """Scores of ``preds`` for the rows of ``data`` in ``mask``, in ``data`` order.

    Returns
    -------
    ndarray of shape (mask.sum(), K), the dtype of ``preds.scores`` (float32 or float64)

    Raises
    ------
    InputError
        ``preds`` has another number of columns than ``data`` has attributes, lacks an
        id of a row in ``mask``, has an id that is not in ``data`` at all, or
        (multi-class) has a row that does not sum to 1.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (data.n_samples,):
        raise InputError(f"align_scores: mask has shape {mask.shape}; it must be ({data.n_samples},), "
                         "one entry per eval-data row.")
    k = data.n_attributes
    if preds.scores.shape[1] != k:
        raise InputError(
            f"{preds.source}: `scores` has {preds.scores.shape[1]} columns but the eval data has "
            f"K = {k} {'classes' if data.task == 'multiclass' else 'attributes'} "
            f"({', '.join(data.attribute_names[:8])}{', ...' if k > 8 else ''}). Predict with the "
            "model trained on these attributes, or use the eval data it was made for.")
    unknown = ~np.isin(preds.ids, data.ids)
    if unknown.any():
        raise InputError(
            f"{preds.source}: {int(unknown.sum())} of its {preds.ids.size} ids are not in the eval data, e.g. "
            f"{names_of(preds.ids[unknown])}. The predictions were made for another eval set: predict the "
            "rows of this data.npz (or pass the data.npz they were made for).")
    wanted = data.ids[mask]
    order = np.argsort(preds.ids, kind="stable")
    sorted_ids = preds.ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, wanted), max(len(sorted_ids) - 1, 0))
    found = (sorted_ids[pos] == wanted) if len(sorted_ids) else np.zeros(len(wanted), bool)
    if not found.all():
        missing = wanted[~found]
        raise InputError(
            f"{preds.source}: {missing.size} of the {wanted.size} eval-data ids that need scores "
            f"(calib/test rows) are missing from `ids`, e.g. {names_of(missing)}. Predict every "
            "calib and test row of the eval data (the ids must match `ids` in data.npz exactly).")
    scores = preds.scores[order[pos]]
    if data.task == "multiclass":
        sums = scores.sum(axis=1, dtype=np.float64)
        bad = np.abs(sums - 1.0) > _SOFTMAX_TOLERANCE
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(
                f"{preds.source}: multi-class scores must be softmax probabilities summing to 1 per "
                f"row; {int(bad.sum())} rows do not, e.g. id {str(wanted[i])!r} sums to {sums[i]:.4f}. "
                "Apply softmax to the logits before saving (sigmoid outputs are for multi-label).")
    return scores
