"""Error, FPR and FNR per identity group and per pairwise intersection (Hooker et al.).

Rows: ``all``, each group, then for each pair of groups (a, b) the four intersections
``a & b``, ``a & not b``, ``not a & b``, ``not a & not b``. Counts are taken once per
*cell* (each distinct pattern of group membership) and summed into rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_groups
from compress_gate.metrics._counts import _ratio
from compress_gate.metrics._tables import SubgroupCounts, _confusion_rows, _layout, _subgroup_rows
from compress_gate.metrics.change import normalized_change

__all__ = ["SubgroupCounts", "SubgroupTable", "cell_order", "subgroup_counts", "subgroup_names", "subgroup_rates",
           "subgroup_rates_from_counts", "subgroup_normalized_difference"]


@dataclass(frozen=True)
class SubgroupTable:
    """Rates of one model per subgroup row.

    Attributes
    ----------
    names : tuple of str, one per row (``all``, groups, pairwise intersections)
    sizes : ndarray of shape (n_rows,) or (n_resamples, n_rows)
        Weighted number of samples in the row (shown even when the rates are undefined).
    error, fpr, fnr : ndarray of shape (n_rows, n_attributes) or (n_resamples, n_rows, n_attributes)
        Per attribute; None when computed with ``per_attribute=False``.
    pooled_error, pooled_fpr, pooled_fnr : ndarray of shape (n_rows,) or (n_resamples, n_rows)
        Pooled over attributes (sums of counts over attributes, then the ratio).
    """

    names: tuple[str, ...]
    sizes: np.ndarray
    pooled_error: np.ndarray
    pooled_fpr: np.ndarray
    pooled_fnr: np.ndarray
    error: np.ndarray | None = None
    fpr: np.ndarray | None = None
    fnr: np.ndarray | None = None


def cell_order(groups: np.ndarray) -> np.ndarray | None:
    """The order of the samples by *cell* (group-membership pattern) in which the count tables
    read them: a stable permutation of ``range(n_samples)``, or None when ``groups`` is already
    in that order.

    Every count table is the same for any row order (sums of integers), but rows given in
    this order spare each resample matrix a gather into it: with (B, n) bootstrap weights,
    that gather is a copy of the whole matrix per chunk. Generate the weights of the rows
    in this order instead (they are keyed by id, not by position).

    Parameters
    ----------
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}

    Examples
    --------
    >>> cell_order(np.array([[1], [0], [1], [0]]))
    array([1, 3, 0, 2])
    """
    g = np.asarray(groups)
    return _layout(g.astype(bool, copy=False), g.shape[0]).order


def subgroup_counts(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None = None, *,
                    sample_weight: np.ndarray | None = None) -> SubgroupCounts:
    r"""Weighted confusion counts per subgroup row: the additive statistics of the rates.

    For row r (``all``, each group, then per pair of groups the four intersections, as
    :func:`subgroup_names`) and attribute k:
    :math:`N_r = \sum_{i \in r} w_i`, :math:`P_{rk} = \sum_{i \in r} w_i y_{ik}`,
    :math:`\hat P_{rk} = \sum_{i \in r} w_i \hat y_{ik}`, :math:`TP_{rk} = \sum_{i \in r} w_i y_{ik} \hat y_{ik}`.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}, default=None
        None: only row ``all``.
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)

    Returns
    -------
    SubgroupCounts
        ``size`` (..., R), the others (..., R, K); ``(...)`` is the resample axis of 2-D
        weights. Counts of disjoint samples add (``a + b``); with integer weights they are
        exact, so the sum does not depend on the split or the order (no samples: zeros).
    """
    return _confusion_rows(y_true, y_pred, groups, sample_weight)


def subgroup_names(group_names: tuple[str, ...]) -> tuple[str, ...]:
    """The row names of a subgroup table: ``all``, each group, then per pair (a, b) of groups
    ``a & b``, ``a & not b``, ``not a & b``, ``not a & not b``.

    Parameters
    ----------
    group_names : tuple of str
        The identity columns, in order.

    Returns
    -------
    tuple of str
        1 + G + 4·G(G−1)/2 row names.
    """
    return tuple(_subgroup_rows(tuple(group_names))[0])


def subgroup_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray, group_names: tuple[str, ...],
                   *, sample_weight: np.ndarray | None = None, per_attribute: bool = True) -> SubgroupTable:
    r"""Error, FPR and FNR per subgroup row, per attribute and pooled over attributes.

    ``subgroup_rates_from_counts(subgroup_counts(y_true, y_pred, groups, sample_weight=...), names)``;
    the formulas are :func:`subgroup_rates_from_counts`'s.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n_samples, n_attributes), values in {0, 1}
    groups : ndarray of shape (n_samples, n_groups), values in {0, 1}
    group_names : names of the group columns
    sample_weight : None, ndarray of shape (n_samples,) or (n_resamples, n_samples)
    per_attribute : bool, default=True
        False leaves ``error``, ``fpr`` and ``fnr`` None (sizes and pooled rates only).

    Returns
    -------
    SubgroupTable
        Rates in [0, 1]; ``nan`` where undefined: an empty row (size 0) has every rate
        undefined, a row without negatives (positives) has FPR (FNR) undefined.
    """
    counts = _confusion_rows(y_true, y_pred, groups, sample_weight)
    _, names = _check_groups(groups, np.shape(y_true)[0], group_names)
    return subgroup_rates_from_counts(counts, names, per_attribute=per_attribute)


def subgroup_rates_from_counts(counts: SubgroupCounts, group_names: tuple[str, ...], *,
                               per_attribute: bool = True) -> SubgroupTable:
    r"""Error, FPR and FNR per subgroup row from its counts (:func:`subgroup_counts`).

    For row r with weighted counts over its samples,

    .. math:: \mathrm{err}_{rk} = \frac{FP_{rk} + FN_{rk}}{N_r},\quad
              \mathrm{FPR}_{rk} = \frac{FP_{rk}}{FP_{rk} + TN_{rk}},\quad
              \mathrm{FNR}_{rk} = \frac{FN_{rk}}{FN_{rk} + TP_{rk}}

    and pooled: :math:`\sum_k (FP_{rk}+FN_{rk}) / (K N_r)`,
    :math:`\sum_k FP_{rk} / \sum_k (FP_{rk}+TN_{rk})`, :math:`\sum_k FN_{rk} / \sum_k (FN_{rk}+TP_{rk})`.

    Parameters
    ----------
    counts : SubgroupCounts
        The table of :func:`subgroup_counts` (rows as :func:`subgroup_names`), optionally with a
        leading resample axis.
    group_names : tuple of str
        The identity columns the table was counted over.
    per_attribute : bool, default=True
        False leaves the per-attribute rates out (only sizes and pooled rates).

    Returns
    -------
    SubgroupTable
        ``nan`` where a denominator is 0 (an empty row; a row without negatives or positives).
    """
    size, positives, fp, fn = counts.size, counts.positives, counts.fp, counts.fn
    k = positives.shape[-1]
    pos_all, fp_all, fn_all = positives.sum(axis=-1), fp.sum(axis=-1), fn.sum(axis=-1)
    table = SubgroupTable(names=subgroup_names(tuple(group_names)), sizes=size,
                          pooled_error=_ratio(fp_all + fn_all, k * size),
                          pooled_fpr=_ratio(fp_all, k * size - pos_all),
                          pooled_fnr=_ratio(fn_all, pos_all))
    if not per_attribute:
        return table
    sz = size[..., None]
    return SubgroupTable(**{**table.__dict__, "error": _ratio(fp + fn, np.broadcast_to(sz, fp.shape)),
                            "fpr": _ratio(fp, sz - positives), "fnr": _ratio(fn, positives)})


def subgroup_normalized_difference(teacher: SubgroupTable, student: SubgroupTable) -> dict[str, np.ndarray]:
    r"""Normalized difference (Hooker et al.) of every rate of a subgroup table, in percent.

    .. math:: 100 \cdot (r_\mathrm{student} - r_\mathrm{teacher}) / r_\mathrm{teacher}

    Parameters
    ----------
    teacher : SubgroupTable
        The teacher's rates per subgroup row (:func:`subgroup_rates`).
    student : SubgroupTable
        The student's, with the same rows.

    Returns
    -------
    dict
        ``pooled_error``, ``pooled_fpr``, ``pooled_fnr`` (shape of the pooled rates) and,
        when both tables have them, ``error``, ``fpr``, ``fnr`` per attribute. ``nan``
        where the teacher rate is 0 or either rate is undefined.
    """
    if teacher.names != student.names:
        raise InputError(f"the subgroup tables have different rows ({list(teacher.names)} vs "
                         f"{list(student.names)}); compute both with the same groups and group_names.")
    out = {name: normalized_change(teacher=getattr(teacher, name), student=getattr(student, name))
           for name in ("pooled_error", "pooled_fpr", "pooled_fnr")}
    for name in ("error", "fpr", "fnr"):
        if getattr(teacher, name) is not None and getattr(student, name) is not None:
            out[name] = normalized_change(teacher=getattr(teacher, name), student=getattr(student, name))
    return out
