"""Bias amplification (with its not-computed rules) and train class balance: hand-computed cases."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_gate.errors import InputError
from compress_gate.metrics import bias_amplification, train_class_balance
from compress_gate.metrics.bias import NO_POSITIVE_PREDICTIONS

# one attribute A, one identity I; rows (A, I, Â):
# r0 (1,1,1) r1 (1,1,1) r2 (1,0,0) r3 (0,1,1) r4 (1,0,1) r5 (0,0,0)
A = np.array([[1], [1], [1], [0], [1], [0]])
I = np.array([[1], [1], [0], [1], [0], [0]])
A_HAT = np.array([[1], [1], [0], [1], [1], [0]])
TEN_EACH = np.full(6, 10)          # every row 10 times: 20 positives in and 20 out of the group


def train(pos_in: int, n_in: int, pos_out: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Training rows with ``pos_in`` of ``n_in`` positives in the group, ``pos_out`` of ``n_out`` outside."""
    labels = np.array([1] * pos_in + [0] * (n_in - pos_in) + [1] * pos_out + [0] * (n_out - pos_out))
    groups = np.array([1] * n_in + [0] * n_out)
    return labels[:, None], groups[:, None]


def ba(train_rows, **kwargs):
    labels, groups = train_rows
    return bias_amplification(A, A_HAT, I, train_labels=labels, train_groups=groups, **kwargs)


def test_ba_by_hand_in_group_direction():
    # train: P(A=1 | I=1) = 4/5 > P(A=1 | I=0) = 2/5 -> g = 1
    # BA = N(Â=1, I=1) / N(Â=1) - N(A=1, I=1) / N(A=1) = 3/4 - 2/4 (rows 0,1,3 of 0,1,3,4; rows 0,1 of 0,1,2,4)
    result = ba(train(4, 5, 2, 5), sample_weight=TEN_EACH)
    assert result.values.tolist() == [[pytest.approx(0.25)]]
    assert result.direction.tolist() == [[1]]
    assert result.reasons.tolist() == [[None]]
    assert result.is_defined.tolist() == [[True]]


def test_ba_by_hand_out_of_group_direction():
    # train: 1/5 < 3/5 -> g = 0: BA = N(Â=1, I=0) / N(Â=1) - N(A=1, I=0) / N(A=1) = 1/4 - 2/4
    result = ba(train(1, 5, 3, 5), sample_weight=TEN_EACH)
    assert result.values.tolist() == [[pytest.approx(-0.25)]]
    assert result.direction.tolist() == [[0]]


def test_ba_needs_ten_positive_test_labels_in_and_out_of_the_group():
    result = ba(train(4, 5, 2, 5))                     # unweighted: 2 positives in, 2 out
    assert np.isnan(result.values).all()
    assert result.reasons[0, 0] == "fewer than 10 positive test labels in the group"
    # rows 2 and 4 (A=1, I=0) weigh 5: 10 positives outside; rows 0, 1 weigh 4: 8 inside
    weights = np.array([4, 4, 5, 1, 5, 1])
    assert ba(train(4, 5, 2, 5), sample_weight=weights).reasons[0, 0] == \
        "fewer than 10 positive test labels in the group"
    weights = np.array([5, 5, 4, 1, 4, 1])             # 10 inside, 8 outside
    assert ba(train(4, 5, 2, 5), sample_weight=weights).reasons[0, 0] == \
        "fewer than 10 positive test labels outside the group"
    assert ba(train(4, 5, 2, 5), min_positives=2).values[0, 0] == pytest.approx(0.25)


def test_ba_is_not_computed_when_training_shares_barely_differ():
    # 10/20 = 0.5 vs 12/25 = 0.48: |0.5 - 0.48| / 0.48 = 0.0417 < 0.1
    result = ba(train(10, 20, 12, 25), sample_weight=TEN_EACH)
    assert np.isnan(result.values[0, 0])
    assert "barely differ" in result.reasons[0, 0] and "0.0417" in result.reasons[0, 0]
    assert result.direction[0, 0] == -1


def test_ba_is_computed_at_exactly_the_relative_difference_limit():
    # 11/20 = 0.55 vs 10/20 = 0.5: |0.55 - 0.5| / 0.5 = 0.1, not < 0.1
    assert ba(train(11, 20, 10, 20), sample_weight=TEN_EACH).values[0, 0] == pytest.approx(0.25)


def test_ba_with_no_training_positives_on_one_side_is_computed_toward_the_other():
    # P(A=1 | I=0) = 0: |pos - neg| / min = infinite, so the rule does not stop it; g = 1
    result = ba(train(2, 5, 0, 5), sample_weight=TEN_EACH)
    assert result.values[0, 0] == pytest.approx(0.25)
    assert result.direction[0, 0] == 1


