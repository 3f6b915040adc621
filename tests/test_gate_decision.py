"""The decision rule of one limit (docs/gate.md, "Decisions"), on hand-made units: intersection-union
pass, Holm and max-T fails, not enough evidence with the rows a power calculation asks for, ties with
the limit, degenerate and small units, and the typed result."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from compress_gate.config.gate import Limit
from compress_gate.gate import relative_change
from compress_gate.gate._decision import UnitEvidence, decide
from compress_gate.gate._judge import judge_limit
from compress_gate.gate._limits import UnitValues
from compress_gate.gate._paired import RateCounts
from compress_gate.metrics.intervals import normal_quantile, paired_difference_z
from compress_gate.report.schema import LimitResult

Z = normal_quantile(0.975)
Z2 = Z * Z
FNR_MAX = Limit(metric="fnr", change="absolute", max=0.1)


def test_relative_change_defines_a_zero_baseline():
    student = np.array([0.3, 0.0, 0.2, 0.0, np.nan])
    teacher = np.array([0.2, 0.0, 0.0, 0.1, 0.1])
    # (0.3-0.2)/0.2 = 0.5; 0 -> 0 is no change; 0 -> 0.2 is +inf; 0.1 -> 0 is -1; nan stays nan
    out = relative_change(student, teacher)
    assert out[:4].tolist() == pytest.approx([0.5, 0.0, np.inf, -1.0])
    assert np.isnan(out[4])
    assert relative_change(np.array([-0.3]), np.array([-0.2]))[0] == pytest.approx(-0.5)  # /|t|


def _rates(n, b, c, teacher=None, units=None) -> UnitValues:
    n, b, c = (np.asarray(v, dtype=float) for v in (n, b, c))
    t = np.zeros_like(n) if teacher is None else np.asarray(teacher, dtype=float)
    units = units or tuple(f"u{i}" for i in range(len(n)))
    return UnitValues(units, (t + b - c) / n, teacher=t / n, rates=RateCounts(n, t + b - c, t, b, c),
                    members=n * 2, positives=n)


def test_pass_needs_every_unit_bound_inside_intersection_union():
    # no discordant pair: upper bound z²/(n + z²): n = 100 -> .0370 <= .1; n = 10 -> .2776 > .1
    result = judge_limit(FNR_MAX, _rates([100, 100], [0, 0], [0, 0]), confidence=0.95, n_samples=1000)
    assert isinstance(result, LimitResult) and result.outcome == "pass" and result.passed
    assert result.gated == pytest.approx(Z2 / (100 + Z2)) and result.alpha == pytest.approx(0.025)
    undecided = judge_limit(FNR_MAX, _rates([100, 10], [0, 0], [0, 0]), confidence=0.95, n_samples=1000)
    assert undecided.outcome == "not_enough_evidence" and undecided.unit == "u1"
    assert undecided.gated == pytest.approx(Z2 / (10 + Z2))
    assert [u.outcome for u in undecided.units] == ["pass", "undecided"]
    assert [(u.members, u.positives, u.trials, u.method) for u in undecided.units] == \
        [(200, 100, 100, "tango"), (20, 10, 10, "tango")]


def test_one_member_is_never_passed():
    # a group of 1 member with FNR 0 for both models: the bound z²/(1 + z²) = .79 decides nothing
    result = judge_limit(FNR_MAX, _rates([1], [0], [0]), confidence=0.95, n_samples=100)
    assert result.outcome == "not_enough_evidence" and result.gated == pytest.approx(Z2 / (1 + Z2))


def test_fail_is_holm_over_units_and_limits():
    # u0: b = 12, c = 0 of 100 -> change .12 over .1 by a little; its p-value is Tango's score test at .1
    p = float(1 - 0.5 * math.erfc(-float(paired_difference_z(12, 0, 100, 0.1)) / math.sqrt(2)))
    measured = _rates([100, 100], [40, 12], [0, 0])
    strong = judge_limit(FNR_MAX, measured, confidence=0.95)
    assert strong.outcome == "fail" and strong.unit == "u0" and strong.holm_level == pytest.approx(0.025)
    assert [u.outcome for u in strong.units][0] == "fail"
    assert "outside by Holm's test at family level 0.025" in strong.reason
    weak = judge_limit(FNR_MAX, _rates([100], [12], [0]), confidence=0.95, n_limits=1)
    assert p > 0.025 and weak.outcome == "not_enough_evidence"          # .12 is not evidence against .1
    # Holm within a limit: the second unit is judged at alpha/(m - 1) after the first is rejected
    many = judge_limit(FNR_MAX, measured, confidence=0.95, n_limits=40)
    assert many.holm_level == pytest.approx(0.025 / 40)
    assert many.outcome == ("fail" if min(u.p_outside for u in many.units) <= 0.025 / 80 else "not_enough_evidence")


def test_bound_point_fails_on_any_point_outside_but_passes_only_on_bounds():
    limit = Limit(metric="fnr", change="absolute", max=0.1, bound="point")
    assert judge_limit(limit, _rates([100], [12], [0]), confidence=0.95).outcome == "fail"
    assert judge_limit(limit, _rates([10], [0], [0]), confidence=0.95).outcome == "not_enough_evidence"


def test_a_pass_never_holds_a_point_outside():
    # a contrived bound inside the limit while the point is outside: not a pass
    evidence = UnitEvidence(np.array([0.2]), np.array([0.0]), np.array([0.05]), np.array([0.5]), np.array([0.5]),
                            np.array([0.1]), ("bootstrap",), adjusted=True)
    assert decide(FNR_MAX, evidence, alpha=0.025).outcome == "not_enough_evidence"


def _boot(point: float, teacher: float, boot_student: np.ndarray, boot_teacher: float | None = None) -> UnitValues:
    teacher_boot = np.full_like(boot_student, teacher if boot_teacher is None else boot_teacher)
    return UnitValues(("model",), np.array([point]), teacher=np.array([teacher]), student_boot=boot_student,
                    teacher_boot=teacher_boot)


def test_a_float_tie_with_the_limit_is_not_outside_and_has_no_n_needed():
    # 0.83 - 0.85 = -0.020000000000000018: on the limit up to float noise
    boot = np.linspace(0.80, 0.86, 201)[:, None]
    limit = Limit(metric="accuracy", change="absolute", min=-0.02, bound="point")
    result = judge_limit(limit, _boot(0.83, 0.85, boot), confidence=0.95, n_samples=500)
    assert 0.83 - 0.85 < -0.02 and result.outcome == "not_enough_evidence" and result.n_needed is None
    assert "no estimate of the test rows" in result.reason
    default = judge_limit(Limit(metric="accuracy", change="absolute", min=-0.02), _boot(0.83, 0.85, boot),
                          confidence=0.95, n_samples=500)
    assert default.outcome == "not_enough_evidence" and default.n_needed is None


def test_a_degenerate_bootstrap_is_never_passed():
    # every resample gives the same change: zero width, no bound
    result = judge_limit(Limit(metric="ba", change="absolute", max=0.05), _boot(0.1, 0.1, np.full((200, 1), 0.1)),
                         confidence=0.95, n_samples=300)
    assert result.outcome == "not_enough_evidence" and result.ci is None and result.units[0].outcome == "degenerate"
    assert "never passed on a zero-width interval" in result.reason and result.n_needed is None


def test_max_t_adjusted_p_values_hand_computed():
    # two units, B = 4; se (ddof 1) of [0, 2, 4, 6] - 3 is sqrt(20/3) for both; t* rows: (-3, -1, 1, 3)/se,
    # and unit 2 mirrored. Per resample max_v t* = (3, 1, 1, 3)/se. Unit 1's t = (3 - 1)/se = 2/se:
    # 2 resamples have max >= 2/se -> p = (1 + 2)/(4 + 1) = .6; unit 2's t = (3 - 1)/se too.
    s = np.array([[0.0, 6.0], [2.0, 4.0], [4.0, 2.0], [6.0, 0.0]])
    measured = UnitValues(("a", "b"), np.array([3.0, 3.0]), teacher=np.zeros(2), student_boot=s,
                        teacher_boot=np.zeros_like(s))
    result = judge_limit(Limit(metric="ba", change="absolute", max=1.0), measured, confidence=0.5)
    assert [u.p_outside for u in result.units] == pytest.approx([0.6, 0.6])
    assert all(u.method == "bootstrap" for u in result.units)


def test_n_needed_is_a_power_calculation():
    # one bootstrap unit, point .04 under max .05: n_needed = n ((z_.975 + z_.8) se / .01)²
    boot = 0.04 + np.linspace(-0.03, 0.03, 401)[:, None]
    result = judge_limit(Limit(metric="ba", change="absolute", max=0.05), _boot(0.04, 0.0, boot, 0.0),
                         confidence=0.95, n_samples=200)
    se = float(np.std(boot, ddof=1))
    expected = math.ceil(round(200 * ((Z + normal_quantile(0.8)) * se / 0.01) ** 2, 6))
    assert result.outcome == "not_enough_evidence" and result.n_needed == expected and result.power == 0.8
    assert f"about {expected:,} test rows would decide it with power 0.8" in result.reason


def test_small_units_keep_a_limit_from_passing_with_their_own_reason():
    # BA not computed for every pair: fewer than 10 positives (too small, not "no positive prediction")
    why = "fewer than 10 positive test labels in the group"
    measured = UnitValues(("a/g", "b/g"), np.array([np.nan, np.nan]), teacher=np.array([np.nan, np.nan]),
                        not_measured={"a/g": why, "b/g": why}, undefined_reason="a model has no positive prediction")
    result = judge_limit(Limit(metric="ba", change="absolute", max=0.05), measured, confidence=0.95)
    assert result.outcome == "not_enough_evidence" and why in result.reason
    assert "no positive prediction" not in result.reason
    assert [u.outcome for u in result.units] == ["not_measured", "not_measured"]
    excluded = judge_limit(Limit(metric="ba", change="absolute", max=0.05, unmeasured="exclude"), measured,
                           confidence=0.95)
    assert excluded.outcome == "fail" and excluded.reason == f"fails closed: nothing left to measure ({why})."
    assert excluded.excluded == ["a/g", "b/g"]


def test_a_small_unit_beside_passing_units_is_not_enough_evidence():
    measured = _rates([100, 100, 1], [0, 0, 0], [0, 0, 0])
    measured = UnitValues(measured.units, np.array([0.0, 0.0, np.nan]), teacher=np.array([0.0, 0.0, np.nan]),
                        rates=measured.rates, not_measured={"u2": "fewer than 10 positive test labels in the group"})
    assert judge_limit(FNR_MAX, measured, confidence=0.95).outcome == "not_enough_evidence"
    limit = Limit(metric="fnr", change="absolute", max=0.1, unmeasured="exclude")
    assert judge_limit(limit, measured, confidence=0.95).outcome == "pass"


def test_student_undefined_where_teacher_defined_fails_closed():
    measured = UnitValues(("a/g", "b/g"), np.array([0.3, np.nan]), teacher=np.array([0.25, 0.2]))
    result = judge_limit(Limit(metric="ba", change="absolute", max=1.0), measured, confidence=0.95)
    assert result.outcome == "fail" and result.reason.startswith(
        "fails closed: the student ba is undefined for b/g where the teacher's is defined")


def test_numbers_without_sampling_error_decide_on_the_value():
    engines = UnitValues(("deepsparse",), np.array([0.97]))
    assert judge_limit(Limit(metric="engine_agreement", min=0.95), engines, confidence=0.95).outcome == "pass"
    assert judge_limit(Limit(metric="engine_agreement", min=0.99), engines, confidence=0.95).outcome == "fail"
    nothing = UnitValues((), np.empty(0), undefined_reason="no engine comparison was run")
    result = judge_limit(Limit(metric="engine_agreement", min=0.99), nothing, confidence=0.95)
    assert result.outcome == "fail" and result.reason == "fails closed: no engine comparison was run."


@pytest.mark.parametrize("limit", [{"metric": "accuracy", "change": "absolute", "min": -0.02, "bound": "upper"},
                                   {"metric": "ba", "change": "absolute", "max": 0.05, "bound": "lower"}])
def test_an_anti_conservative_bound_is_refused(limit):
    with pytest.raises(ValidationError, match="gates the optimistic end of the interval"):
        Limit(**limit)
