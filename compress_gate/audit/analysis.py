"""What the audit finds: modal CIEs, the Taxicab ranking, how hard CIEs are, and who they are.

The CIE definitions are the metrics package's (:func:`compress_gate.metrics.modal_cie`,
:func:`~compress_gate.metrics.taxicab_score`, :func:`~compress_gate.metrics.rank_by_score`);
this module aggregates them the way Hooker et al. (2020) report them:

- **Accuracy on CIEs vs non-CIEs** (their Table 2): for each population, the mean over
  its models of :func:`~compress_gate.metrics.accuracy` on the CIE rows and on the
  other rows. ``nan`` when a subset is empty (no CIEs, or every row is one).
- **Over-representation** (their Fig. 2): for a group or class ``g`` with ``n_g`` of
  the ``n`` audited rows and ``c_g`` of the ``c`` CIEs,
  ``ratio = (c_g / c) / (n_g / n)``; above 1, CIEs concentrate in ``g``. ``nan``
  when there are no CIEs or ``g`` is empty. Rows: each identity category and its
  complement, then each class (multi-class: true class; multi-label: attribute
  positive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compress_gate.data.contract import EvalData
from compress_gate.metrics import accuracy, modal_cie, predict_labels, rank_by_score, taxicab_score

__all__ = ["AuditFindings", "analyse_populations", "representation", "subset_accuracy", "label_text"]


@dataclass(frozen=True)
class AuditFindings:
    """The audit of ``n`` rows by a dense (``Md`` models) and a compressed (``Mc``) population.

    ``*_pred``: (M, n, K) 0/1 predicted labels per model; ``*_modal``: (n, K) modal
    labels; ``is_cie``: (n,) bool; ``score``: (n,) Taxicab score; ``rank_order``: row
    indices, highest score first; ``accuracy``: ``{"dense"|"compressed": {"cie",
    "non_cie", "all"}}``; ``representation``: rows as :func:`representation` returns.
    """

    ids: np.ndarray
    y_true: np.ndarray
    groups: np.ndarray
    group_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    task: str
    dense_pred: np.ndarray
    compressed_pred: np.ndarray
    dense_modal: np.ndarray
    compressed_modal: np.ndarray
    is_cie: np.ndarray
    score: np.ndarray
    rank_order: np.ndarray
    accuracy: dict[str, dict[str, float]]
    representation: list[dict[str, Any]]


def label_text(row: np.ndarray, names: Sequence[str], task: str) -> str:
    """One sample's labels as text: the class name (multi-class, argmax of the one-hot row)
    or the ``;``-joined positive attributes (multi-label; ``""`` for none)."""
    if task == "multiclass":
        return str(names[int(np.argmax(row))])
    return ";".join(str(n) for n, v in zip(names, row) if v)


def subset_accuracy(y_true: np.ndarray, predictions: np.ndarray, rows: np.ndarray, *, task: str) -> float:
    """Mean over models of ``accuracy`` on ``rows`` (bool (n,)); ``nan`` when ``rows`` is empty."""
    if not rows.any():
        return float("nan")
    return float(np.mean([accuracy(y_true[rows], pred[rows], task=task) for pred in predictions]))


def representation(is_cie: np.ndarray, columns: np.ndarray, names: Sequence[str], kind: str
                   ) -> list[dict[str, Any]]:
    """Over-representation among CIEs of each column of ``columns`` (bool (n, G)); see module doc.

    Returns one dict per column: ``kind, name, n_all, n_cie, share_all, share_cie, ratio``.
    """
    columns = np.asarray(columns, dtype=bool)
    n, c = len(is_cie), int(is_cie.sum())
    n_g = columns.sum(axis=0)
    c_g = (columns & is_cie[:, None]).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_all = n_g / n if n else np.full(len(names), np.nan)
        share_cie = c_g / c if c else np.full(len(names), np.nan)
        ratio = np.where(n_g > 0, share_cie / share_all, np.nan)
    return [{"kind": kind, "name": str(name), "n_all": int(n_g[j]), "n_cie": int(c_g[j]),
             "share_all": float(share_all[j]), "share_cie": float(share_cie[j]), "ratio": float(ratio[j])}
            for j, name in enumerate(names)]


def _predict_population(scores: np.ndarray, task: str) -> np.ndarray:
    return np.stack([predict_labels(s, task=task) for s in scores]).astype(np.uint8)


def analyse_populations(data: EvalData, dense_scores: np.ndarray, compressed_scores: np.ndarray, *,
                        seed: int) -> AuditFindings:
    """Audit ``data``'s rows given each population's scores (M, n, K), rows in ``data`` order.

    Predictions: score > 0.5 (multi-label) or argmax (multi-class). Modal CIEs and
    Taxicab scores as in DESIGN.md; ``seed`` breaks ties (modal labels and ranking).
    """
    task = data.task
    dense_pred = _predict_population(np.asarray(dense_scores), task)
    comp_pred = _predict_population(np.asarray(compressed_scores), task)
    cie = modal_cie(dense_pred, comp_pred, task=task, seed=seed)
    score = taxicab_score(dense_pred, comp_pred, task=task)
    order = rank_by_score(score, seed=seed)
    y_true = data.labels
    acc = {name: {"cie": subset_accuracy(y_true, pred, cie.is_cie, task=task),
                  "non_cie": subset_accuracy(y_true, pred, ~cie.is_cie, task=task),
                  "all": subset_accuracy(y_true, pred, np.ones(len(y_true), bool), task=task)}
           for name, pred in (("dense", dense_pred), ("compressed", comp_pred))}
    groups = np.asarray(data.groups, dtype=bool)
    group_columns = np.concatenate([groups, ~groups], axis=1)
    group_names = list(data.group_names) + [f"not {g}" for g in data.group_names]
    rows = (representation(cie.is_cie, group_columns, group_names, "group")
            + representation(cie.is_cie, y_true.astype(bool), data.attribute_names, "class"))
    return AuditFindings(ids=data.ids, y_true=y_true, groups=groups, group_names=data.group_names,
                         attribute_names=data.attribute_names, task=task, dense_pred=dense_pred,
                         compressed_pred=comp_pred, dense_modal=cie.dense_modal,
                         compressed_modal=cie.compressed_modal, is_cie=cie.is_cie, score=score,
                         rank_order=order, accuracy=acc, representation=rows)
