"""Predicted labels, confusion counts, FPR, FNR, error rate and accuracy: hand-computed cases."""

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.metrics import (accuracy, confusion_counts, error_rate, false_negative_rate, false_positive_rate,
                                   predict_labels)

# attribute 0: y = 1 1 0 0 1, ŷ = 1 0 0 1 1 -> TP rows 0,4 (2), FN row 1, FP row 3, TN row 2
# attribute 1: y = 0 1 1 0 0, ŷ = 1 1 0 0 0 -> TP row 1, FN row 2, FP row 0, TN rows 3,4 (2)
Y_TRUE = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0]], dtype=np.uint8)
Y_PRED = np.array([[1, 1], [0, 1], [0, 0], [1, 0], [1, 0]], dtype=np.uint8)


def test_confusion_counts_by_hand():
    c = confusion_counts(Y_TRUE, Y_PRED)
    assert c.tp.tolist() == [2, 1]
    assert c.fn.tolist() == [1, 1]
    assert c.fp.tolist() == [1, 1]
    assert c.tn.tolist() == [1, 2]
    assert c.fpr == pytest.approx([1 / 2, 1 / 3])
    assert c.fnr == pytest.approx([1 / 3, 1 / 2])
    assert c.error == pytest.approx([2 / 5, 2 / 5])


def test_fpr_fnr_error_by_hand():
    # FPR = FP/(FP+TN): 1/(1+1), 1/(1+2); FNR = FN/(FN+TP): 1/(1+2), 1/(1+1); error = (FP+FN)/5
    assert false_positive_rate(Y_TRUE, Y_PRED) == pytest.approx([1 / 2, 1 / 3])
    assert false_negative_rate(Y_TRUE, Y_PRED) == pytest.approx([1 / 3, 1 / 2])
    assert error_rate(Y_TRUE, Y_PRED) == pytest.approx([0.4, 0.4])


