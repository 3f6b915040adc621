"""Label interrelation R²: hand-computed cases and scikit-learn's LinearRegression as reference."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from compress_gate.errors import InputError
from compress_gate.metrics import label_interrelation


def test_r2_by_hand_duplicate_and_orthogonal_columns():
    # a = b exactly -> each explains the other: R² = 1
    # c centred (.5, -.5, .5, -.5) is orthogonal to a, b centred (.5, .5, -.5, -.5) -> R² = 0
    y_pred = np.array([[1, 1, 1], [1, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert label_interrelation(y_pred) == pytest.approx([1.0, 1.0, 0.0], abs=1e-12)


def test_r2_by_hand_partial_fit():
    # x = (1, 1, 0, 0), y = (1, 0, 0, 0): correlation r = cov / sd sd = 0.125 / (0.5 * 0.433) = 1/sqrt(3)
    # with one regressor, R² = r² = 1/3 for both columns
    y_pred = np.array([[1, 1], [1, 0], [0, 0], [0, 0]])
    assert label_interrelation(y_pred) == pytest.approx([1 / 3, 1 / 3])


def test_r2_matches_scikit_learn_linear_regression():
    rng = np.random.default_rng(0)
    base = rng.random((300, 2)) < 0.5
    y_pred = np.column_stack([base, base[:, 0] ^ (rng.random(300) < 0.1), rng.random((300, 3)) < 0.3])
    expected = []
    for k in range(y_pred.shape[1]):
        others = np.delete(y_pred, k, axis=1).astype(float)
        expected.append(LinearRegression().fit(others, y_pred[:, k]).score(others, y_pred[:, k]))
    assert label_interrelation(y_pred) == pytest.approx(expected, abs=1e-9)


def test_r2_with_weights_equals_repeated_rows():
    rng = np.random.default_rng(1)
    y_pred = rng.random((40, 4)) < 0.4
    weights = rng.integers(0, 4, 40)
    assert label_interrelation(y_pred, sample_weight=weights) == \
        pytest.approx(label_interrelation(np.repeat(y_pred, weights, axis=0)), abs=1e-9)


def test_constant_predictions_have_no_r2():
    # column 1 is constant: nothing to explain (nan); as a regressor it explains nothing
    y_pred = np.array([[1, 1, 1], [0, 1, 0], [1, 1, 1], [0, 1, 1]])
    r2 = label_interrelation(y_pred)
    assert np.isnan(r2[1]) and not np.isnan(r2[[0, 2]]).any()


def test_single_attribute_has_zero_r2_and_no_samples_nan():
    assert label_interrelation(np.array([[1], [0], [1]])).tolist() == [0.0]
    assert np.isnan(label_interrelation(np.zeros((0, 2)))).all()


def test_resample_weights_are_refused():
    with pytest.raises(InputError, match="one weight per sample"):
        label_interrelation(np.eye(3), sample_weight=np.ones((2, 3)))
