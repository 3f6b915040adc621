"""Iofinova et al.'s direction (threshold calibration lowers bias amplification) where it must hold,
and the case where it cannot: docs/gate.md, "Why calibration did not lower BA on the demo".

One attribute A, one identity category I, 100 rows used as train, calib and test alike:
I = 1: 15 positives, 35 negatives; I = 0: 10 positives, 40 negatives. P_train(A | I=1) = 0.3 >
P_train(A | I=0) = 0.2 (relative difference 0.5 >= 0.1), so g = 1; P(I=1 | A=1) = 15/25 = 0.6.
The teacher scores positives 0.8 and negatives 0.2: it predicts exactly the 25 positives, BA = 0.
"""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.metrics import bias_amplification, train_class_balance
from compress_gate.mitigation import apply_thresholds, calibrate_thresholds

IDENTITY = np.array([1] * 50 + [0] * 50)
LABELS = np.array([1] * 15 + [0] * 35 + [1] * 10 + [0] * 40)


def _scores(pos_in: float, pos_out: float, neg_in: list[float], neg_out: float) -> np.ndarray:
    """Scores for the rows above: positives of I=1 and I=0, negatives of I=1 (one per row), of I=0."""
    return np.array([pos_in] * 15 + neg_in + [pos_out] * 10 + [neg_out] * 40, dtype=float)[:, None]


def _ba(scores: np.ndarray, thresholds: np.ndarray | None) -> float:
    y_pred = apply_thresholds(scores, thresholds)
    result = bias_amplification(LABELS[:, None], y_pred, IDENTITY[:, None], train_labels=LABELS[:, None],
                                train_groups=IDENTITY[:, None])
    return float(result.values[0, 0])


def test_teacher_has_no_bias_amplification():
    teacher = _scores(0.8, 0.8, [0.2] * 35, 0.2)
    assert _ba(teacher, None) == pytest.approx(0.0)


def test_calibration_removes_the_ba_a_threshold_shift_causes():
    # The student's scores shrank (a pruned model is less confident): its positives of I=1 (the
    # side A goes with) at 0.6, those of I=0 at 0.4, negatives 0.1. At 0.5 it predicts only the 15
    # positives of I=1: BA = 15/15 - 0.6 = +0.4, and TCB (A is rare: N(A^=1)/N(A=1)) = 15/25 = 0.6.
    student = _scores(0.6, 0.4, [0.1] * 35, 0.1)
    assert _ba(student, None) == pytest.approx(0.4)
    assert train_class_balance(LABELS[:, None], apply_thresholds(student, None),
                               train_mean=np.array([0.25]))[0] == pytest.approx(0.6)
    # Calibration: k = 25 on calib; sorted .6 x15, .4 x10 | .1 -> t = (.4 + .1)/2 = .25: all 25
    # positives predicted, BA = 15/25 - 0.6 = 0 and TCB = 1: the paper's direction.
    t = calibrate_thresholds(LABELS[:, None], student)
    assert t == pytest.approx([0.25])
    assert _ba(student, t) == pytest.approx(0.0)
    assert _ba(student, t) < _ba(student, None)


def test_calibration_cannot_remove_ba_when_the_count_of_positives_is_already_right():
    # The demo's case: the student moves positives from I=0 to I=1 without changing how many it
    # predicts. I=1: positives 0.7 and 5 of its negatives 0.6 (false positives); I=0: positives
    # split 5 at 0.7, 5 at 0.3; other negatives 0.1. At 0.5: 15 + 5 + 5 = 25 predicted = k, so the
    # calibrated threshold, (0.6 + 0.3)/2 = 0.45, predicts the same rows and BA stays
    # (15 + 5)/25 - 0.6 = +0.2. One threshold per attribute cannot undo a shift between groups.
    student = np.array([0.7] * 15 + [0.6] * 5 + [0.1] * 30 + [0.7] * 5 + [0.3] * 5 + [0.1] * 40)[:, None]
    t = calibrate_thresholds(LABELS[:, None], student)
    assert t == pytest.approx([0.45])
    assert _ba(student, None) == pytest.approx(0.2) == _ba(student, t)
