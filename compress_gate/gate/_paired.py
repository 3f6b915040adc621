r"""Paired counts of the rate metrics: per unit, the rows where only the student or only the
teacher has the event, for score intervals (:mod:`compress_gate.metrics.intervals`).

The additive table (:func:`paired_counts`, one point table per shard, merged by addition) is
a :class:`~compress_gate.metrics.SubgroupCounts` over 2K columns, with ``d = s != t`` (the
student's and the teacher's labels differ):

- columns ``k``: ``positives`` = N(A=1, d), ``tp`` = N(A=1, d, Â_student=1);
- columns ``K + k``: ``positives`` = N(A=0, d), ``tp`` = N(A=0, d, Â_student=1).

Per attribute k and subgroup row, with :math:`P_1, T_1, P_2, T_2` those four counts:
student-only FN = :math:`P_1 - T_1`, teacher-only FN = :math:`T_1`, student-only FP =
:math:`T_2`, teacher-only FP = :math:`P_2 - T_2`. A score interval needs independent
trials: each row may add at most one trial to a unit's denominator. That holds for the
per-attribute FPR/FNR, and for accuracy, error and pooled rates only with one attribute, or
multi-class accuracy and pooled FNR (one positive class per row): :func:`rate_counts` returns
None otherwise, and the limit uses the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress_gate import metrics

__all__ = ["RATE_METRICS", "RateCounts", "paired_counts", "rate_counts"]

#: Metrics that are rates over rows (a score interval may bound them and their paired change).
RATE_METRICS = frozenset({"accuracy", "fpr", "fnr", "subgroup_error", "subgroup_fpr", "subgroup_fnr"})


@dataclass(frozen=True)
class RateCounts:
    """Per unit: ``n`` trials, the student's and the teacher's events, ``b`` (student only) and
    ``c`` (teacher only) discordant trials. Arrays of shape (U,)."""

    n: np.ndarray
    student: np.ndarray
    teacher: np.ndarray
    b: np.ndarray
    c: np.ndarray


def paired_counts(y_true: np.ndarray, teacher_pred: np.ndarray, student_pred: np.ndarray,
                  groups: np.ndarray) -> metrics.SubgroupCounts:
    """The additive paired table of one shard's test rows: a SubgroupCounts over 2K columns.

    With ``d = student != teacher`` per (row, attribute): columns ``k`` count N(A=1, d) as
    ``positives`` and N(A=1, d, student=1) as ``tp``; columns ``K + k`` count N(A=0, d) and
    N(A=0, d, student=1); per subgroup row of ``groups``. Tables of shards add with ``+``.
    """
    y = y_true.astype(bool)
    s = student_pred.astype(bool)
    d = s != teacher_pred.astype(bool)
    sd = s & d
    return metrics.subgroup_counts(np.concatenate([y & d, ~y & d], axis=1), np.concatenate([sd, sd], axis=1),
                                   groups)


def _events(paired: metrics.SubgroupCounts, k: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(student-only, teacher-only) counts per (row, attribute) for each event kind."""
    p1, t1 = paired.positives[..., :k], paired.tp[..., :k]
    p2, t2 = paired.positives[..., k:], paired.tp[..., k:]
    fn = (p1 - t1, t1)
    fp = (t2, p2 - t2)
    return {"fn": fn, "fp": fp, "error": (fn[0] + fp[0], fn[1] + fp[1])}


def rate_counts(metric: str, paired: metrics.SubgroupCounts, teacher: metrics.SubgroupCounts, task: str
                ) -> RateCounts | None:
    """The :class:`RateCounts` of ``metric``'s units from the merged paired table and the teacher's
    confusion counts: trials, the teacher's events, and the student-only and teacher-only events.

    Student-only FN = P1 - T1, teacher-only FN = T1, student-only FP = T2, teacher-only FP =
    P2 - T2 (the four counts of :func:`paired_counts` per attribute and row). Units: per
    attribute for ``fpr``/``fnr`` (row ``all``); the whole test set for ``accuracy``; per
    subgroup for ``subgroup_*`` (pooled over attributes). None where a row would add more than
    one trial to a unit (accuracy or pooled rates over several multi-label attributes, except
    multi-class accuracy and pooled FNR): a score interval needs independent trials, so the
    limit takes the bootstrap instead.
    """
    k = teacher.positives.shape[-1]
    events = _events(paired, k)
    size = np.broadcast_to(teacher.size[..., None], teacher.positives.shape)
    negatives = size - teacher.positives
    own = {"fn": teacher.fn, "fp": teacher.fp, "error": teacher.fp + teacher.fn}
    trials = {"fn": teacher.positives, "fp": negatives, "error": size}
    one_trial = k == 1 or task == "multiclass"
    if metric in ("fpr", "fnr"):
        kind, row = metric[:2], 0
        return _counts(trials[kind][row], own[kind][row], *(e[row] for e in events[kind]))
    if metric == "accuracy" and one_trial:
        if task == "multiclass":          # a row is right iff its true class is predicted
            b, c = events["fn"][1][0].sum(), events["fn"][0][0].sum()        # student right only: teacher-only FN
            right = teacher.positives[0].sum() - teacher.fn[0].sum()
            return _counts(np.array([teacher.size[0]]), np.array([right]), np.array([b]), np.array([c]))
        b, c = events["error"][1][0], events["error"][0][0]
        return _counts(size[0], size[0] - own["error"][0], b, c)
    pooled_ok = k == 1 or (task == "multiclass" and metric == "subgroup_fnr")
    if metric.startswith("subgroup_") and pooled_ok:
        kind = {"subgroup_fnr": "fn", "subgroup_fpr": "fp", "subgroup_error": "error"}[metric]
        return _counts(trials[kind].sum(-1), own[kind].sum(-1), events[kind][0].sum(-1), events[kind][1].sum(-1))
    return None


def _counts(n: np.ndarray, teacher: np.ndarray, b: np.ndarray, c: np.ndarray) -> RateCounts:
    n, teacher, b, c = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (n, teacher, b, c))
    return RateCounts(n=n, student=teacher + b - c, teacher=teacher, b=b, c=c)
