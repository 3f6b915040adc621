"""Uncertainty share and expected calibration error: hand-computed cases and edge cases."""

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.metrics import expected_calibration_error, uncertainty


def test_uncertainty_counts_scores_strictly_inside():
    # inside (0.1, 0.9): 0.5, 0.89, 0.100001; not 0.1, 0.9 (the ends) or 0.95 -> 3 / 6
    scores = np.array([[0.1], [0.5], [0.95], [0.89], [0.9], [0.100001]])
    assert uncertainty(scores) == pytest.approx([0.5])


def test_uncertainty_per_attribute_with_weights():
    scores = np.array([[0.5, 0.05], [0.95, 0.3], [0.2, 0.2]])
    # a0 inside: rows 0, 2 -> (2 + 0) / 3 with weights 2, 1, 0; a1 inside: rows 1, 2 -> 1 / 3
    assert uncertainty(scores, sample_weight=np.array([2, 1, 0])) == pytest.approx([2 / 3, 1 / 3])


def test_ece_by_hand_one_sample_per_bin():
    # bins 9, 1, 8, 0; |p - y| = 0.05, 0.15, 0.15, 0.05; each bin weighs 1/4 -> 0.4 / 4
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.95], [0.15], [0.85], [0.05]])
    assert expected_calibration_error(y, p) == pytest.approx([0.1])


def test_ece_by_hand_shared_bin_and_a_score_of_one():
    # 0.62 and 0.68 share bin 6: mean p 0.65, mean y 0.5 -> 0.15 * 2/3 = 0.1
    # p = 1.0 goes in bin 9 alone: |1.0 - 0| * 1/3 -> ECE = 0.1 + 1/3
    y = np.array([[1], [0], [0]])
    p = np.array([[0.62], [0.68], [1.0]])
    assert expected_calibration_error(y, p) == pytest.approx([0.1 + 1 / 3])


def test_ece_puts_a_score_of_one_in_the_top_bin():
    # p = 1.0 and 0.95 share bin 9: mean p 0.975, mean y 0.5 -> 0.475
    # (a bin of its own for p = 1, as the authors' code has it, would give 0.5 + 0.025 = 0.525)
    assert expected_calibration_error(np.array([[0], [1]]), np.array([[1.0], [0.95]])) == pytest.approx([0.475])


def test_ece_bin_edges_floor_ten_p():
    # 0.3 -> bin 3 and 0.39 -> bin 3 (mean p 0.345, mean y 0.5 -> 0.155 * 2/3); 0.4 -> bin 4 alone (|0.4 - 0|)
    y = np.array([[1], [0], [0]])
    p = np.array([[0.3], [0.39], [0.4]])
    assert expected_calibration_error(y, p) == pytest.approx([0.155 * 2 / 3 + 0.4 / 3])


def test_ece_with_weights_is_weighted_bin_means():
    # bin 8: p 0.8 (w 3, y 1) and 0.8 (w 1, y 0): mean p 0.8, mean y 0.75, n_b / n = 1 -> 0.05
    y = np.array([[1], [0]])
    p = np.array([[0.8], [0.8]])
    assert expected_calibration_error(y, p, sample_weight=np.array([3, 1])) == pytest.approx([0.05])


def test_no_samples_give_nan():
    empty = np.zeros((0, 2))
    assert np.isnan(uncertainty(empty)).all()
    assert np.isnan(expected_calibration_error(empty, empty)).all()


@pytest.mark.parametrize("scores, message", [
    (np.array([[0.5], [np.nan]]), r"y_score has NaN or infinite scores at \(row, column\) \(1, 0\)"),
    (np.array([[0.5], [-0.1]]), "outside"),
])
def test_bad_scores_are_refused(scores, message):
    with pytest.raises(InputError, match=message):
        expected_calibration_error(np.array([[1], [0]]), scores)
    with pytest.raises(InputError, match=message):
        uncertainty(scores)


def test_ece_refuses_scores_of_another_shape():
    with pytest.raises(InputError, match="y_score has 2 columns but y_true has 1"):
        expected_calibration_error(np.array([[1], [0]]), np.array([[0.5, 0.5], [0.5, 0.5]]))


def test_sample_weight_is_keyword_only():
    # a positional third argument would be read as weights by mistake; the signature refuses it
    y, p, w = np.array([[1], [0]]), np.array([[0.8], [0.8]]), np.array([3, 1])
    with pytest.raises(TypeError):
        uncertainty(p, w)  # type: ignore[misc]
    with pytest.raises(TypeError):
        expected_calibration_error(y, p, w)  # type: ignore[misc]
