"""Confusion counts per subgroup row: the one table behind the rates, TCB, BA and subgroups.

Samples are sorted by *cell*, the pattern of identity-group membership they have (at
most 2**G cells, only those present). Per cell, one matrix product per block of its
samples gives the weighted sizes, positive labels, positive predictions and true
positives of every attribute, so each sample is multiplied once (not once per row
it belongs to). Rows (``all``, each group, each pairwise intersection) are sums of
cells. With a registered resample matrix (``bootstrap_weights``) the per-cell sums are
memoized, so every metric of a chunk, for every model, shares them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from compress_gate.metrics._checks import _check_indicators, _check_sample_weight
from compress_gate.metrics._counts import _column_sums, _memo_of

Constraint = tuple[tuple[int, bool], ...]     # (group column, member?) pairs that define a row


def _subgroup_rows(group_names: tuple[str, ...]) -> tuple[list[str], list[Constraint]]:
    """Row names and rules: ``all``, each group, then per pair (a, b) the four intersections."""
    names, rules = ["all"], [()]
    for j, name in enumerate(group_names):
        names.append(name)
        rules.append(((j, True),))
    for (a, name_a), (b, name_b) in combinations(enumerate(group_names), 2):
        for in_a in (True, False):
            for in_b in (True, False):
                names.append(f"{'' if in_a else 'not '}{name_a} & {'' if in_b else 'not '}{name_b}")
                rules.append(((a, in_a), (b, in_b)))
    return names, rules


def _membership(bits: np.ndarray, rules: list[Constraint]) -> np.ndarray:
    """(m, n_rows) bool: the rows each group-membership pattern (m, G) belongs to."""
    out = np.ones((bits.shape[0], len(rules)), dtype=bool)
    for r, rule in enumerate(rules):
        for column, member in rule:
            out[:, r] &= bits[:, column] == member
    return out


@dataclass(frozen=True)
class _Layout:
    """Samples sorted by cell: ``order`` (None: already in cell order, no copies needed),
    ``bounds`` (C + 1,) offsets of each cell in sorted order, ``to_rows`` (R, C) 0/1: the
    cells of each row, ``patterns`` (C, G) bool: each cell's group membership (no samples
    or no groups: one cell, all False)."""

    order: np.ndarray | None
    bounds: np.ndarray
    to_rows: np.ndarray
    patterns: np.ndarray


def _layout(groups: np.ndarray | None, n_samples: int) -> _Layout:
    n_groups = 0 if groups is None else groups.shape[1]
    _, rules = _subgroup_rows(tuple(str(j) for j in range(n_groups)))
    if n_groups == 0 or n_samples == 0:
        return _Layout(order=None, bounds=np.array([0, n_samples]),
                       to_rows=np.ones((len(rules), 1)), patterns=np.zeros((1, n_groups), dtype=bool))
    if n_groups <= 20:                 # pattern -> integer code, cells by counting codes
        code = groups.astype(np.int64) @ (1 << np.arange(n_groups, dtype=np.int64))
        present = np.flatnonzero(np.bincount(code, minlength=2**n_groups))
        patterns = ((present[:, None] >> np.arange(n_groups)) & 1).astype(bool)
        cell_of = np.searchsorted(present, code)
    else:
        patterns, cell_of = np.unique(groups, axis=0, return_inverse=True)
    cell_of = cell_of.reshape(-1).astype(np.uint16 if len(patterns) <= 2**16 else np.int64)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(cell_of, minlength=len(patterns)))])
    order = None if np.all(cell_of[1:] >= cell_of[:-1]) else np.argsort(cell_of, kind="stable")
    return _Layout(order=order, bounds=bounds, to_rows=_membership(patterns, rules).T.astype(np.float64),
                   patterns=patterns)


@dataclass(frozen=True)
class SubgroupCounts:
    """Weighted confusion counts per subgroup row: the sufficient statistics of the rates,
    TCB, BA and the subgroup rates.

    ``size`` (..., R) and, per attribute, ``positives`` N(A=1), ``predicted`` N(Â=1) and
    ``tp`` N(A=1, Â=1), each (..., R, K); rows ``all``, each group, then the pairwise
    intersections (:func:`compress_gate.metrics.subgroup_counts`). Tables of disjoint sets
    of samples merge by addition (``a + b``). With integer weights (unit weights,
    bootstrap counts) every count is an integer, exact in float64 below 2**53, so a merged
    table does not depend on how the samples were split or in which order they were added.
    """

    size: np.ndarray
    positives: np.ndarray
    predicted: np.ndarray
    tp: np.ndarray

    def __add__(self, other: SubgroupCounts) -> SubgroupCounts:
        """Field-wise sum: the counts of the union of two disjoint sets of samples."""
        return SubgroupCounts(self.size + other.size, self.positives + other.positives,
                              self.predicted + other.predicted, self.tp + other.tp)

    @property
    def fp(self) -> np.ndarray:
        return self.predicted - self.tp

    @property
    def fn(self) -> np.ndarray:
        return self.positives - self.tp

    @property
    def tn(self) -> np.ndarray:
        return self.size[..., None] - self.positives - self.predicted + self.tp

    def row(self, index: int) -> SubgroupCounts:
        """The counts of one row, without the row axis."""
        return SubgroupCounts(self.size[..., index], self.positives[..., index, :],
                          self.predicted[..., index, :], self.tp[..., index, :])


def _memo_get(memo: dict | None, key: tuple, refs: tuple) -> object | None:
    """A memoized value stored with the very objects in ``refs`` (identity, not equality)."""
    if memo is None or key not in memo:
        return None
    stored_refs, value = memo[key]
    return value if all(a is b for a, b in zip(stored_refs, refs)) else None


def _memo_put(memo: dict | None, key: tuple, refs: tuple, value: object) -> object:
    if memo is not None:
        memo[key] = (refs, value)
    return value


def _cached_overall(y_true: object, y_pred: object, sample_weight: object) -> SubgroupCounts | None:
    """Row ``all`` of any table already memoized for these very arrays and weights, else None."""
    memo = _memo_of(sample_weight)
    for key, entry in list((memo or {}).items()):
        refs, value = entry
        if key[0] == "predictions" and refs[0] is y_true and refs[1] is y_pred:
            labels = _memo_get(memo, ("labels", id(y_true), key[3]), (y_true, refs[2]))
            if labels is not None:
                return _aggregate(labels, value, np.ones((1, value.shape[-2])), value.shape[-1] // 2)
    return None


def _confusion_rows(y_true: object, y_pred: object, groups: object | None,
                    sample_weight: object) -> SubgroupCounts:
    """Checked inputs -> confusion counts per subgroup row (only row ``all`` when
    ``groups`` is None). Raises InputError naming a bad argument."""
    if groups is None:
        cached = _cached_overall(y_true, y_pred, sample_weight)
        if cached is not None:
            return cached
    layout, labels, predictions = _cell_sums(y_true, y_pred, groups, sample_weight)
    return _aggregate(labels, predictions, layout.to_rows, labels.shape[-1] - 1)


def _cell_sums(y_true: object, y_pred: object, groups: object | None,
               sample_weight: object) -> tuple[_Layout, np.ndarray, np.ndarray]:
    """Checked inputs -> (layout, per-cell sums (..., C, 1 + K) of [1, A], per-cell sums
    (..., C, 2K) of [Â, A·Â]), memoized per registered weight matrix."""
    t = _check_indicators(y_true, "y_true")
    n, k = t.shape
    p = _check_indicators(y_pred, "y_pred", n_samples=n, n_attributes=k)
    g = None if groups is None else _check_indicators(groups, "groups", n_samples=n)
    w = _check_sample_weight(sample_weight, n)
    memo = _memo_of(sample_weight)
    layout = _memo_get(memo, ("layout", id(groups)), (groups,))
    if layout is None:
        layout = _memo_put(memo, ("layout", id(groups)), (groups,), _layout(g, n))

    def cached(key: tuple, refs: tuple, compute):     # memoized per weight matrix (computed when absent)
        value = _memo_get(memo, key, refs)
        return value if value is not None else _memo_put(memo, key, refs, compute())

    def by_cell(x: np.ndarray) -> np.ndarray:
        return x if layout.order is None else np.take(x, layout.order, axis=0)
    w_sorted = w if layout.order is None or w is None else cached(
        ("sorted_weights", id(groups)), (groups,), lambda: np.take(w, layout.order, axis=-1))
    t_sorted = cached(("sorted_labels", id(y_true), id(groups)), (y_true, groups), lambda: by_cell(t))
    labels_key, labels_refs = ("labels", id(y_true), id(groups)), (y_true, groups)
    predictions_key = ("predictions", id(y_true), id(y_pred), id(groups))
    predictions_refs = (y_true, y_pred, groups)
    labels = _memo_get(memo, labels_key, labels_refs)
    predictions = _memo_get(memo, predictions_key, predictions_refs)
    if predictions is None:                  # one product for [1, A, Â, A·Â], or [Â, A·Â] when A's are known
        p_sorted = by_cell(p)
        parts = [] if labels is not None else [lambda rows: np.ones((rows.stop - rows.start, 1), dtype=bool),
                                               lambda rows: t_sorted[rows]]
        parts += [lambda rows: p_sorted[rows], lambda rows: p_sorted[rows] & t_sorted[rows]]
        sums = _column_sums(lambda rows: np.concatenate([part(rows) for part in parts], axis=1),
                            n, (1 + k) * (labels is None) + 2 * k, w_sorted, layout.bounds)
        if labels is None:
            labels = _memo_put(memo, labels_key, labels_refs, sums[..., :1 + k])
            sums = sums[..., 1 + k:]
        predictions = _memo_put(memo, predictions_key, predictions_refs, sums)
    return layout, labels, predictions


def _aggregate(labels: np.ndarray, predictions: np.ndarray, to_rows: np.ndarray, k: int) -> SubgroupCounts:
    """Per-cell sums (..., C, 1 + K) and (..., C, 2K) -> per-row counts."""
    rows_labels = to_rows @ labels
    rows_pred = to_rows @ predictions
    return SubgroupCounts(size=rows_labels[..., 0], positives=rows_labels[..., 1:],
                      predicted=rows_pred[..., :k], tp=rows_pred[..., k:])
