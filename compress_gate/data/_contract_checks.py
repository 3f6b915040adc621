"""Validation of the contract's npz columns: one :class:`InputError` per problem, naming the
file, the column (or id) and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from compress_gate._id_hash import MAX_ID_LENGTH, id_length_problem
from compress_gate._task import TASKS
from compress_gate.data._columns import GROUP_PREFIX
from compress_gate.data._records import SPLITS, EvalData, Predictions, Task
from compress_gate.errors import InputError

if TYPE_CHECKING:
    from compress_gate.data.image_files import ImageFiles

__all__ = ["check_eval_columns", "check_prediction_columns", "empty_shard", "names_of", "score_dtype", "GROUP_PREFIX",
           "SCORE_TOLERANCE"]

#: float32 rounding beyond [0, 1] that is clipped, not refused (prediction files and model outputs alike).
SCORE_TOLERANCE = 1e-6
_SHOW = 5                    # ids named in a message


def names_of(values: np.ndarray) -> str:
    """The first few values, quoted, and how many more there are."""
    shown = ", ".join(repr(str(v)) for v in values[:_SHOW])
    return shown + (f" (and {len(values) - _SHOW} more)" if len(values) > _SHOW else "")


def _require(columns: dict[str, np.ndarray], name: str, source: str, fix: str) -> np.ndarray:
    if name not in columns:
        raise InputError(f"{source}: missing column `{name}` (columns present: "
                         f"{', '.join(sorted(columns)) or 'none'}). {fix}")
    return columns[name]


def _check_ids(ids: np.ndarray, source: str) -> np.ndarray:
    if ids.ndim != 1:
        raise InputError(f"{source}: `ids` has shape {ids.shape}; it must be 1-D (N,), one id per "
                         "sample. Flatten it: ids.reshape(-1).")
    if ids.dtype.kind in "iu":
        ids = ids.astype(str)
    elif ids.dtype.kind == "S":
        ids = np.char.decode(ids, "utf-8")
    elif ids.dtype.kind != "U":
        raise InputError(f"{source}: `ids` has dtype {ids.dtype}; it must hold strings (or integers). "
                         "Save numpy.asarray(ids, dtype=str).")
    if ids.size and ids.dtype.itemsize // 4 > MAX_ID_LENGTH:
        lengths = np.char.str_len(ids)
        problem = id_length_problem(source, int(lengths.max()), str(ids[np.argmax(lengths)]))
        if problem is not None:
            raise InputError(problem)
    if (ids == "").any():
        raise InputError(f"{source}: `ids` holds {int((ids == '').sum())} empty string(s), e.g. at row "
                         f"{int(np.argmax(ids == ''))}. Give every sample a non-empty, stable id.")
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != ids.size:
        dup = uniq[counts > 1]
        raise InputError(f"{source}: `ids` must be unique; {dup.size} id(s) occur more than once, "
                         f"e.g. {names_of(dup)}. Drop the repeated rows or make the ids unique.")
    return ids


def _check_strings(values: np.ndarray, name: str, source: str) -> np.ndarray:
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8")
    if values.dtype.kind != "U":
        raise InputError(f"{source}: `{name}` has dtype {values.dtype}; it must hold strings. "
                         f"Save numpy.asarray({name}, dtype=str).")
    return values


def _check_binary(values: np.ndarray, name: str, source: str, ids: np.ndarray) -> np.ndarray:
    """0/1 (bool, integer or float exactly 0.0/1.0) -> uint8; anything else -> InputError."""
    if values.dtype.kind not in "biuf":
        raise InputError(f"{source}: `{name}` has dtype {values.dtype}; it must be 0/1 numbers.")
    bad = (values != 0) & (values != 1)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        value = values.reshape(values.shape[0], -1)[row][bad.reshape(values.shape[0], -1)[row]][0]
        raise InputError(f"{source}: `{name}` must hold only 0 and 1; {int(bad.sum())} value(s) do "
                         f"not, e.g. {value.item()!r} for id {str(ids[row])!r}. Binarize the column (e.g. "
                         "(x > 0).astype('uint8')) or fix those rows.")
    return values.astype(np.uint8)


def empty_shard(source: str) -> InputError:
    """The error for a shard with no rows (data or predictions): every shard holds a row at least."""
    return InputError(f"{source}: the shard holds no rows (`ids` is empty). Every shard must hold at least one "
                      "row: delete the empty file (and its manifest entry), or write the shards again.")


def _check_image_columns(columns: dict[str, np.ndarray], n: int, source: str) -> ImageFiles:
    """``image_paths`` (N,) str and ``image_transform`` (JSON of :class:`ImageTransform`) -> ImageFiles."""
    import json

    from compress_gate.data.image_files import ImageFiles, ImageTransform

    fix = ("A data.npz that streams images holds `image_paths` (N,) str and `image_transform`, the JSON "
           "`{\"image_size\": S, \"channels\": 3, \"crop_size\": null, \"mean\": [...], \"std\": [...]}`, "
           "and no `inputs`; `compress-gate run` writes one for csv and celeba data.")
    if "inputs" in columns or "image_paths" not in columns or "image_transform" not in columns:
        raise InputError(f"{source}: `inputs`, `image_paths` and `image_transform` do not fit together. {fix}")
    paths = _check_strings(np.asarray(columns["image_paths"]), "image_paths", source)
    if paths.shape != (n,):
        raise InputError(f"{source}: `image_paths` has shape {paths.shape}; it must be ({n},). {fix}")
    try:
        transform = ImageTransform(**json.loads(str(np.asarray(columns["image_transform"]).item())))
    except (ValueError, TypeError) as err:
        raise InputError(f"{source}: `image_transform` is not a valid transform ({err}). {fix}") from err
    return ImageFiles(paths, transform)


def check_eval_columns(columns: dict[str, np.ndarray], source: str, *, complete: bool = True) -> EvalData:
    """Validate eval-data columns into :class:`EvalData`.

    ``complete=False`` validates one shard of a data set: the checks that need every row
    (some row is in the test split; every group has a test member) are left to the caller.
    """
    ids = _check_ids(_require(columns, "ids", source, "Add `ids` (N,) str, one stable id per sample."),
                     source)
    n = ids.size
    if n == 0 and not complete:
        raise empty_shard(source)
    if n == 0:
        raise InputError(f"{source}: `ids` is empty; the eval data needs at least one test row.")
    labels = _require(columns, "labels", source,
                      "Add `labels`: (N, K) 0/1 for multi-label, or (N,) class indices for multi-class.")
    split = _check_strings(_require(columns, "split", source,
                                    "Add `split` (N,) str with values train, calib or test."),
                           "split", source)
    for name, col in (("labels", labels), ("split", split)):
        if col.shape[:1] != (n,):
            raise InputError(f"{source}: `{name}` has shape {col.shape} but `ids` has {n} rows; every "
                             "column must have one row per id, in the same order.")
    if split.ndim != 1:
        raise InputError(f"{source}: `split` has shape {split.shape}; it must be 1-D ({n},).")
    bad_split = ~np.isin(split, SPLITS)
    if bad_split.any():
        raise InputError(f"{source}: `split` holds {names_of(np.unique(split[bad_split]))} for "
                         f"{int(bad_split.sum())} row(s) (e.g. id {str(ids[np.argmax(bad_split)])!r}); "
                         f"allowed values are {list(SPLITS)}. Rename those splits.")
    test = split == "test"
    if complete and not test.any():
        raise InputError(f"{source}: no row has split 'test'; the gate judges the test split. "
                         "Mark the held-out rows with split = 'test'.")
    task, labels, attribute_names = _check_labels(columns, labels, ids, source)
    group_names, groups = _check_groups(columns, ids, test if complete else None, source)
    inputs = columns.get("inputs")
    if "image_paths" in columns or "image_transform" in columns:
        inputs = _check_image_columns(columns, n, source)
    elif inputs is not None:
        if inputs.shape[:1] != (n,) or inputs.ndim < 2 or inputs.dtype.kind != "f":
            raise InputError(f"{source}: `inputs` has shape {inputs.shape} and dtype {inputs.dtype}; "
                             f"it must be float with one row per id, ({n}, C, H, W). Save the "
                             "preprocessed model inputs as float32.")
        inputs = inputs.astype(np.float32, copy=False)
        if not np.isfinite(inputs).all():
            row = int(np.argmax(~np.isfinite(inputs.reshape(n, -1)).all(axis=1)))
            raise InputError(f"{source}: `inputs` holds NaN or inf, e.g. in the row of id {str(ids[row])!r}. "
                             "Fix the preprocessing or drop those rows.")
    return EvalData(ids=ids, labels=labels, split=split, groups=groups, group_names=group_names,
                    attribute_names=attribute_names, task=task, inputs=inputs)


def _check_labels(columns: dict[str, np.ndarray], labels: np.ndarray, ids: np.ndarray,
                  source: str) -> tuple[Task, np.ndarray, tuple[str, ...]]:
    """Validate labels, task and attribute names; return (task, one-hot/multi-hot labels, names)."""
    task_col = columns.get("task")
    if task_col is None:
        task = "multiclass" if labels.ndim == 1 else "multilabel"
    else:
        task = str(task_col.reshape(-1)[0]) if task_col.size == 1 else ""
        if task not in TASKS:
            raise InputError(f"{source}: `task` = {task_col.tolist()!r}; it must be 'multilabel' or "
                             "'multiclass' (or absent: inferred from the shape of `labels`).")
    names_col = columns.get("attribute_names")
    names = None if names_col is None else _check_strings(names_col, "attribute_names", source)
    if names is not None:
        if names.ndim != 1 or len(set(names.tolist())) != names.size or (names == "").any():
            raise InputError(f"{source}: `attribute_names` must be a 1-D array of distinct, non-empty "
                             f"strings, got {names.tolist()[:8]!r}. Fix the names.")
    if task == "multilabel":
        if labels.ndim != 2 or labels.shape[1] == 0:
            raise InputError(f"{source}: multi-label `labels` must be 2-D (N, K) 0/1, got shape "
                             f"{labels.shape}. For class indices (N,) set task='multiclass'.")
        onehot = _check_binary(labels, "labels", source, ids)
        k = labels.shape[1]
    else:
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise InputError(f"{source}: multi-class `labels` must be 1-D (N,) integer class indices, "
                             f"got shape {labels.shape}, dtype {labels.dtype}. For (N, K) 0/1 labels "
                             "set task='multilabel'.")
        k = names.size if names is not None else int(labels.max()) + 1
        bad = (labels < 0) | (labels >= k)
        if bad.any():
            row = int(np.argmax(bad))
            raise InputError(f"{source}: `labels` must be class indices in [0, {k}) "
                             f"({'the length of `attribute_names`' if names is not None else 'K'}); "
                             f"{int(bad.sum())} are not, e.g. {int(labels[row])} for id {str(ids[row])!r}. "
                             "Fix the labels or add the missing class names.")
        if k < 2:
            raise InputError(f"{source}: multi-class data needs at least 2 classes, found {k}. "
                             "Add the class names to `attribute_names`.")
        onehot = np.zeros((labels.size, k), dtype=np.uint8)
        onehot[np.arange(labels.size), labels] = 1
    if names is None:
        names = np.asarray([f"{'class' if task == 'multiclass' else 'attribute'}_{i}" for i in range(k)])
    elif names.size != k:
        raise InputError(f"{source}: `attribute_names` has {names.size} names but `labels` has K = {k} "
                         f"columns. Give one name per {'class' if task == 'multiclass' else 'attribute'}.")
    return task, onehot, tuple(names.tolist())


def _check_groups(columns: dict[str, np.ndarray], ids: np.ndarray, test: np.ndarray | None,
                  source: str) -> tuple[tuple[str, ...], np.ndarray]:
    names = sorted(key[len(GROUP_PREFIX):] for key in columns if key.startswith(GROUP_PREFIX))
    if "" in names:
        raise InputError(f"{source}: a column is named `{GROUP_PREFIX}` with no group name. "
                         f"Name it `{GROUP_PREFIX}<identity>`, e.g. `{GROUP_PREFIX}male`.")
    groups = np.zeros((ids.size, len(names)), dtype=bool)
    for j, name in enumerate(names):
        key = GROUP_PREFIX + name
        col = columns[key]
        if col.shape != ids.shape:
            raise InputError(f"{source}: `{key}` has shape {col.shape}; it must be ({ids.size},), one "
                             "0/1 entry per id.")
        groups[:, j] = _check_binary(col, key, source, ids).astype(bool)
        if test is not None and not groups[test, j].any():
            raise InputError(f"{source}: group column `{key}` has no member in the test split, so no "
                             "metric can be computed for it. Add test samples of this group, or drop "
                             "the column.")
    return tuple(names), groups


def score_dtype(dtype: np.dtype) -> type:
    """The dtype scores are kept in: float64 when given as float64 (or wider), so the precision the
    user gave is kept (rounding an over-confident model's float64 scores to float32 makes ties near
    1 that move per-group AP); float32 for anything narrower (float16, integers, booleans), which it
    holds exactly."""
    return np.float64 if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize >= 8 else np.float32


def check_prediction_columns(columns: dict[str, np.ndarray], source: str) -> Predictions:
    ids = _check_ids(_require(columns, "ids", source, "Save numpy.savez(path, ids=ids, scores=scores)."),
                     source)
    scores = _require(columns, "scores", source, "Save numpy.savez(path, ids=ids, scores=scores).")
    if scores.ndim != 2 or scores.shape[0] != ids.size or scores.shape[1] == 0:
        raise InputError(f"{source}: `scores` has shape {scores.shape}; it must be (M, K) = "
                         f"({ids.size}, K), one row per id and one column per attribute or class "
                         "(a single attribute is (M, 1): scores.reshape(-1, 1)).")
    if scores.dtype.kind not in "fiub":
        raise InputError(f"{source}: `scores` has dtype {scores.dtype}; it must be float probabilities.")
    scores = scores.astype(score_dtype(scores.dtype), copy=False)
    finite = np.isfinite(scores)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise InputError(f"{source}: `scores` holds {int((~finite).sum())} NaN/inf value(s), e.g. for id "
                         f"{str(ids[row])!r}. Fix the model or inputs that produce them; the gate does "
                         "not guess scores.")
    outside = (scores < -SCORE_TOLERANCE) | (scores > 1 + SCORE_TOLERANCE)
    if outside.any():
        row, col = (int(v) for v in np.argwhere(outside)[0])
        raise InputError(f"{source}: `scores` must be probabilities in [0, 1]; {int(outside.sum())} "
                         f"value(s) are not, e.g. {float(scores[row, col])!r} for id {str(ids[row])!r}, "
                         f"column {col}. Apply sigmoid (multi-label) or softmax (multi-class) to the "
                         "logits before saving.")
    scores = np.clip(scores, 0.0, 1.0)
    return Predictions(ids=ids, scores=scores, source=source)
