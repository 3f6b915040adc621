"""Score intervals from counts: Wilson and Tango's paired score, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from compress_gate.metrics.intervals import (normal_quantile, normal_sf, paired_difference_bounds,
                                             paired_difference_z, wilson_bounds, wilson_z)

Z = normal_quantile(0.975)          # 1.959963984540054
Z2 = Z * Z


def test_normal_helpers():
    assert Z == pytest.approx(1.959963984540054, abs=1e-12)
    assert normal_sf(np.array([0.0, Z, -np.inf, np.inf])).tolist() == pytest.approx([0.5, 0.025, 1.0, 0.0])


def test_wilson_hand_computed_edges():
    # 0 events of n: (0, z²/(n + z²)); all events: (n/(n + z²), 1); one member, 0 events: z²/(1 + z²)
    lo, hi = wilson_bounds(np.array([0, 10, 0, 1]), np.array([10, 10, 1, 1]), 0.025)
    assert lo.tolist() == pytest.approx([0.0, 10 / (10 + Z2), 0.0, 1 / (1 + Z2)])
    assert hi.tolist() == pytest.approx([Z2 / (10 + Z2), 1.0, Z2 / (1 + Z2), 1.0])
    assert hi[2] == pytest.approx(0.793451, abs=1e-6)                 # never a zero-width interval


def test_wilson_interior_hand_computed():
    # x = 5, n = 10, p = .5: center .5, half = z sqrt(.025 + z²/400) / (1 + z²/10)
    half = Z * math.sqrt(0.025 + Z2 / 400) / (1 + Z2 / 10)
    lo, hi = wilson_bounds(5, 10, 0.025)
    assert (float(lo), float(hi)) == pytest.approx((0.5 - half, 0.5 + half))
    # the bound is the score test's boundary: z(bound) = -+ z_{1-alpha}
    assert float(wilson_z(5, 10, float(hi))) == pytest.approx(-Z)
    assert float(wilson_z(5, 10, float(lo))) == pytest.approx(Z)
    assert float(wilson_z(3, 10, 0.5)) == pytest.approx((3 - 5) / math.sqrt(2.5))


def test_wilson_no_members_is_nan():
    lo, hi = wilson_bounds(0, 0, 0.025)
    assert np.isnan(lo) and np.isnan(hi) and np.isnan(wilson_z(0, 0, 0.5))


def test_wilson_z_at_the_edges_of_the_unit_interval():
    # H0 rate 0: any event is infinitely far; none is on it
    assert wilson_z(np.array([0, 2]), np.array([5, 5]), 0.0).tolist() == [0.0, np.inf]


def test_tango_no_discordant_pair_hand_computed():
    # b = c = 0: z(d) = -sqrt(n d/(1 - d)) for d > 0, so the bounds are -+ z²/(n + z²)
    lo, hi = paired_difference_bounds(0, 0, 100, 0.025)
    assert (float(lo), float(hi)) == pytest.approx((-Z2 / (100 + Z2), Z2 / (100 + Z2)), abs=1e-12)
    assert float(hi) == pytest.approx(0.036993, abs=1e-6)


def test_tango_one_member_and_all_events_hand_computed():
    # b = n, c = 0: q~ = (1 - d)/2, variance n (1 - d²), z = sqrt(n (1 - d)/(1 + d)):
    # lower = (n - z²)/(n + z²), upper = 1
    lo, hi = paired_difference_bounds(np.array([1, 10]), np.array([0, 0]), np.array([1, 10]), 0.025)
    assert lo.tolist() == pytest.approx([(1 - Z2) / (1 + Z2), (10 - Z2) / (10 + Z2)], abs=1e-12)
    assert hi.tolist() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert lo[0] == pytest.approx(-0.586901, abs=1e-6)
    # mirrored: only the teacher has the event
    lo, hi = paired_difference_bounds(0, 10, 10, 0.025)
    assert (float(lo), float(hi)) == pytest.approx((-1.0, -(10 - Z2) / (10 + Z2)), abs=1e-12)


def test_tango_at_zero_is_mcnemar_and_the_bounds_invert_the_test():
    # at d = 0 Tango's statistic is McNemar's (b - c)/sqrt(b + c): (3 - 1)/2 = 1
    assert float(paired_difference_z(3, 1, 20, 0.0)) == pytest.approx(1.0)
    lo, hi = paired_difference_bounds(3, 1, 20, 0.025)
    assert float(paired_difference_z(3, 1, 20, float(lo))) == pytest.approx(Z, abs=1e-9)
    assert float(paired_difference_z(3, 1, 20, float(hi))) == pytest.approx(-Z, abs=1e-9)
    assert float(lo) < 0.1 < float(hi)                                # the point (3 - 1)/20 inside


def test_tango_constrained_estimate_maximizes_the_likelihood():
    # q~ solves 2n q² + W q - c d (1 - d) = 0; check against a grid search of the multinomial likelihood
    b, c, n, d = 7.0, 3.0, 40.0, 0.05
    w = -b - c + (2 * n - b + c) * d
    q = (math.sqrt(w * w + 8 * n * c * d * (1 - d)) - w) / (4 * n)
    grid = np.linspace(1e-6, (1 - d) / 2 - 1e-6, 200_001)
    loglik = b * np.log(grid + d) + c * np.log(grid) + (n - b - c) * np.log(1 - 2 * grid - d)
    assert q == pytest.approx(grid[np.argmax(loglik)], abs=1e-5)
    expected = (b - c - n * d) / math.sqrt(n * (2 * q + d * (1 - d)))
    assert float(paired_difference_z(b, c, n, d)) == pytest.approx(expected)


def test_tango_no_pairs_is_nan_and_arrays_broadcast():
    lo, hi = paired_difference_bounds(np.array([0, 2]), np.array([0, 1]), np.array([0, 30]), 0.025)
    assert np.isnan(lo[0]) and np.isnan(hi[0]) and lo[1] < 1 / 30 < hi[1]
