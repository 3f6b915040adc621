"""Teacher-uncertainty overrides (Iofinova et al. §4) and ``overrides.json``.

For the attributes where the dense teacher already shows positive bias
amplification, the samples the teacher is least sure about are decided by a human
label (or the teacher's label) instead of the student. An override is keyed by the
sample id, so the shipped runtime applies it to the same sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress_gate._atomic import write_json
from compress_gate._task import Task
from compress_gate.errors import InputError
from compress_gate.mitigation._json import SCHEMA_VERSION, read_names, read_versioned_json

__all__ = ["Overrides", "select_overrides", "apply_overrides", "overridden_rows", "OverridesFile",
           "write_overrides", "read_overrides", "budget_count"]

#: ``{"<id>": {"<attribute>": 0|1}}`` (multi-label) or ``{"<id>": {"class": "<class name>"}}``
Overrides = dict[str, dict[str, int | str]]
_CLASS_KEY = "class"


def budget_count(budget: float, n: int) -> int:
    """round(budget · n), halves rounded up, capped at n."""
    if not 0.0 <= budget <= 1.0:
        raise InputError(f"override budget {budget!r} must be in [0, 1] (a share of the samples).")
    return min(n, int(math.floor(budget * n + 0.5)))


def _least_certain(teacher_score: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` rows with the smallest |p − 0.5|; ties go to the earlier row.

    Equal to ``np.argsort(|p − 0.5|, kind="stable")[:count]`` as a set, in O(n).
    """
    if count == 0:
        return np.empty(0, dtype=np.int64)
    certainty = np.abs(teacher_score.astype(np.float64) - 0.5)
    kth = np.partition(certainty, count - 1)[count - 1]
    below = np.flatnonzero(certainty < kth)
    tied = np.flatnonzero(certainty == kth)[: count - below.size]
    return np.concatenate([below, tied])


def select_overrides(ids: np.ndarray, teacher_scores: np.ndarray,
                     attribute_names: Sequence[str], *, attributes: Sequence[str], budget: float,
                     task: Task,
                     y_true: np.ndarray | None = None) -> Overrides:
    r"""Choose the overrides for the samples the teacher is least certain about.

    For each attribute a in ``attributes`` (the gate passes those where the teacher's
    BA is positive for some identity), rank the n samples by
    :math:`|p_\text{teacher}(a) - 0.5|` ascending (stable: ties keep row order), take
    the first :math:`m = \operatorname{round}(\text{budget} \cdot n)` (halves up) and
    set their label of a to the human label ``y_true`` when given, else the teacher's
    (``p > 0.5``; multi-class: the teacher's argmax class).

    Multi-label entries are ``{id: {attribute: 0|1}}``; multi-class entries replace the
    whole prediction, ``{id: {"class": name}}``. A sample chosen for several
    attributes gets one entry holding all of them.

    Parameters
    ----------
    ids : ndarray of shape (n_samples,), str
    teacher_scores : ndarray of shape (n_samples, n_attributes), in [0, 1]
    attribute_names : sequence of n_attributes str
    attributes : the attribute (class) names to override
    budget : float in [0, 1]
    task : "multilabel" or "multiclass"
    y_true : ndarray of shape (n_samples, n_attributes), 0/1 (one-hot for multi-class), or None

    Returns
    -------
    dict
        ``Overrides``; empty when the budget rounds to 0 or ``attributes`` is empty.
    """
    names = list(attribute_names)
    scores = np.asarray(teacher_scores)
    if scores.shape != (len(ids), len(names)):
        raise InputError(f"select_overrides: teacher scores {scores.shape} must be (n_samples, "
                         f"n_attributes) = ({len(ids)}, {len(names)}).")
    unknown = sorted(set(attributes) - set(names))
    if unknown:
        raise InputError(f"select_overrides: unknown attribute(s) {unknown}; valid: {names}.")
    count = budget_count(budget, len(ids))
    out: Overrides = {}
    for attr in attributes:
        i = names.index(attr)
        rows = _least_certain(scores[:, i], count)
        if task == "multiclass":
            source = y_true if y_true is not None else scores
            labels = [names[c] for c in np.asarray(source)[rows].argmax(axis=1)]
            for row, label in zip(rows.tolist(), labels):
                out[str(ids[row])] = {_CLASS_KEY: label}
        else:
            values = (np.asarray(y_true)[rows, i] if y_true is not None
                      else scores[rows, i] > 0.5).astype(int).tolist()
            for row, value in zip(rows.tolist(), values):
                out.setdefault(str(ids[row]), {})[attr] = value
    return out