def test_ba_with_no_training_positives_at_all_is_not_computed():
    result = ba(train(0, 5, 0, 5), sample_weight=TEN_EACH)
    assert np.isnan(result.values[0, 0])
    assert result.reasons[0, 0] == "no positive training labels in or out of the group"


def test_ba_with_no_training_rows_in_the_group_is_not_computed():
    result = ba(train(0, 0, 2, 5), sample_weight=TEN_EACH)
    assert result.reasons[0, 0] == "no training rows in the group"


def test_ba_without_positive_predictions_is_undefined():
    result = bias_amplification(A, np.zeros_like(A), I, train_labels=train(4, 5, 2, 5)[0],
                                train_groups=train(4, 5, 2, 5)[1], sample_weight=TEN_EACH)
    assert np.isnan(result.values[0, 0])
    assert result.reasons[0, 0] == NO_POSITIVE_PREDICTIONS


def test_ba_per_attribute_and_group_with_resample_weights():
    labels, groups = train(4, 5, 2, 5)
    weights = np.stack([TEN_EACH, np.array([10, 10, 10, 0, 10, 10])]).astype(np.float32)
    result = bias_amplification(A, A_HAT, I, train_labels=labels, train_groups=groups, sample_weight=weights)
    # resample 1 drops row 3: N(Â=1, I=1) / N(Â=1) = 20/30, N(A=1, I=1) / N(A=1) = 20/40 -> 1/6
    assert result.values.shape == (2, 1, 1) and result.reasons.shape == (2, 1, 1)
    assert result.values[:, 0, 0] == pytest.approx([0.25, 1 / 6])


def test_ba_refuses_train_groups_with_other_columns():
    with pytest.raises(InputError, match="train_groups has 2 columns but groups has 1"):
        bias_amplification(A, A_HAT, I, train_labels=A, train_groups=np.ones((6, 2)))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(20, 120), st.integers(1, 4), st.integers(1, 3))
def test_identical_teacher_and_student_give_zero_ba_increase(seed, n, k, g):
    rng = np.random.default_rng(seed)
    y, pred = rng.random((n, k)) < 0.4, rng.random((n, k)) < 0.4
    groups = rng.random((n, g)) < 0.5
    labels, train_groups = rng.random((3 * n, k)) < 0.4, rng.random((3 * n, g)) < 0.5
    teacher = bias_amplification(y, pred, groups, train_labels=labels, train_groups=train_groups, min_positives=2)
    student = bias_amplification(y, pred.copy(), groups, train_labels=labels, train_groups=train_groups,
                                 min_positives=2)
    increase = student.values - teacher.values
    assert np.array_equal(np.isnan(increase), np.isnan(teacher.values))
    assert np.all(increase[~np.isnan(increase)] == 0.0)


def test_tcb_by_hand():
    # a0: train mean 0.3 (<= 0.5) -> N(Â=1) / N(A=1): y 1 0 0 1 0 0, ŷ 1 1 0 0 0 1 -> 3 / 2
    # a1: train mean 0.8 (> 0.5) -> N(Â=0) / N(A=0): y 1 1 1 0 1 0 (2 zeros), ŷ 1 0 1 1 1 1 (1 zero) -> 1 / 2
    y = np.array([[1, 1], [0, 1], [0, 1], [1, 0], [0, 1], [0, 0]])
    pred = np.array([[1, 1], [1, 0], [0, 1], [0, 1], [0, 1], [1, 1]])
    assert train_class_balance(y, pred, train_mean=np.array([0.3, 0.8])) == pytest.approx([1.5, 0.5])
    # weights 0 0 1 1 1 1: a0 N(Â=1) = 1 (row 5), N(A=1) = 1 (row 3) -> 1; a1 N(Â=0) = 0, N(A=0) = 2 -> 0
    w = np.array([0, 0, 1, 1, 1, 1])
    assert train_class_balance(y, pred, train_mean=np.array([0.3, 0.8]), sample_weight=w) == pytest.approx([1, 0])


def test_tcb_is_nan_without_the_rare_value_in_the_test_split():
    y, pred = np.zeros((3, 1)), np.array([[1], [0], [0]])
    assert np.isnan(train_class_balance(y, pred, train_mean=np.array([0.2])))[0]


def test_tcb_refuses_a_train_mean_of_the_wrong_shape():
    with pytest.raises(InputError, match="train_mean"):
        train_class_balance(np.zeros((3, 2)), np.zeros((3, 2)), train_mean=np.array([0.2]))