def test_rates_with_sample_weight_by_hand():
    # weights 2,1,1,1,0. a0: TP = 2 (row 0) + 0 (row 4), FN = 1, FP = 1, TN = 1 -> FPR 1/2, FNR 1/3
    # a1: TP = 1, FN = 1, FP = 2 (row 0), TN = 1 (row 3) + 0 (row 4) -> FPR 2/3, FNR 1/2
    w = np.array([2, 1, 1, 1, 0])
    assert false_positive_rate(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx([1 / 2, 2 / 3])
    assert false_negative_rate(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx([1 / 3, 1 / 2])
    # error: a0 wrong rows 1, 3 -> 2/5 of weight 5; a1 wrong rows 0 (2), 2 (1) -> 3/5
    assert error_rate(Y_TRUE, Y_PRED, sample_weight=w) == pytest.approx([2 / 5, 3 / 5])


def test_accuracy_multilabel_is_mean_attribute_accuracy():
    # 10 labels, 4 wrong (a0 rows 1, 3; a1 rows 0, 2) -> 6/10
    assert accuracy(Y_TRUE, Y_PRED, task="multilabel") == pytest.approx(0.6)
    assert isinstance(accuracy(Y_TRUE, Y_PRED, task="multilabel"), float)


def test_accuracy_multiclass_counts_rows():
    # classes true 0 1 2 1, predicted 0 2 2 1 -> 3 of 4 right
    eye = np.eye(3, dtype=np.uint8)
    assert accuracy(eye[[0, 1, 2, 1]], eye[[0, 2, 2, 1]], task="multiclass") == pytest.approx(0.75)


def test_accuracy_multiclass_refuses_rows_that_are_not_one_hot():
    with pytest.raises(InputError, match="one-hot"):
        accuracy(np.eye(3)[[0, 1]], np.array([[1, 1, 0], [0, 1, 0]]), task="multiclass")


def test_rates_are_nan_when_the_denominator_is_zero():
    y_true = np.array([[0, 1], [0, 1]])           # a0 has no positives, a1 no negatives
    y_pred = np.array([[1, 1], [0, 0]])
    fnr, fpr = false_negative_rate(y_true, y_pred), false_positive_rate(y_true, y_pred)
    assert np.isnan(fnr[0]) and fnr[1] == pytest.approx(0.5)
    assert fpr[0] == pytest.approx(0.5) and np.isnan(fpr[1])


def test_no_samples_gives_nan_not_zero():
    empty = np.zeros((0, 3), dtype=np.uint8)
    assert np.isnan(false_positive_rate(empty, empty)).all()
    assert np.isnan(error_rate(empty, empty)).all()
    assert np.isnan(accuracy(empty, empty, task="multilabel"))


def test_zero_total_weight_gives_nan():
    assert np.isnan(error_rate(Y_TRUE, Y_PRED, sample_weight=np.zeros(5))).all()


def test_resample_weights_add_a_leading_axis():
    w = np.array([[1, 1, 1, 1, 1], [2, 1, 1, 1, 0]], dtype=np.float32)
    fpr = false_positive_rate(Y_TRUE, Y_PRED, sample_weight=w)
    assert fpr.shape == (2, 2)
    assert fpr == pytest.approx(np.array([[1 / 2, 1 / 3], [1 / 2, 2 / 3]]))
    assert accuracy(Y_TRUE, Y_PRED, task="multilabel", sample_weight=w).shape == (2,)


def test_predict_labels_multilabel_strictly_above_threshold():
    scores = np.array([[0.7, 0.5], [0.2, 0.9]])
    assert predict_labels(scores, task="multilabel").tolist() == [[1, 0], [0, 1]]
    assert predict_labels(scores, task="multilabel", thresholds=np.array([0.6, 0.95])).tolist() == [[1, 0], [0, 0]]


def test_predict_labels_multiclass_one_hot_argmax_first_on_ties():
    scores = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    assert predict_labels(scores, task="multiclass").tolist() == [[0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("scores, message", [
    (np.array([[0.2, np.nan]]), "NaN"),
    (np.array([[0.2, 1.5]]), "outside"),
    (np.array([0.2, 0.3]), "2-D"),
])
def test_predict_labels_refuses_bad_scores(scores, message):
    with pytest.raises(InputError, match=message):
        predict_labels(scores, task="multilabel")


def test_predict_labels_refuses_thresholds_for_multiclass_and_unknown_tasks():
    with pytest.raises(InputError, match="task='multilabel' only"):
        predict_labels(np.array([[0.5, 0.5]]), task="multiclass", thresholds=np.array([0.5, 0.5]))
    with pytest.raises(InputError, match="not a valid task"):
        predict_labels(np.array([[0.5]]), task="binary")
    with pytest.raises(InputError, match="thresholds has shape"):
        predict_labels(np.array([[0.5, 0.5]]), task="multilabel", thresholds=np.array([0.5]))


@pytest.mark.parametrize("y_pred, message", [
    (np.array([[1, 0], [2, 1], [0, 0], [1, 0], [1, 0]]),
     r"y_pred must hold only 0 and 1 but has 2 at \(row, column\) \(1, 0\)"),
    (np.array([[1, 0], [1, 1]]), "y_pred has 2 rows but the other arrays have 5"),
    (np.array([[1], [0], [0], [1], [1]]), "y_pred has 1 columns but y_true has 2"),
    (np.full((5, 2), np.nan), "y_pred must hold only 0 and 1"),
])
def test_bad_labels_name_the_argument(y_pred, message):
    with pytest.raises(InputError, match=message):
        false_positive_rate(Y_TRUE, y_pred)


@pytest.mark.parametrize("weight, message", [
    (np.ones(4), r"sample_weight has shape \(4,\)"),
    (np.array([1, 1, -1, 1, 1]), "negative"),
    (np.array([1, 1, np.nan, 1, 1]), "NaN"),
])
def test_bad_sample_weight_is_refused(weight, message):
    with pytest.raises(InputError, match=message):
        false_negative_rate(Y_TRUE, Y_PRED, sample_weight=weight)