def overridden_rows(ids: np.ndarray, overrides: Mapping[str, object]) -> np.ndarray:
    """Boolean (n_samples,) mask of the rows of ``ids`` that have an override."""
    if not overrides:
        return np.zeros(len(ids), dtype=bool)
    return np.isin(np.asarray(ids, dtype=str), np.asarray(list(overrides), dtype=str))


def apply_overrides(ids: np.ndarray, y_pred: np.ndarray, overrides: Mapping[str, Mapping[str, int | str]],
                    attribute_names: Sequence[str]) -> np.ndarray:
    """Return a copy of ``y_pred`` with the overrides of the ids present applied.

    Parameters
    ----------
    ids : ndarray of shape (n_samples,), str
    y_pred : ndarray of shape (n_samples, n_attributes), 0/1 (one-hot for multi-class)
    overrides : ``{id: {attribute: 0|1}}`` or ``{id: {"class": name}}`` (see :data:`Overrides`)
    attribute_names : the n_attributes names (class names for multi-class)

    Overrides of ids not in ``ids`` are ignored (they belong to other samples).

    Raises
    ------
    InputError
        An override names an unknown attribute/class or a value other than 0/1.
    """
    out = np.array(y_pred, copy=True)
    names = {name: i for i, name in enumerate(attribute_names)}
    if out.ndim != 2 or out.shape != (len(ids), len(names)):
        raise InputError(f"apply_overrides: predictions {out.shape} must be (n_samples, n_attributes) "
                         f"= ({len(ids)}, {len(names)}).")
    present = overridden_rows(ids, overrides)
    for row in np.flatnonzero(present).tolist():
        key = str(ids[row])
        for attr, value in overrides[key].items():
            if attr == _CLASS_KEY:
                if value not in names:
                    raise InputError(f"override of id {key!r}: class {value!r} is not one of "
                                     f"{list(names)}. Regenerate overrides.json for this model.")
                out[row] = 0
                out[row, names[value]] = 1
            elif attr in names and value in (0, 1) and not isinstance(value, bool):
                out[row, names[attr]] = value
            else:
                raise InputError(f"override of id {key!r}: {attr!r}: {value!r} must name one of "
                                 f"{list(names)} (or \"class\") with the value 0 or 1. Regenerate "
                                 "overrides.json for this model.")
    return out


@dataclass(frozen=True)
class OverridesFile:
    """Contents of ``overrides.json``."""

    task: str
    attribute_names: tuple[str, ...]
    overrides: Overrides


def write_overrides(path: str | Path, overrides: Overrides, *, task: str,
                    attribute_names: Sequence[str]) -> Path:
    """Write ``overrides.json`` atomically.

    Format: ``{"schema_version": 1, "task": ..., "attribute_names": [...],
    "overrides": {"<id>": {"<attribute>": 0|1}}}`` (multi-class: ``{"<id>": {"class": name}}``).
    """
    return write_json(path, {"schema_version": SCHEMA_VERSION, "task": task,
                             "attribute_names": list(attribute_names), "overrides": overrides})


def read_overrides(path: str | Path) -> OverridesFile:
    """Read and validate ``overrides.json`` (see :func:`write_overrides`)."""
    doc = read_versioned_json(path, "overrides")
    names = read_names(doc, path)
    overrides = doc.get("overrides")
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise InputError(f"{path}: `overrides` must map each sample id to an object of "
                         "{attribute: 0|1} (or {\"class\": name}). Rewrite it with the gate.")
    n = len(names)
    probe_ids = np.asarray(list(overrides), dtype=str)
    # validates every entry (names, values) on an all-zero prediction of the overridden ids
    apply_overrides(probe_ids, np.zeros((probe_ids.size, n), dtype=np.uint8), overrides, names)
    return OverridesFile(task=doc["task"], attribute_names=names, overrides=overrides)
