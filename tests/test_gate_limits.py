"""Judging one limit on hand-made values: worst unit, bounds, zero baselines, fail closed."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.config.gate import Limit
from compress_gate.gate import relative_change
from compress_gate.gate._limits import UnitValues, judge_limit


def test_relative_change_defines_a_zero_baseline():
    student = np.array([0.3, 0.0, 0.2, 0.0, np.nan])
    teacher = np.array([0.2, 0.0, 0.0, 0.1, 0.1])
    # (0.3-0.2)/0.2 = 0.5; 0 -> 0 is no change; 0 -> 0.2 is +inf; 0.1 -> 0 is -1; nan stays nan
    out = relative_change(student, teacher)
    assert out[:4].tolist() == pytest.approx([0.5, 0.0, np.inf, -1.0])
    assert np.isnan(out[4])
    assert relative_change(np.array([-0.1]), np.array([0.0]))[0] == -np.inf
    assert relative_change(np.array([-0.3]), np.array([-0.2]))[0] == pytest.approx(-0.5)  # /|t|


def _ba(student, teacher, **kw) -> UnitValues:
    return UnitValues(units=("a/g", "b/g", "c/g"), student=np.array(student), teacher=np.array(teacher), **kw)


def test_worst_unit_of_an_absolute_change_point_bound():
    # increases: 0.01, 0.05, -0.02 -> worst (max) 0.05 at b/g
    limit = Limit(metric="ba", change="absolute", max=0.03, bound="point")
    entry = judge_limit(limit, _ba([0.11, 0.25, 0.0], [0.10, 0.20, 0.02]), confidence=0.95)
    assert entry["observed"] == pytest.approx(0.05) and entry["unit"] == "b/g"
    assert entry["gated"] == entry["observed"] and not entry["passed"]
    assert entry["reason"].startswith("point estimate 0.05 > 0.03 (worst (attribute, identity) pair b/g")
    ok = judge_limit(Limit(metric="ba", change="absolute", max=0.06, bound="point"),
                     _ba([0.11, 0.25, 0.0], [0.10, 0.20, 0.02]), confidence=0.95)
    assert ok["passed"] and ok["reason"].startswith("point estimate 0.05 <= 0.06")


def test_min_limit_takes_the_minimum_and_the_lower_bound():
    # accuracy change: -0.01 (one unit); resampled changes -0.04 .. 0.0 -> lower end near -0.04
    boot_s = np.linspace(0.86, 0.90, 101)[:, None]
    boot_t = np.full((101, 1), 0.90)
    measured = UnitValues(("model",), np.array([0.89]), teacher=np.array([0.90]), student_boot=boot_s,
                        teacher_boot=boot_t)
    entry = judge_limit(Limit(metric="accuracy", change="absolute", min=-0.03), measured, confidence=0.9)
    assert entry["bound"] == "lower" and entry["direction"] == "min"
    lo, hi = entry["ci"]
    assert lo == pytest.approx(-0.038, abs=1e-3) and hi == pytest.approx(-0.002, abs=1e-3)
    assert entry["gated"] == lo and not entry["passed"]
    assert "lower bound -0.038 < -0.03" in entry["reason"]


def test_interval_is_of_the_per_resample_worst_unit():
    # two units; per resample the max of (s - t) is unit-wise max -> [0.1, 0.3] for both resamples' sets
    boot_s = np.array([[0.1, 0.0], [0.0, 0.3], [0.2, 0.2]])
    boot_t = np.zeros((3, 2))
    measured = UnitValues(("x", "y"), np.array([0.1, 0.1]), teacher=np.zeros(2), student_boot=boot_s,
                        teacher_boot=boot_t)
    entry = judge_limit(Limit(metric="fnr", change="absolute", max=0.5), measured, confidence=0.5)
    # per-resample worst: 0.1, 0.3, 0.2 -> 25th..75th percentile: 0.15 .. 0.25
    assert entry["ci"] == pytest.approx([0.15, 0.25])
    assert entry["gated"] == pytest.approx(0.25) and entry["passed"]


def test_relative_change_from_zero_teacher_fails_a_max_limit():
    measured = UnitValues(("x", "y"), np.array([0.1, 0.05]), teacher=np.array([0.2, 0.0]))
    entry = judge_limit(Limit(metric="fnr", change="relative", max=10.0, bound="point"), measured,
                        confidence=0.95)
    assert entry["observed"] == np.inf and entry["unit"] == "y" and not entry["passed"]
    assert "point estimate +inf > 10" in entry["reason"]


def test_teacher_undefined_units_are_left_out_and_listed():
    measured = _ba([0.3, np.nan, 0.1], [0.25, np.nan, 0.1], not_measured={"b/g": "N_test(A=1, I=1) = 3 < 10"})
    entry = judge_limit(Limit(metric="ba", change="absolute", max=0.1, bound="point"), measured,
                        confidence=0.95)
    assert entry["passed"] and entry["excluded"] == ["b/g"]
    assert "1 (attribute, identity) pair(s) not measured (N_test(A=1, I=1) = 3 < 10)" in entry["reason"]


def test_student_undefined_where_teacher_defined_fails_closed():
    measured = _ba([0.3, np.nan, 0.1], [0.25, 0.2, 0.1])
    entry = judge_limit(Limit(metric="ba", change="absolute", max=1.0, bound="point"), measured,
                        confidence=0.95)
    assert not entry["passed"]
    assert entry["reason"].startswith("fails closed: the student ba is undefined for b/g where the "
                                      "teacher's is defined")


def test_nothing_left_to_measure_fails_closed():
    measured = _ba([np.nan] * 3, [np.nan] * 3)
    entry = judge_limit(Limit(metric="ba", change="absolute", max=1.0, bound="point"), measured,
                        confidence=0.95)
    assert not entry["passed"] and entry["reason"].startswith("fails closed: nothing left to measure")
    cev = UnitValues(("model",), np.array([np.nan]), undefined_reason="no attribute has a nonzero teacher "
                                                                    "FPR and FNR")
    entry = judge_limit(Limit(metric="cev", max=1.0, bound="point"), cev, confidence=0.95)
    assert not entry["passed"]
    assert entry["reason"] == ("fails closed: the value cev is undefined for model (no attribute has a "
                               "nonzero teacher FPR and FNR).")
    engines = UnitValues((), np.empty(0), undefined_reason="no engine comparison was run")
    entry = judge_limit(Limit(metric="engine_agreement", min=0.99), engines, confidence=0.95)
    assert not entry["passed"] and entry["reason"] == "fails closed: no engine comparison was run."


def test_undefined_bound_fails_closed_and_dropped_resamples_are_reported():
    # every resample undefined -> no interval -> an upper-bound limit cannot pass
    measured = UnitValues(("x",), np.array([0.1]), teacher=np.array([0.1]),
                        student_boot=np.full((4, 1), np.nan), teacher_boot=np.full((4, 1), 0.1))
    entry = judge_limit(Limit(metric="fnr", change="absolute", max=1.0), measured, confidence=0.95)
    assert entry["ci"] is None and not entry["passed"]
    assert entry["reason"].startswith("fails closed: the upper bound is undefined")
    partly = UnitValues(("x",), np.array([0.1]), teacher=np.array([0.1]),
                      student_boot=np.array([[0.1], [np.nan], [0.2], [0.1]]),
                      teacher_boot=np.full((4, 1), 0.1))
    entry = judge_limit(Limit(metric="fnr", change="absolute", max=1.0), partly, confidence=0.95)
    assert entry["passed"] and "1 of 4 resamples left nothing to measure and were dropped" in entry["reason"]
