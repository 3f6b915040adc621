"""Linear CKA and SVCCA: hand-computed case and their defining properties."""

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.metrics import linear_cka, svcca

RNG = np.random.default_rng(0)
X = RNG.normal(size=(200, 6)) @ RNG.normal(size=(6, 8))            # rank 6 in 8 features
Y = np.tanh(X[:, :5] + 0.5 * RNG.normal(size=(200, 5)))             # a related representation, width 5


def rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_cka_hand_computed_3x2():
    # columns already centred. XᵀX = [[2, -1], [-1, 2]], YᵀY = [[2, 1], [1, 2]]: Frobenius norms sqrt(10) each
    # YᵀX = [[1, 1], [2, -1]]: squared Frobenius 1 + 1 + 4 + 1 = 7 -> CKA = 7 / (sqrt(10) sqrt(10)) = 0.7
    x = np.array([[1.0, 0], [-1, 1], [0, -1]])
    y = np.array([[1.0, 1], [0, -1], [-1, 0]])
    assert linear_cka(x, y) == pytest.approx(0.7)
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(0.7)          # column offsets are centred away


@pytest.mark.parametrize("measure", [linear_cka, svcca])
def test_identical_representations_give_one(measure):
    assert measure(X, X) == pytest.approx(1.0)


@pytest.mark.parametrize("measure", [linear_cka, svcca])
def test_invariant_to_orthogonal_rotation_and_isotropic_scaling(measure):
    reference = measure(X, Y)
    assert 0.05 < reference < 0.999                                   # a case that could move
    assert measure(X @ rotation(8, 1), Y) == pytest.approx(reference, rel=1e-9)
    assert measure(X, 3.0 * Y @ rotation(5, 2)) == pytest.approx(reference, rel=1e-9)
    assert measure(X @ rotation(8, 3), X) == pytest.approx(1.0)


@pytest.mark.parametrize("measure, bound", [(linear_cka, 0.02), (svcca, 0.15)])
def test_independent_noise_is_near_zero(measure, bound):
    # n = 2000, widths 10 and 12. Linear CKA of independent Gaussians is about sqrt(10 * 12) / n = 0.0055
    # (measured 0.0067 at most over 50 seeds): bound 0.02. SVCCA's canonical correlations of independent
    # subspaces spread up to about (sqrt(10) + sqrt(12)) / sqrt(n) = 0.15 (mean measured 0.068-0.077): bound 0.15.
    rng = np.random.default_rng(7)
    assert measure(rng.normal(size=(2000, 10)), rng.normal(size=(2000, 12))) < bound


def test_cka_gram_and_feature_paths_agree():
    rng = np.random.default_rng(3)
    wide_x, wide_y = rng.normal(size=(6, 40)), rng.normal(size=(6, 30))    # n < width: Gram path
    xc, yc = wide_x - wide_x.mean(0), wide_y - wide_y.mean(0)
    expected = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(wide_x, wide_y) == pytest.approx(expected)


def test_svcca_keeps_99_percent_of_the_variance():
    # x has variances about 100, 9 and 0.01 along its axes: 100/109.01 = 91.7 % < 99 % <= 109/109.01,
    # so SVCCA keeps the first two directions; y = the third axis (dropped) is uncorrelated with them
    rng = np.random.default_rng(4)
    z = rng.normal(size=(500, 3))
    x = z * np.array([10.0, 3.0, 0.1])
    assert svcca(x, z[:, 1:2]) == pytest.approx(1.0)
    assert svcca(x, z[:, 2:]) < 0.1
    assert svcca(x, z[:, 2:], keep=1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("measure", [linear_cka, svcca])
def test_constant_representation_is_nan(measure):
    assert np.isnan(measure(np.ones((5, 3)), X[:5]))
    assert np.isnan(measure(X[:1], Y[:1]))


@pytest.mark.parametrize("measure", [linear_cka, svcca])
def test_bad_inputs_are_input_errors(measure):
    with pytest.raises(InputError, match="x has 200 rows but y has 5"):
        measure(X, Y[:5])
    with pytest.raises(InputError, match="NaN or infinite"):
        measure(np.full((3, 2), np.nan), X[:3])
    with pytest.raises(InputError, match="must be a numeric \\(n_samples, n_features\\)"):
        measure(X[:, 0], Y)
