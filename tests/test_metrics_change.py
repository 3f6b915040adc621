"""Normalized change, CEV and SDE: hand-computed cases, the Hooker et al. arithmetic, properties."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from compress_gate.errors import InputError
from compress_gate.metrics import combined_error_variance, normalized_change, symmetric_distance_error


def test_hooker_table_5_normalized_differences():
    # Hooker et al., Table 5: baseline error 5.30 %, FPR 2.73 %, FNR 22.03 %; 95 % pruned 6.61, 3.08, 29.57.
    # (6.61 - 5.30) / 5.30 = 24.716..%, (3.08 - 2.73) / 2.73 = 12.820..%, (29.57 - 22.03) / 22.03 = 34.226..%
    change = normalized_change(teacher=np.array([5.30, 2.73, 22.03]), student=np.array([6.61, 3.08, 29.57]))
    assert np.round(change, 2).tolist() == [24.72, 12.82, 34.23]


def test_normalized_change_is_nan_for_a_zero_or_undefined_teacher_rate():
    change = normalized_change(teacher=np.array([0.02, 0.0, 0.0, np.nan, 0.1]),
                               student=np.array([0.03, 0.01, 0.0, 0.1, np.nan]))
    assert change[0] == pytest.approx(50.0)
    assert np.isnan(change[1:]).all()


def test_normalized_change_takes_teacher_and_student_by_keyword_only():
    # relative_change in gate/_limits.py takes (student, teacher): positional calls could swap them
    with pytest.raises(TypeError):
        normalized_change(np.array([0.1]), np.array([0.2]))  # type: ignore[misc]


def test_normalized_change_broadcasts_over_resamples():
    change = normalized_change(teacher=np.array([0.1, 0.2]), student=np.array([[0.1, 0.1], [0.2, 0.3]]))
    assert change == pytest.approx(np.array([[0.0, -50.0], [100.0, 50.0]]))


def test_cev_and_sde_by_hand():
    # δFPR = 10, 20, 30: mean 20, population variance (100 + 0 + 100) / 3 = 200/3
    # δFNR = 0, 0, 30: mean 10, population variance (100 + 100 + 400) / 3 = 200
    # CEV = (200/3 + 200) / 2 = 400/3; SDE = (|10| + |20| + |0|) / 3 / sqrt 2 = 10 / sqrt 2
    d_fpr, d_fnr = np.array([10.0, 20.0, 30.0]), np.array([0.0, 0.0, 30.0])
    assert combined_error_variance(d_fpr, d_fnr) == pytest.approx(400 / 3)
    assert symmetric_distance_error(d_fpr, d_fnr) == pytest.approx(10 / math.sqrt(2))


def test_cev_is_half_the_mean_squared_distance_to_the_centroid():
    # the authors' code: (1 / 2n) Σ ||δ_i - δ̄||², not (1 / n) Σ ||δ_i - δ̄||²
    d_fpr, d_fnr = np.array([0.0, 2.0]), np.array([1.0, 3.0])
    # centroid (1, 2); squared distances 2 and 2 -> (1 / 4) * 4 = 1
    assert combined_error_variance(d_fpr, d_fnr) == pytest.approx(1.0)


def test_attributes_with_an_undefined_delta_are_left_out():
    d_fpr = np.array([10.0, 20.0, 30.0, np.nan, 5.0])
    d_fnr = np.array([0.0, 0.0, 30.0, 1.0, np.inf])
    assert combined_error_variance(d_fpr, d_fnr) == pytest.approx(400 / 3)
    assert symmetric_distance_error(d_fpr, d_fnr) == pytest.approx(10 / math.sqrt(2))


def test_nothing_left_to_measure_is_nan():
    d = np.array([np.nan, np.nan])
    assert math.isnan(combined_error_variance(d, np.array([1.0, 2.0])))
    assert math.isnan(symmetric_distance_error(np.array([]), np.array([])))


def test_resample_rows_are_measured_separately():
    d_fpr = np.array([[10.0, 20.0, 30.0], [1.0, np.nan, 3.0]])
    d_fnr = np.array([[0.0, 0.0, 30.0], [1.0, 5.0, 3.0]])
    # row 1 keeps attributes 0 and 2: δFPR 1, 3 (variance 1), δFNR 1, 3 (variance 1) -> CEV 1, SDE 0
    assert combined_error_variance(d_fpr, d_fnr) == pytest.approx([400 / 3, 1.0])
    assert symmetric_distance_error(d_fpr, d_fnr) == pytest.approx([10 / math.sqrt(2), 0.0])


def test_mismatched_shapes_are_refused():
    with pytest.raises(InputError, match="same shape"):
        combined_error_variance(np.zeros(3), np.zeros(4))


FINITE = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
DELTAS = st.integers(1, 12).flatmap(lambda k: st.tuples(arrays(np.float64, k, elements=FINITE),
                                                        arrays(np.float64, k, elements=FINITE)))
RATES = st.integers(1, 12).flatmap(lambda k: arrays(np.float64, k, elements=st.floats(1e-3, 1.0)))


@settings(max_examples=60, deadline=None)
@given(RATES)
def test_identical_teacher_and_student_give_zero_cev_and_sde(rates):
    d = normalized_change(teacher=rates, student=rates.copy())
    assert combined_error_variance(d, d) == 0.0
    assert symmetric_distance_error(d, d) == 0.0


@settings(max_examples=60, deadline=None)
@given(DELTAS, FINITE, FINITE)
def test_cev_and_sde_ignore_a_constant_shift_of_every_delta(deltas, shift_fpr, shift_fnr):
    d_fpr, d_fnr = deltas
    scale = 1 + np.abs(np.concatenate([d_fpr, d_fnr])).max() + abs(shift_fpr) + abs(shift_fnr)
    cev = combined_error_variance(d_fpr + shift_fpr, d_fnr + shift_fnr)
    assert cev == pytest.approx(combined_error_variance(d_fpr, d_fnr), abs=1e-9 * scale**2)
    # SDE moves with the diagonal offset only when FPR and FNR shift differently: shift both alike
    sde = symmetric_distance_error(d_fpr + shift_fpr, d_fnr + shift_fpr)
    assert sde == pytest.approx(symmetric_distance_error(d_fpr, d_fnr), abs=1e-9 * scale)


@settings(max_examples=60, deadline=None)
@given(DELTAS)
def test_sde_is_zero_when_fpr_and_fnr_changed_alike(deltas):
    d, _ = deltas
    assert symmetric_distance_error(d, d.copy()) == 0.0
