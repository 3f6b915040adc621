"""Shared argument checkers of the metrics: each returns clean arrays or raises an
:class:`~compress_gate.errors.InputError` that names the bad argument, shows the value
received and says what is allowed."""

from __future__ import annotations

import numpy as np

from compress_gate._task import TASKS, Task
from compress_gate.errors import InputError
from compress_gate.metrics._counts import _memo_of

_SHOW = 5            # offending positions named in a message


def _where(mask: np.ndarray) -> str:
    """The first few positions of True entries of ``mask``, as text."""
    spots = np.argwhere(mask)[:_SHOW]
    text = ", ".join(str(tuple(int(i) for i in spot)) if len(spot) > 1 else str(int(spot[0])) for spot in spots)
    more = int(mask.sum()) - len(spots)
    return text + (f" and {more} more" if more > 0 else "")


def _check_2d(value: object, name: str, *, n_samples: int | None = None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise InputError(f"{name} has shape {arr.shape}; it must be 2-D (n_samples, n_attributes). "
                         "For a single binary attribute pass `x.reshape(-1, 1)`.")
    if n_samples is not None and arr.shape[0] != n_samples:
        raise InputError(f"{name} has {arr.shape[0]} rows but the other arrays have {n_samples}: "
                         "pass one row per sample, in the same order for every argument.")
    return arr


def _check_task(task: object) -> Task:
    if task not in TASKS:
        raise InputError(f"task={task!r} is not a valid task. It should be one of {list(TASKS)}.")
    return task  # type: ignore[return-value]


def _check_indicators(value: object, name: str, *, n_samples: int | None = None,
                      n_attributes: int | None = None) -> np.ndarray:
    """(n_samples, n_attributes) 0/1 values (bool, integer or float) -> bool array."""
    arr = _check_2d(value, name, n_samples=n_samples)
    if n_attributes is not None and arr.shape[1] != n_attributes:
        raise InputError(f"{name} has {arr.shape[1]} columns but y_true has {n_attributes}: "
                         "pass one column per attribute (class), in the same order.")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "uif":
        raise InputError(f"{name} has dtype {arr.dtype}; it must hold the numbers 0 and 1.")
    if arr.dtype == np.uint8 and arr.size and arr.max() <= 1:
        return arr.view(bool)
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        first = arr[tuple(np.argwhere(bad)[0])]
        raise InputError(f"{name} must hold only 0 and 1 but has {first.item()!r} at (row, column) {_where(bad)}. "
                         "Pass 0/1 indicators (multi-class: one-hot rows).")
    return arr.astype(bool)


def _check_scores(value: object, name: str = "y_score", *, n_samples: int | None = None,
                  n_attributes: int | None = None) -> np.ndarray:
    """(n_samples, n_attributes) finite probabilities in [0, 1] -> float array."""
    arr = _check_2d(value, name, n_samples=n_samples)
    if n_attributes is not None and arr.shape[1] != n_attributes:
        raise InputError(f"{name} has {arr.shape[1]} columns but y_true has {n_attributes}: "
                         "pass one column per attribute (class), in the same order.")
    if arr.dtype.kind not in "uifb":
        raise InputError(f"{name} has dtype {arr.dtype}; it must hold probabilities in [0, 1].")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if ((arr >= 0) & (arr <= 1)).all():            # one pass when all is well (NaN fails both)
        return arr
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{name} has NaN or infinite scores at (row, column) {_where(bad)}. Scores must "
                         "be finite probabilities; check the model's outputs for these rows.")
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        first = arr[tuple(np.argwhere(bad)[0])]
        raise InputError(f"{name} has {float(first)!r} at (row, column) {_where(bad)}, outside [0, 1]. "
                         "Pass probabilities (sigmoid or softmax outputs), not logits.")
    return arr


def _check_one_hot(y: np.ndarray, name: str) -> None:
    """Raise unless every row of the bool array ``y`` has exactly one True."""
    bad = y.sum(axis=1) != 1
    if bad.any():
        raise InputError(f"{name} must be one-hot for task='multiclass' (one 1 per row) but rows "
                         f"{_where(bad)} are not. Encode class labels with one column per class.")


def _check_sample_weight(sample_weight: object, n_samples: int) -> np.ndarray | None:
    """None, (n_samples,) or (n_resamples, n_samples) finite weights >= 0.

    float32 weights stay float32 (the bootstrap's resample counts: float32 matrix products);
    anything else becomes float64.
    """
    if sample_weight is None:
        return None
    if _memo_of(sample_weight) is not None and sample_weight.shape[-1] == n_samples:  # type: ignore[attr-defined]
        return sample_weight  # type: ignore[return-value]   # bootstrap counts: checked when drawn
    w = np.asarray(sample_weight)
    if w.ndim not in (1, 2) or w.shape[-1] != n_samples:
        raise InputError(f"sample_weight has shape {w.shape}; it must be ({n_samples},) or "
                         f"(n_resamples, {n_samples}): one weight per sample (per resample).")
    if w.dtype.kind not in "uifb":
        raise InputError(f"sample_weight has dtype {w.dtype}; it must hold numbers >= 0.")
    if w.dtype != np.float32:
        w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("sample_weight must be finite and >= 0; it has "
                         f"{'NaN/inf' if not np.isfinite(w).all() else 'negative'} entries.")
    return w


def _check_groups(groups: object, n_samples: int, group_names: object = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n_samples, n_groups) 0/1 identity columns -> bool array and names (default g0, g1, ...)."""
    arr = _check_indicators(groups, "groups", n_samples=n_samples)
    if group_names is None:
        return arr, tuple(f"g{j}" for j in range(arr.shape[1]))
    names = tuple(str(g) for g in group_names)  # type: ignore[union-attr]
    if len(names) != arr.shape[1]:
        raise InputError(f"group_names has {len(names)} names but groups has {arr.shape[1]} columns: "
                         "give one name per identity column.")
    if len(set(names)) != len(names):
        raise InputError(f"group_names {list(names)} has duplicates; each identity column needs its own name.")
    return arr, names


def _check_confidence(confidence: object) -> float:
    value = float(confidence)  # type: ignore[arg-type]
    if not 0.0 < value < 1.0:
        raise InputError(f"confidence={confidence!r} must be in (0, 1), e.g. 0.95 for a 95% interval.")
    return value
