"""The paired counts behind the score bounds (gate/_paired.py), hand-computed on 8 rows."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate import metrics
from compress_gate.gate._paired import paired_counts, rate_counts

#   row  y  g  teacher  student
#   0    1  1  1        1
#   1    1  1  1        0      student-only FN (in g)
#   2    1  0  0        1      teacher-only FN
#   3    1  0  0        0      both FN
#   4    0  1  0        1      student-only FP (in g)
#   5    0  1  1        0      teacher-only FP (in g)
#   6    0  0  0        0
#   7    0  0  1        1      both FP
Y = np.array([[1], [1], [1], [1], [0], [0], [0], [0]])
G = np.array([[1], [1], [0], [0], [1], [1], [0], [0]], dtype=bool)
T = np.array([[1], [1], [0], [0], [0], [1], [0], [1]])
S = np.array([[1], [0], [1], [0], [1], [0], [0], [1]])


def _counts(metric: str, task: str = "multilabel"):
    return rate_counts(metric, paired_counts(Y, T, S, G), metrics.subgroup_counts(Y, T, G), task)


def test_fnr_and_fpr_of_the_attribute():
    fnr = _counts("fnr")      # positives 0-3: teacher FN rows 2, 3; student-only row 1, teacher-only row 2
    assert (fnr.n.tolist(), fnr.teacher.tolist(), fnr.student.tolist(), fnr.b.tolist(), fnr.c.tolist()) == \
        ([4], [2], [2], [1], [1])
    fpr = _counts("fpr")      # negatives 4-7: teacher FP rows 5, 7; student-only row 4, teacher-only row 5
    assert (fpr.n.tolist(), fpr.teacher.tolist(), fpr.student.tolist(), fpr.b.tolist(), fpr.c.tolist()) == \
        ([4], [2], [2], [1], [1])


def test_accuracy_events_are_right_answers():
    # teacher right on 0, 1, 4, 6 (4 of 8); student-only right: rows 2, 5; teacher-only right: rows 1, 4
    acc = _counts("accuracy")
    assert (acc.n.tolist(), acc.teacher.tolist(), acc.student.tolist(), acc.b.tolist(), acc.c.tolist()) == \
        ([8], [4], [4], [2], [2])


def test_subgroup_rates_per_row_with_one_attribute():
    # rows all, g: FNR in g over rows 0, 1: teacher 0 misses, student misses row 1 -> b 1, c 0
    sub = _counts("subgroup_fnr")
    assert sub.n.tolist() == [4, 2] and sub.teacher.tolist() == [2, 0] and sub.b.tolist() == [1, 1]
    assert sub.c.tolist() == [1, 0] and sub.student.tolist() == [2, 1]
    err = _counts("subgroup_error")     # in g: rows 0, 1, 4, 5: student-only errors 1, 4; teacher-only 5
    assert err.n.tolist() == [8, 4] and err.b.tolist() == [2, 2] and err.c.tolist() == [2, 1]


def test_clustered_trials_use_the_bootstrap():
    y2, t2, s2 = (np.concatenate([a, a], axis=1) for a in (Y, T, S))     # two attributes per row
    table = paired_counts(y2, t2, s2, G)
    teacher = metrics.subgroup_counts(y2, t2, G)
    assert rate_counts("accuracy", table, teacher, "multilabel") is None
    assert rate_counts("subgroup_fnr", table, teacher, "multilabel") is None
    assert rate_counts("fnr", table, teacher, "multilabel").n.tolist() == [4, 4]     # per attribute: one trial


def test_paired_counts_add_across_shards():
    whole = paired_counts(Y, T, S, G)
    parts = paired_counts(Y[:3], T[:3], S[:3], G[:3]) + paired_counts(Y[3:], T[3:], S[3:], G[3:])
    np.testing.assert_array_equal(whole.tp, parts.tp)
    np.testing.assert_array_equal(whole.positives, parts.positives)
    assert pytest.approx(whole.size.tolist()) == parts.size.tolist()


def test_multiclass_accuracy_is_one_trial_per_row():
    # the same rows as two one-hot classes: a row is right iff its true class is predicted
    y, t, s = (np.concatenate([1 - a, a], axis=1) for a in (Y, T, S))
    acc = rate_counts("accuracy", paired_counts(y, t, s, G), metrics.subgroup_counts(y, t, G), "multiclass")
    assert (acc.n.tolist(), acc.teacher.tolist(), acc.b.tolist(), acc.c.tolist()) == ([8], [4], [2], [2])
