"""Three outcomes for the run (pass / fail / not enough evidence) and honest mitigation: what the
default verdict judges. The per-limit decision rule: tests/test_gate_decision.py."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.config.gate import GateConfig, Limit, parse_gate_config
from compress_gate.data import EvalData
from compress_gate.errors import InputError
from compress_gate.gate import evaluate
from compress_gate.gate.evaluate import run_outcome
from compress_gate.report.junit import build_junit

def test_run_outcome():
    assert run_outcome([]) == "pass" and run_outcome(["pass", "pass"]) == "pass"
    assert run_outcome(["pass", "not_enough_evidence"]) == "not_enough_evidence"
    assert run_outcome(["not_enough_evidence", "fail", "pass"]) == "fail"


# --- evaluate: the default verdict does not depend on the overrides -------------------------------
# One attribute, one group. Test pattern (repeated 10 times):
#   row  y  g  teacher  student
#   0    1  1  .9       .9
#   1    1  1  .8       .8
#   2    1  0  .7       .3 (FN)
#   3    1  0  .4 (FN)  .6
#   4    0  1  .2       .7 (FP)
#   5    0  1  .6 (FP)  .7 (FP)
#   6    0  0  .1       .1
#   7    0  0  .3       .2
Y, G = [1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 1, 1, 0, 0]
TEACHER = [0.9, 0.8, 0.7, 0.4, 0.2, 0.6, 0.1, 0.3]
STUDENT = [0.9, 0.8, 0.3, 0.6, 0.7, 0.7, 0.1, 0.2]
TRAIN_Y, TRAIN_G = [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7, [1] * 10 + [0] * 10   # pos .6 > neg .3: g = 1


def _data(y, g, n_calib=4) -> EvalData:
    labels = np.array(TRAIN_Y + [1, 0] * (n_calib // 2) + y)[:, None].astype(np.uint8)
    groups = np.array(TRAIN_G + [1, 0] * (n_calib // 2) + g, dtype=bool)[:, None]
    split = np.array(["train"] * 20 + ["calib"] * n_calib + ["test"] * len(y))
    return EvalData(ids=np.array([f"r{i:03d}" for i in range(labels.shape[0])]), labels=labels, split=split,
                    groups=groups, group_names=("g",), attribute_names=("a",), task="multilabel")


def _scores(test, n_calib=4) -> np.ndarray:
    return np.array([0.8, 0.2] * (n_calib // 2) + test, dtype=np.float32)[:, None]


LIMITS = [{"metric": "accuracy", "change": "absolute", "min": -0.5, "bound": "point"},   # -.125, bound ~ -.25
          {"metric": "ba", "change": "absolute", "max": 0.1},      # point .05, CI about [-.06, .2]: undecided
          {"metric": "fnr", "change": "absolute", "max": 0.5},
          {"metric": "accuracy", "change": "absolute", "min": 0.0, "bound": "point", "name": "no drop"}]


def _judge(budget: float, judge: str = "thresholds"):
    config = GateConfig.model_validate({"n_resamples": 200, "judge": judge, "limits": LIMITS,
                                        "mitigation": {"override_budget": budget}})
    return evaluate(_data(Y * 10, G * 10), _scores(TEACHER * 10), [_scores(STUDENT * 10)], config)


def test_default_verdict_is_the_same_whatever_the_override_budget():
    results = [_judge(budget) for budget in (0.0, 0.1, 0.25)]
    judged = [[(e.observed, e.ci, e.outcome) for e in r.report.limits] for r in results]
    assert judged[0] == judged[1] == judged[2]
    assert len({r.report.verdict for r in results}) == 1 and len({r.passed for r in results}) == 1
    assert [len(r.overrides) for r in results] == [0, 8, 20]          # the bundle changes, not the verdict
    # the accuracy limit judges the student without overrides: 5/8 - 6/8 = -.125
    assert results[2].report.limits[0].observed == pytest.approx(-0.125)
    assert "no human label of a judged row enters" in results[2].report.scope


def test_catalogue_judges_the_overrides_and_reports_the_rows_without_one():
    # budget .25 -> 20 overrides: the ten .4 rows (pattern 3) and ten .6 rows (pattern 5, label 0),
    # fixing the student's FP on pattern row 5: accuracy (5 + 1)/8 = .75, change .75 - .75 = 0
    result = _judge(0.25, judge="catalogue")
    assert result.report.judged == "catalogue"
    assert result.report.limits[0].observed == pytest.approx(0.0)
    uncovered = result.report.mitigation.uncovered
    # rows without an override: patterns 0, 1, 2, 4, 6, 7 (60 rows). Student wrong on 2 (FN) and 4 (FP):
    # 4/6; teacher right on all six. BA (g = 1): student predicts 0, 1, 4 -> 30/30 in g, labels
    # 20/30 in g -> 1/3; teacher predicts 0, 1, 2 -> 20/30 - 20/30 = 0. Increase 1/3.
    assert uncovered.n_rows == 60
    assert uncovered.accuracy == pytest.approx(4 / 6) and uncovered.teacher_accuracy == pytest.approx(1.0)
    assert uncovered.ba.increase["a"]["g"] == pytest.approx(1 / 3)
    scope = result.report.scope
    assert scope.startswith("The verdict holds for the ids in overrides.json only (judge: catalogue): 20 of "
                            "the 80 judged test rows")
    assert "On the 60 rows without an override: accuracy 0.6667 (teacher 1)" in scope
    assert b'name="scope"' in build_junit(result.report) and b"overrides.json only" in build_junit(result.report)


def test_catalogue_scope_with_every_row_overridden_says_so_without_nan():
    # budget 1: all 80 test rows carry an override, so no row is left to measure (accuracy undefined)
    result = _judge(1.0, judge="catalogue")
    assert result.report.mitigation.uncovered.n_rows == 0
    scope = result.report.scope
    assert "80 of the 80 judged test rows" in scope and "Every judged test row carries one" in scope
    assert "nan" not in scope.lower()


def test_the_removed_judge_value_says_what_to_use():
    with pytest.raises(InputError, match="`judge: mitigated` was removed.*`judge: thresholds`.*`judge: catalogue`"):
        parse_gate_config({"judge": "mitigated"}, source="limits.yaml")


def test_junit_marks_undecided_limits_with_their_own_failure_type():
    import xml.etree.ElementTree as ET

    result = _judge(0.0)
    report = result.report
    undecided = [e.name for e in report.limits if e.outcome == "not_enough_evidence"]
    failed = [e.name for e in report.limits if e.outcome == "fail"]
    root = ET.fromstring(build_junit(report))
    types = {c.get("name"): c.find("failure").get("type") for c in root.iter("testcase")
             if c.find("failure") is not None}
    assert types == {**{n: "GateNotEnoughEvidence" for n in undecided}, **{n: "GateLimitExceeded" for n in failed}}
    assert undecided == ["ba absolute change <= 0.1 (upper)"] and failed == ["no drop"]
    assert report.outcome == "fail" and report.verdict == "fail"


# --- overrides of the teacher's most uncertain samples lower BA (Iofinova et al., Fig. 6) ---------
def test_overrides_of_uncertain_samples_lower_bias_amplification():
    # 40 test rows. In the group (g = 1, the training direction): 10 positives (all sure), 10
    # negatives of which 5 are uncertain (teacher .45) and the student calls them positive (FP).
    # Out of the group: 10 positives of which 5 are uncertain (teacher .55, two of them .45 -> the
    # teacher's own FNs) and the student misses them (FN); 10 sure negatives.
    #   student predicts 15 in g, 5 out -> 15/20 - 10/20 = .25;   teacher: 10/18 - 1/2 = .0556 > 0
    # budget .25 -> round(.25 * 40) = 10 overrides: exactly the 10 uncertain rows, set to the human
    # labels -> the student predicts 10 in g, 10 out -> BA 0 (< .25): the overrides lower BA.
    y = [1] * 10 + [0] * 10 + [1] * 10 + [0] * 10
    g = [1] * 20 + [0] * 20
    teacher = [0.9] * 10 + [0.1] * 5 + [0.45] * 5 + [0.9] * 5 + [0.55] * 3 + [0.45] * 2 + [0.1] * 10
    student = [0.9] * 10 + [0.1] * 5 + [0.7] * 5 + [0.9] * 5 + [0.3] * 5 + [0.1] * 10
    config = GateConfig.model_validate({"n_resamples": 0, "mitigation": {"override_budget": 0.25}})
    result = evaluate(_data(y, g), _scores(teacher), [_scores(student)], config)
    ba = result.report.metrics.ba
    assert ba.teacher["a"]["g"] == pytest.approx(10 / 18 - 0.5)
    assert ba.student["a"]["g"] == pytest.approx(0.25)
    after = result.report.mitigation.after.ba
    assert after.student["a"]["g"] == pytest.approx(0.0)
    assert after.increase["a"]["g"] < ba.increase["a"]["g"]
    assert len(result.overrides) == 10


def test_a_run_with_only_undecided_limits_is_refused_for_lack_of_evidence(tmp_path):
    from compress_gate.pipeline.gate import summary_lines

    result = _judge(0.0)
    limits = [e for e in result.report.limits if e.name != "no drop"]
    report = result.report.model_copy(update={"limits": limits, "outcome": run_outcome([e.outcome for e in limits])})
    assert report.outcome == "not_enough_evidence"
    lines = summary_lines(report, {})
    assert lines[0].startswith("gate REFUSED (not enough evidence): 2 of 3 limits hold")
    assert any(line.startswith("  UNDECIDED ba absolute change <= 0.1 (upper): not enough evidence") for line in lines)
