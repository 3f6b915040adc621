"""``evaluate`` on hand-made data: every reported number against hand computation,
paired intervals, populations, mitigation, and the report's JSON safety."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress_gate.config.gate import GateConfig
from compress_gate.data import EvalData
from compress_gate.errors import InputError
from compress_gate.gate import evaluate
from compress_gate.pipeline.gate import write_gate_outputs
from compress_gate.mitigation import calibrate_thresholds, read_overrides, read_thresholds

# One attribute "a", one group "g". Test pattern (repeated 10 times, so BA has >= 10
# positives in and out of the group):
#   row  y  g  teacher  student  student2
#   0    1  1  .9       .9       .9
#   1    1  1  .8       .8       .8
#   2    1  0  .7       .3 (FN)  .3 (FN)
#   3    1  0  .4 (FN)  .6       .4 (FN)
#   4    0  1  .2       .7 (FP)  .2
#   5    0  1  .6 (FP)  .7 (FP)  .6 (FP)
#   6    0  0  .1       .1       .1
#   7    0  0  .3       .2       .3
Y = [1, 1, 1, 1, 0, 0, 0, 0]
G = [1, 1, 0, 0, 1, 1, 0, 0]
TEACHER = [0.9, 0.8, 0.7, 0.4, 0.2, 0.6, 0.1, 0.3]
STUDENT = [0.9, 0.8, 0.3, 0.6, 0.7, 0.7, 0.1, 0.2]
STUDENT2 = [0.9, 0.8, 0.3, 0.4, 0.2, 0.6, 0.1, 0.3]
REPEAT = 10
# Training rows: 10 in the group with 6 positives (pos = .6), 10 outside with 3 (neg = .3):
# g = 1 (the group side), training mean 9/20 = .45 < .5 (TCB counts predicted positives).
TRAIN_Y = [1] * 6 + [0] * 4 + [1] * 3 + [0] * 7
TRAIN_G = [1] * 10 + [0] * 10
# Calib rows: 4, two positives.
CALIB_Y = [1, 0, 1, 0]
CALIB_G = [1, 1, 0, 0]
CALIB_SCORE = [0.8, 0.7, 0.6, 0.2]


def _data(task: str = "multilabel") -> EvalData:
    y = np.array(TRAIN_Y + CALIB_Y + Y * REPEAT)
    g = np.array(TRAIN_G + CALIB_G + G * REPEAT, dtype=bool)[:, None]
    split = np.array(["train"] * 20 + ["calib"] * 4 + ["test"] * 8 * REPEAT)
    ids = np.array([f"r{i:03d}" for i in range(y.size)])
    if task == "multiclass":
        labels = np.stack([1 - y, y], axis=1).astype(np.uint8)
        return EvalData(ids=ids, labels=labels, split=split, groups=g, group_names=("g",),
                        attribute_names=("no", "a"), task="multiclass")
    return EvalData(ids=ids, labels=y[:, None].astype(np.uint8), split=split, groups=g, group_names=("g",),
                    attribute_names=("a",), task="multilabel")


def _scores(test_scores: list[float], task: str = "multilabel") -> np.ndarray:
    s = np.array(CALIB_SCORE + test_scores * REPEAT, dtype=np.float32)[:, None]
    return np.concatenate([1 - s, s], axis=1) if task == "multiclass" else s


def _config(**kw) -> GateConfig:
    return GateConfig.model_validate({"n_resamples": 200, **kw})


def test_every_number_matches_hand_computation():
    report = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], _config()).report.to_json()
    m = report["metrics"]
    # accuracy: teacher wrong on rows 3, 5 -> 6/8; student wrong on 2, 4, 5 -> 5/8
    assert m["teacher"]["accuracy"] == pytest.approx(0.75)
    assert m["student"]["accuracy"] == pytest.approx(0.625)
    t, s = m["teacher"]["per_attribute"]["a"], m["student"]["per_attribute"]["a"]
    # FPR: negatives 4..7; teacher FP row 5 -> 1/4; student rows 4, 5 -> 2/4
    # FNR: positives 0..3; teacher FN row 3 -> 1/4; student row 2 -> 1/4
    assert (t["fpr"], t["fnr"], s["fpr"], s["fnr"]) == pytest.approx((0.25, 0.25, 0.5, 0.25))
    # TCB (training mean .45 <= .5): N(pred 1)/N(true 1): teacher 4/4, student 5/4
    assert (t["tcb"], s["tcb"]) == pytest.approx((1.0, 1.25))
    # uncertainty: teacher scores inside (.1, .9): .8 .7 .4 .2 .6 .3 -> 6/8
    assert t["uncertainty"] == pytest.approx(0.75)
    # normalized change: dFPR = 100 (0.5 - 0.25) / 0.25 = 100; dFNR = 0
    assert m["delta"]["fpr"]["a"] == pytest.approx(100.0) and m["delta"]["fnr"]["a"] == pytest.approx(0.0)
    # one attribute: CEV = (Var 100 + Var 0) / 2 = 0; SDE = |100 - 0| / sqrt 2
    assert m["cev"]["value"] == pytest.approx(0.0) and m["cev"]["excluded"] == []
    assert m["sde"]["value"] == pytest.approx(100 / np.sqrt(2))
    # BA (g = 1): teacher predicts rows 0,1,2,5 -> 3 of 4 in the group; true 2 of 4
    #   BA_t = 3/4 - 2/4 = .25; student predicts 0,1,3,4,5 -> 4 of 5: BA_s = 4/5 - 1/2 = .3
    assert m["ba"]["teacher"]["a"]["g"] == pytest.approx(0.25)
    assert m["ba"]["student"]["a"]["g"] == pytest.approx(0.3)
    assert m["ba"]["increase"]["a"]["g"] == pytest.approx(0.05)
    rows = {row["name"]: row for row in m["subgroups"]}
    # group g (rows 0, 1, 4, 5): 2 negatives; teacher FP 1 -> .5, student FP 2 -> 1.0: +100 %
    assert rows["g"]["size"] == 4 * REPEAT
    assert (rows["g"]["teacher"]["fpr"], rows["g"]["student"]["fpr"]) == pytest.approx((0.5, 1.0))
    assert rows["g"]["normalized_difference"]["fpr"] == pytest.approx(100.0)
    # no FN in the group for either model: the normalized difference from 0 is undefined (null)
    assert rows["g"]["teacher"]["fnr"] == 0.0 and rows["g"]["normalized_difference"]["fnr"] is None
    assert sum(m["uncertainty_histogram"]["teacher"]) == 8 * REPEAT
    # modal CIEs: rows where the labels differ: 2, 3, 4 -> 3 of 8
    assert m["cie"]["count"] == 3 * REPEAT and m["cie"]["share"] == pytest.approx(3 / 8)
    assert report["mitigation"] is None and report["no_limits"] is True and report["verdict"] == "pass"
    json.dumps(report, allow_nan=False)


def test_limits_on_hand_computed_values_point_bound():
    # `bound: point` fails on a point outside; a point inside passes only when its bound is inside too,
    # which 8 rows never give (the old rule passed these on the point estimate, with n_resamples 0)
    config = _config(limits=[
        {"metric": "ba", "change": "absolute", "max": 0.04, "bound": "point"},      # 0.05 > 0.04
        {"metric": "accuracy", "change": "absolute", "min": -0.2, "bound": "point"},  # -0.125 >= -0.2
        {"metric": "fpr", "change": "relative", "max": 1.0, "bound": "point"},         # +100 % = 1.0 <= 1
        {"metric": "tcb", "min": 1.3, "bound": "point"},                               # 1.25 < 1.3
        {"metric": "sde", "max": 71.0, "bound": "point"},                              # 70.71 <= 71
    ])
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], config)
    observed = [(e["observed"], e["outcome"]) for e in result.report.to_json()["limits"]]
    assert observed == [(pytest.approx(0.05), "fail"), (pytest.approx(-0.125), "not_enough_evidence"),
                        (pytest.approx(1.0), "not_enough_evidence"), (pytest.approx(1.25), "fail"),
                        (pytest.approx(100 / np.sqrt(2)), "not_enough_evidence")]
    assert not result.passed and result.report.to_json()["verdict"] == "fail"


def test_identical_models_are_never_passed_on_zero_width_intervals():
    # the student is the teacher: every resample gives change 0 (degenerate: no bound), and the paired
    # score bound of the accuracy change with no discordant row is -z²/(n + z²) < 0: nothing passes
    config = _config(limits=[{"metric": "ba", "change": "absolute", "max": 0.0},
                             {"metric": "accuracy", "change": "absolute", "min": 0.0},
                             {"metric": "fnr", "change": "relative", "max": 0.0}])
    result = evaluate(_data(), _scores(TEACHER), [_scores(TEACHER)], config)
    ba, accuracy, fnr = result.report.to_json()["limits"]
    for entry in (ba, fnr):
        assert entry["ci"] is None and entry["outcome"] == "not_enough_evidence", entry
        assert {u["outcome"] for u in entry["units"]} == {"degenerate"} and "degenerate bootstrap" in entry["reason"]
    n = accuracy["units"][0]["trials"]
    z2 = 1.959963984540054 ** 2
    assert accuracy["units"][0]["method"] == "tango" and accuracy["gated"] == pytest.approx(-z2 / (n + z2))
    assert accuracy["outcome"] == "not_enough_evidence" and not result.passed
    # no limit gates CEV: a point value, and the report says so
    assert result.report.to_json()["metrics"]["cev"]["ci"] is None
    assert "cev" in result.report.estimates.point_only and "accuracy" in result.report.estimates.intervals


def test_intervals_are_seeded():
    def ci(seed):              # a relative change is bounded by the (seeded) bootstrap
        config = _config(seed=seed, limits=[{"metric": "accuracy", "change": "relative", "min": -1.0}])
        return evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], config).report.to_json()["limits"][0]
    assert ci(0)["ci"] == ci(0)["ci"]
    assert ci(0)["ci"] != ci(1)["ci"]
    lo, hi = ci(0)["ci"]
    assert lo <= ci(0)["observed"] <= hi


def test_population_rates_are_averaged_first():
    # student FNR 1/4, student2 FNR 2/4 -> population 3/8; dFNR = 100 (3/8 - 1/4) / (1/4) = 50
    report = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT), _scores(STUDENT2)], _config()).report.to_json()
    assert report["metrics"]["student"]["per_attribute"]["a"]["fnr"] == pytest.approx(0.375)
    assert report["metrics"]["delta"]["fnr"]["a"] == pytest.approx(50.0)
    # BA: student2 predicts rows 0, 1, 5 -> 3/3 in the group: 1 - 1/2 = .5; mean (.3 + .5) / 2 = .4
    assert report["metrics"]["ba"]["student"]["a"]["g"] == pytest.approx(0.4)
    assert report["inputs"]["n_students"] == 2


def test_threshold_calibration_is_applied_and_judged():
    config = _config(mitigation={"calibrate_thresholds": True},
                     limits=[{"metric": "fpr", "max": 0.3, "bound": "point"}])
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], config)
    # calib: 2 positives; scores .8 .7 .6 .2 -> threshold (.7 + .6) / 2 = .65
    expected = calibrate_thresholds(np.array([[1], [0], [1], [0]]), np.array([[0.8], [0.7], [0.6], [0.2]]))
    assert result.thresholds == pytest.approx(expected) and result.thresholds == pytest.approx([0.65])
    after = result.report.to_json()["mitigation"]["after"]
    # at .65 the student predicts rows 0, 1, 4, 5: FP rows 4, 5 -> FPR still .5, FN rows 2, 3 -> .5
    # accuracy: wrong 2, 3, 4, 5 -> 4/8
    assert after["accuracy"] == pytest.approx(0.5)
    assert result.report.to_json()["mitigation"]["thresholds"] == {"a": pytest.approx(0.65)}
    assert result.report.to_json()["limits"][0]["observed"] == pytest.approx(0.5)       # judged: mitigated
    raw = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)],
                   config.model_copy(update={"judge": "raw"}))
    assert raw.report.to_json()["limits"][0]["observed"] == pytest.approx(0.5) and raw.report.to_json()["judged"] == "raw"


def test_overrides_follow_teacher_ba_and_budget():
    # teacher BA .25 > 0 -> attribute "a" is overridden: round(0.1 * 80) = 8 samples with the
    # smallest |p_teacher - .5|. In float32 |.4 - .5| < |.6 - .5|, so the ten rows scoring .4
    # (pattern row 3, all true positives) come first, in row order: the first 8 of them.
    config = _config(mitigation={"override_budget": 0.1},
                     limits=[{"metric": "override_share", "max": 0.05}])
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], config)
    test_ids = np.array([f"r{i:03d}" for i in range(24, 24 + 80)])
    assert sorted(result.overrides) == sorted(test_ids[[3 + 8 * j for j in range(8)]])
    assert all(entry == {"a": 1} for entry in result.overrides.values())      # the human labels
    entry = result.report.to_json()["limits"][0]
    assert entry["observed"] == pytest.approx(0.1) and not entry["passed"]
    assert result.report.to_json()["mitigation"]["overrides"] == {"count": 8, "share": 0.1, "budget": 0.1, "attributes": ["a"]}
    # the student's label of those rows was already 1 (score .6): accuracy unchanged at 5/8
    assert result.report.to_json()["mitigation"]["after"]["accuracy"] == pytest.approx(0.625)


def test_overrides_change_the_judged_predictions():
    # budget .25 -> 20 rows: the ten .4 rows and then ten of the .6 rows (teacher FP, label 0),
    # which fixes the student's FP on pattern row 5: accuracy (5 + 1) / 8 = .75
    config = _config(mitigation={"override_budget": 0.25})
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)], config)
    assert len(result.overrides) == 20
    assert result.report.to_json()["mitigation"]["after"]["accuracy"] == pytest.approx(0.75)
    assert result.report.to_json()["metrics"]["student"]["accuracy"] == pytest.approx(0.625)     # before


def test_multiclass_data_and_its_overrides():
    config = _config(mitigation={"override_budget": 0.1})
    result = evaluate(_data("multiclass"), _scores(TEACHER, "multiclass"), [_scores(STUDENT, "multiclass")], config)
    m = result.report.to_json()["metrics"]
    assert m["teacher"]["accuracy"] == pytest.approx(0.75) and m["student"]["accuracy"] == pytest.approx(0.625)
    assert m["ba"]["teacher"]["a"]["g"] == pytest.approx(0.25)
    overrides = result.report.to_json()["mitigation"]["overrides"]
    assert all(set(v) == {"class"} for v in result.overrides.values())
    assert overrides["attributes"] and 8 <= len(result.overrides) == overrides["count"] <= 8 * len(overrides["attributes"])
    assert result.thresholds is None
    with pytest.raises(InputError, match="calibrate_thresholds: true applies to multi-label data only"):
        evaluate(_data("multiclass"), _scores(TEACHER, "multiclass"), [_scores(STUDENT, "multiclass")],
                 _config(mitigation={"calibrate_thresholds": True}))


def test_bad_arguments():
    data = _data()
    no_train = data.subset(data.split != "train")
    with pytest.raises(InputError, match="the eval data has no row with split = 'train'"):
        evaluate(no_train, _scores(TEACHER), [_scores(STUDENT)], _config())
    with pytest.raises(InputError, match="needs at least one student"):
        evaluate(data, _scores(TEACHER), [], _config())
    with pytest.raises(InputError, match=r"student 1: scores have shape \(83, 1\)"):
        evaluate(data, _scores(TEACHER), [_scores(STUDENT)[1:]], _config())


def test_undefined_cev_fails_closed():
    # a perfect teacher: FPR = FNR = 0 on the only attribute -> every dFPR/dFNR undefined
    perfect = [0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1]
    config = _config(limits=[{"metric": "cev", "max": 1e9}])
    result = evaluate(_data(), _scores(perfect), [_scores(STUDENT)], config)
    entry = result.report.to_json()["limits"][0]
    assert not result.passed and entry["observed"] is None
    assert entry["reason"] == ("fails closed: the value cev is undefined for model (no attribute has a nonzero "
                               "teacher FPR and FNR).")
    assert result.report.to_json()["metrics"]["cev"]["value"] is None
    assert result.report.to_json()["metrics"]["cev"]["excluded"] == ["a"]


def test_write_gate_outputs(tmp_path):
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)],
                      _config(mitigation={"override_budget": 0.1}, limits=[{"metric": "sde", "max": 1.0}]))
    paths = write_gate_outputs(result, tmp_path / "out")
    assert {"report.json", "junit.xml", "thresholds.json", "overrides.json"} <= set(paths)
    assert json.loads(paths["report.json"].read_text()) == result.report.to_json()
    assert list(read_thresholds(paths["thresholds.json"]).thresholds) == [0.5]
    assert read_overrides(paths["overrides.json"]).overrides == result.overrides
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").iterdir())
