"""Joint groups (FairGRAPE's gender × race): each sample's membership pattern over every identity
column, and the base of the additive per-joint-group count tables that merge across shards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate.errors import InputError
from compress_gate.metrics._checks import _check_groups
from compress_gate.metrics._counts import _memo_of
from compress_gate.metrics._tables import SubgroupCounts, _aggregate, _cell_sums, _memo_get, _memo_put


def _pattern_labels(group_names: tuple[str, ...], patterns: np.ndarray) -> tuple[str, ...]:
    """``male & not young`` for the pattern (True, False) of the columns (male, young)."""
    return tuple(" & ".join(name if member else f"not {name}" for name, member in zip(group_names, row))
                 for row in patterns)


def _joint_groups(groups: object, n_samples: int, group_names: object,
                  sample_weight: object = None) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(n, J) bool one-hot of each sample's joint group, the names of the G group columns, and
    the (J, G) bool membership pattern of each joint group (True: member of that column).

    Memoized per ``groups`` object with a registered resample matrix, so every call of a
    bootstrap chunk hands the count table the same one-hot array (and its memo hits).
    """
    memo = _memo_of(sample_weight)
    key = ("joint_groups", id(groups), repr(group_names))
    cached = _memo_get(memo, key, (groups,))
    if cached is not None:
        return cached  # type: ignore[return-value]
    g, names = _check_groups(groups, n_samples, group_names)
    if g.shape[1] == 0:
        raise InputError("groups has no columns; pass at least one 0/1 identity column (n_samples, n_groups).")
    patterns, cell_of = np.unique(~g, axis=0, return_inverse=True)     # ~g: members sort first
    member = np.zeros((n_samples, len(patterns)), dtype=bool)
    member[np.arange(n_samples), cell_of.reshape(-1)] = True
    return _memo_put(memo, key, (groups,),  # type: ignore[return-value]
                     (member, names, ~patterns))


def _joint_counts(y_true: object, y_pred: object, groups: object, group_names: object,
                  sample_weight: object = None) -> tuple[tuple[str, ...], np.ndarray, SubgroupCounts]:
    """(names of the G group columns, (J, G) member-first patterns of the joint groups present,
    confusion counts of the rows ``all`` + each joint group).

    The joint groups are the cells of the shared count table (``_cell_sums``: samples sorted
    by membership pattern), so with a registered resample matrix the per-cell sums computed
    for the subgroup table of the same arrays are reused, and no pairwise row is built.
    """
    n = np.shape(y_true)[0]
    g, names = _check_groups(groups, n, group_names)
    if g.shape[1] == 0:
        raise InputError("groups has no columns; pass at least one 0/1 identity column (n_samples, n_groups).")
    layout, labels, predictions = _cell_sums(y_true, y_pred, groups, sample_weight)
    k = labels.shape[-1] - 1
    if n == 0:                                    # one empty cell: only the row ``all``
        return names, np.zeros((0, g.shape[1]), dtype=bool), _aggregate(labels, predictions, np.ones((1, 1)), k)
    order = np.lexsort((~layout.patterns).T[::-1])        # member-first, by column (as np.unique(~g))
    to_rows = np.vstack([np.ones((1, len(order))), np.eye(len(order))[order]])
    return names, layout.patterns[order], _aggregate(labels, predictions, to_rows, k)


@dataclass(frozen=True)
class _JointRows:
    """Rows ``all`` + one per joint group, each group named by its membership ``patterns`` (J, G)
    over ``group_names``. Additive tables of these rows merge with ``+`` (see :meth:`_merge`)."""

    group_names: tuple[str, ...]
    patterns: np.ndarray

    @property
    def names(self) -> tuple[str, ...]:
        """``all``, then the joint groups (e.g. ``male & not young``), member-first by column."""
        return ("all",) + _pattern_labels(self.group_names, self.patterns)

    def _merge(self, other: _JointRows, fields: dict[str, int]) -> dict:
        """The union of both tables' rows (member-first order) with each field in ``fields``
        (name -> axis of its rows) summed: rows of one pattern add, a row only one side has
        keeps its counts. Leading resample axes broadcast."""
        if type(other) is not type(self) or other.group_names != self.group_names:
            raise InputError(f"cannot add {type(other).__name__} over groups {list(getattr(other, 'group_names', []))} "
                             f"to {type(self).__name__} over {list(self.group_names)}: merge count tables of the "
                             "same identity columns, in the same order.")
        both = np.concatenate([self.patterns, other.patterns]).reshape(-1, len(self.group_names))
        inverted, where = np.unique(~both, axis=0, return_inverse=True)
        where = np.concatenate([[0], 1 + where.reshape(-1)])
        rows_a = where[:1 + len(self.patterns)]
        rows_b = np.concatenate([[0], where[1 + len(self.patterns):]])
        out: dict = {"group_names": self.group_names, "patterns": ~inverted}
        for name, axis in fields.items():
            a, b = (np.moveaxis(np.asarray(getattr(t, name), dtype=np.float64), axis, -1) for t in (self, other))
            total = np.zeros(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]) + (1 + len(inverted),))
            total[..., rows_a] += a
            total[..., rows_b] += b
            out[name] = np.moveaxis(total, -1, axis)
        return out


def _sample_std(values: np.ndarray) -> np.ndarray | float:
    """Sample standard deviation over the last axis; ``nan`` with fewer than 2 values or any ``nan``."""
    value = np.std(values, axis=-1, ddof=1) if values.shape[-1] >= 2 else np.full(values.shape[:-1], np.nan)
    return float(value) if np.ndim(value) == 0 else value


def group_change_std(teacher: np.ndarray, student: np.ndarray) -> float | np.ndarray:
    r"""FairGRAPE's spread of a change over joint groups: the sample standard deviation of
    :math:`\Delta_j = s_j - t_j` over the last axis (the J joint groups, without ``all``).

    .. math:: \mathrm{Std}(\Delta) = \sqrt{\tfrac{1}{J-1}\textstyle\sum_j (\Delta_j - \bar\Delta)^2}

    Parameters
    ----------
    teacher, student : ndarray of shape (..., J), broadcasting (e.g. (J,) against (n_resamples, J))

    Returns
    -------
    float, or ndarray of the leading shape
        >= 0. ``nan`` with fewer than 2 groups or any ``nan`` value.

    Examples
    --------
    >>> group_change_std(np.array([1.0, 1.0, 1.0]), np.array([0.5, 1.0, 1.5]))
    0.5
    """
    return _sample_std(np.asarray(student, dtype=np.float64) - np.asarray(teacher, dtype=np.float64))


def _check_same_rows(teacher_names: tuple[str, ...], student_names: tuple[str, ...]) -> None:
    if teacher_names != student_names:
        raise InputError(f"the teacher's joint groups {list(teacher_names)} differ from the student's "
                         f"{list(student_names)}; compute both with the same groups and group_names.")
