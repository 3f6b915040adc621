"""Threshold calibration (Iofinova et al. §4) and ``thresholds.json``.

One threshold per attribute so that the number of predicted positives on the
calibration split equals the number of true positives there. Identity groups are
not used. A prediction is ``score > threshold`` (strict, like the default 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress_gate._atomic import write_json
from compress_gate.errors import InputError
from compress_gate.metrics import predict_labels
from compress_gate.mitigation._json import SCHEMA_VERSION, read_names, read_versioned_json

__all__ = ["calibrate_thresholds", "apply_thresholds", "ThresholdsFile", "write_thresholds",
           "read_thresholds"]


def calibrate_thresholds(y_true_calib: np.ndarray, y_score_calib: np.ndarray) -> np.ndarray:
    r"""Per-attribute thresholds that predict as many positives as there are true positives.

    For attribute i with :math:`k_i = \sum_j y_{ji}` true positives among n calib rows
    and scores sorted descending :math:`s_{(1)} \ge \dots \ge s_{(n)}`, the threshold
    :math:`t_i` makes :math:`\#\{j : s_j > t_i\} = c_i`, where :math:`c_i` is the
    achievable count closest to :math:`k_i`:

    - no tie at the boundary (:math:`s_{(k)} > s_{(k+1)}`): :math:`c = k` and
      :math:`t = (s_{(k)} + s_{(k+1)}) / 2`;
    - a tie across the boundary: exactly k is impossible; with a = #(s > s_(k)) and
      b = #(s >= s_(k)), c is whichever of a, b is closer to k (the smaller on a tie),
      and t is the midpoint between the lowest included and highest excluded score;
    - c = 0 (k = 0, no true positives): t = :math:`s_{(1)}`, the largest score, so no
      calib row is predicted positive;
    - c = n (every row positive): t is the largest float below :math:`s_{(n)}`.

    (The authors' code takes the k-th largest score with a strict ``>``: k − 1
    positives, and everything positive when k = 0. This implements the intent.)

    Parameters
    ----------
    y_true_calib : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    y_score_calib : ndarray of shape (n_samples, n_attributes), scores in [0, 1]

    Returns
    -------
    ndarray of shape (n_attributes,), float64

    Raises
    ------
    InputError
        No calib rows, or shapes that differ.

    Examples
    --------
    >>> calibrate_thresholds(np.array([[1], [1], [0], [0]]), np.array([[.9], [.8], [.7], [.6]]))
    array([0.75])
    """
    y_true = np.asarray(y_true_calib)
    y_score = np.asarray(y_score_calib, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise InputError(f"calibrate_thresholds: labels {y_true.shape} and scores {y_score.shape} must "
                         "have the same 2-D shape (n_calib, n_attributes).")
    n = y_true.shape[0]
    if n == 0:
        raise InputError("threshold calibration needs calib rows, and the eval data has none with "
                         "split = 'calib'. Mark some labelled rows 'calib', or set "
                         "gate.mitigation.calibrate_thresholds: false.")
    positives = y_true.sum(axis=0).astype(np.int64)
    descending = -np.sort(-y_score, axis=0)
    ascending = descending[::-1]
    thresholds = np.empty(y_score.shape[1], dtype=np.float64)
    for i, k in enumerate(positives):          # one pass per attribute, vectorized over samples
        col, asc = descending[:, i], ascending[:, i]
        if k == 0:
            count = 0
        else:
            boundary = col[k - 1]
            above = n - int(np.searchsorted(asc, boundary, side="right"))   # #(s > boundary)
            at_or_above = n - int(np.searchsorted(asc, boundary, side="left"))
            count = above if k - above <= at_or_above - k else at_or_above
        if count == 0:
            thresholds[i] = col[0]
        elif count == n:
            thresholds[i] = np.nextafter(col[n - 1], -np.inf)
        else:
            low, high = col[count], col[count - 1]
            mid = (low + high) / 2
            thresholds[i] = mid if low <= mid < high else low
    return thresholds


def apply_thresholds(y_score: np.ndarray, thresholds: np.ndarray | None) -> np.ndarray:
    """Labels ``score > threshold`` per attribute; the default 0.5 when ``thresholds`` is None.

    The multi-label case of :func:`compress_gate.metrics.predict_labels`, after checking that
    there is one threshold per attribute.

    Parameters
    ----------
    y_score : ndarray of shape (n_samples, n_attributes)
    thresholds : ndarray of shape (n_attributes,), or None

    Returns
    -------
    ndarray of shape (n_samples, n_attributes), uint8 in {0, 1}
    """
    y_score = np.asarray(y_score)
    t = 0.5 if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if thresholds is not None and (t.ndim != 1 or t.shape[0] != y_score.shape[-1]):
        raise InputError(f"{t.size} thresholds for scores with {y_score.shape[-1]} attributes; "
                         "give one threshold per attribute (thresholds.json of this model).")
    return predict_labels(y_score, task="multilabel", thresholds=thresholds)


@dataclass(frozen=True)
class ThresholdsFile:
    """Contents of ``thresholds.json``; ``thresholds`` is None for multi-class (argmax)."""

    task: str
    attribute_names: tuple[str, ...]
    thresholds: np.ndarray | None


def write_thresholds(path: str | Path, thresholds: np.ndarray | None, *, task: str,
                     attribute_names: tuple[str, ...] | list[str]) -> Path:
    """Write ``thresholds.json`` atomically.

    Format: ``{"schema_version": 1, "task": ..., "attribute_names": [...], "thresholds": [..] | null}``
    (null: multi-class argmax, or the default 0.5 when calibration is off).
    """
    values = None if thresholds is None else [float(t) for t in np.asarray(thresholds)]
    if values is not None and len(values) != len(attribute_names):
        raise InputError(f"{len(values)} thresholds for {len(attribute_names)} attributes.")
    return write_json(path, {"schema_version": SCHEMA_VERSION, "task": task,
                             "attribute_names": list(attribute_names), "thresholds": values})


def read_thresholds(path: str | Path) -> ThresholdsFile:
    """Read and validate ``thresholds.json`` (see :func:`write_thresholds`)."""
    doc = read_versioned_json(path, "thresholds")
    names = read_names(doc, path)
    values = doc.get("thresholds")
    if values is not None:
        if (not isinstance(values, list) or len(values) != len(names)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
            raise InputError(f"{path}: `thresholds` must be null or a list of {len(names)} numbers, one "
                             "per attribute name. Rewrite the file with the gate.")
        values = np.asarray(values, dtype=np.float64)
    return ThresholdsFile(task=doc["task"], attribute_names=names, thresholds=values)
