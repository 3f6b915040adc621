"""FairGRAPE's metrics through the gate: hand-computed values, limits that pass and fail, paired
intervals, report.json's ``fairgrape`` section, the HTML table and the model card."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.config.gate import GateConfig
from compress_gate.data import EvalData
from compress_gate.gate import evaluate

# One attribute, identity columns (male, young): four joint groups of two test rows each.
#   row male young  y  teacher  student
#   0   1    1      1  .9       .9       both right
#   1   1    1      0  .2       .7       PIE (teacher right, student wrong: FP)
#   2   1    0      1  .8       .3       PIE (FN)
#   3   1    0      0  .3       .4       both right
#   4   0    1      1  .7       .6       both right
#   5   0    1      0  .6 (FP)  .2       teacher wrong, student right
#   6   0    0      1  .4 (FN)  .45 (FN) both wrong
#   7   0    0      0  .1       .1       both right
# The pattern repeats REPEAT times: every value below is unchanged by repetition (AP's tied
# scores enter together), and each resample still sees every group.
MALE = [1, 1, 1, 1, 0, 0, 0, 0]
YOUNG = [1, 1, 0, 0, 1, 1, 0, 0]
Y = [1, 0, 1, 0, 1, 0, 1, 0]
TEACHER = [0.9, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4, 0.1]
STUDENT = [0.9, 0.7, 0.3, 0.4, 0.6, 0.2, 0.45, 0.1]
REPEAT = 10
JOINT = ["male & young", "male & not young", "not male & young", "not male & not young"]
# accuracy per group: teacher [1, 1, 1/2, 1/2], student [1/2, 1/2, 1, 1/2]
# Δ = [-1/2, -1/2, 1/2, 0], mean -1/8, squared deviations (9 + 9 + 25 + 1)/64 = 11/16; / (4 - 1)
ACC_CHANGE_STD = np.sqrt(11 / 48)
# AP per group (one positive, one negative each): 1 when the positive scores higher, else 1/2
#   teacher [1, 1, 1, 1]; student [1, 1/2, 1, 1]: mean 7/8, Std = sqrt(3 (1/8)^2 + (3/8)^2) / 3) = 1/4
#   overall AP: teacher (1 + 1 + 1 + 4/5) / 4 = 0.95; student (1 + 2/3 + 3/4 + 4/6) / 4 = 37/48


def _data(groups: bool = True, test_y: list[int] = Y) -> EvalData:
    n_train, n_calib = 8, 4
    y = np.array(Y[:n_train] + [1, 0, 1, 0] + test_y * REPEAT)
    columns = np.array([MALE, YOUNG]).T
    g = np.concatenate([columns, columns[:n_calib], np.tile(columns, (REPEAT, 1))]).astype(bool)
    split = np.array(["train"] * n_train + ["calib"] * n_calib + ["test"] * 8 * REPEAT)
    return EvalData(ids=np.array([f"r{i:03d}" for i in range(y.size)]), labels=y[:, None].astype(np.uint8),
                    split=split, groups=g if groups else np.zeros((y.size, 0), dtype=bool),
                    group_names=("male", "young") if groups else (), attribute_names=("a",), task="multilabel")


def _scores(test: list[float]) -> np.ndarray:
    return np.array([0.8, 0.2, 0.7, 0.3] + test * REPEAT, dtype=np.float32)[:, None]


def _limits(limits: list[dict], n_resamples: int = 200) -> GateConfig:
    return GateConfig.model_validate({"n_resamples": n_resamples, "seed": 0, "limits": limits})


def _judge(limits: list[dict], student: list[float] = STUDENT, n_resamples: int = 200, groups: bool = True,
           y: list[int] = Y) -> dict:
    return evaluate(_data(groups, y), _scores(TEACHER), [_scores(student)],
                    _limits(limits, n_resamples)).report.to_json()


@pytest.mark.parametrize("limit, observed, unit, outcome", [
    ({"metric": "group_accuracy", "change": "absolute", "min": -0.4, "bound": "point"}, -0.5, "male & young", "fail"),
    ({"metric": "group_accuracy", "change": "absolute", "min": -0.5, "bound": "point"}, -0.5, "male & young", "pass"),
    ({"metric": "group_accuracy", "min": 0.5, "bound": "point"}, 0.5, "male & young", "pass"),
    # FPR: negatives rows 1, 3, 5, 7; teacher FP row 5 -> [0, 0, 1, 0]; student FP row 1 -> [1, 0, 0, 0]
    ({"metric": "group_fpr", "change": "absolute", "max": 0.5, "bound": "point"}, 1.0, "male & young", "fail"),
    # FNR: positives rows 0, 2, 4, 6; teacher FN row 6 -> [0, 0, 0, 1]; student rows 2, 6 -> [0, 1, 0, 1]
    ({"metric": "group_fnr", "change": "absolute", "max": 1.0, "bound": "point"}, 1.0, "male & not young", "pass"),
    ({"metric": "acc_change_std", "max": 0.5, "bound": "point"}, ACC_CHANGE_STD, "model", "pass"),
    ({"metric": "acc_change_std", "max": 0.45, "bound": "point"}, ACC_CHANGE_STD, "model", "fail"),
    ({"metric": "group_ap", "change": "absolute", "min": -0.4, "bound": "point"}, -0.5, "male & not young", "fail"),
    ({"metric": "group_ap", "change": "relative", "min": -0.5, "bound": "point"}, -0.5, "male & not young", "pass"),
    ({"metric": "ap_mean", "min": 0.8, "bound": "point"}, 7 / 8, "model", "pass"),
    ({"metric": "ap_mean", "change": "absolute", "min": -0.1, "bound": "point"}, -1 / 8, "model", "fail"),
    ({"metric": "ap_std", "max": 0.2, "bound": "point"}, 0.25, "model", "fail"),
    ({"metric": "ap_change_std", "max": 0.3, "bound": "point"}, 0.25, "model", "pass"),
    # PIE: rows 1 (male & young) and 2 (male & not young): shares [1/2, 1/2, 0, 0], gap 1/2
    ({"metric": "pie_share", "max": 0.5, "bound": "point"}, 0.5, "male & young", "pass"),
    ({"metric": "pie_share", "max": 0.4, "bound": "point"}, 0.5, "male & young", "fail"),
    ({"metric": "pie_gap", "max": 0.5, "bound": "point"}, 0.5, "model", "pass"),
    ({"metric": "pie_gap", "max": 0.25, "bound": "point"}, 0.5, "model", "fail"),
])
def test_limits_judge_the_hand_computed_value(limit, observed, unit, outcome):
    # the unit's point is the hand value. A point outside fails (`bound: point`); a point inside
    # cannot pass on 8 rows: a pass needs every unit's one-sided bound inside, and these are wide
    # (the old rule passed on the point estimate alone, with n_resamples 0)
    entry = _judge([limit])["limits"][0]
    points = {u["name"]: u["point"] for u in entry["units"]}
    assert points[unit] == pytest.approx(observed)
    if outcome == "fail":
        assert entry["outcome"] == "fail" and entry["unit"] == unit, entry["reason"]
        assert entry["observed"] == pytest.approx(observed)
    else:                                  # a pass only where every bound is inside
        assert entry["outcome"] in ("pass", "not_enough_evidence"), entry["reason"]
        assert entry["outcome"] == "not_enough_evidence" or entry["reason"].startswith("every")


def test_every_fairgrape_limit_has_an_interval_around_its_point():
    limits = [{"metric": m, "max": 1.0} for m in ("group_fpr", "group_fnr", "acc_change_std", "ap_std",
                                                   "ap_change_std", "pie_share", "pie_gap")]
    limits += [{"metric": m, "min": 0.0} for m in ("group_accuracy", "group_ap", "ap_mean")]
    for entry in _judge(limits)["limits"]:
        for unit in entry["units"]:                 # a degenerate unit has no bound and never passes
            if unit["outcome"] != "degenerate":
                lo, hi = (unit["point"], unit["bound"]) if entry["direction"] == "max" else (unit["bound"], unit["point"])
                assert lo <= hi, entry
        assert entry["outcome"] in ("pass", "not_enough_evidence"), entry


def test_a_group_without_positives_is_left_out_of_group_ap_and_fails_summaries_closed():
    # row 6 relabelled negative: 'not male & not young' has no positive, its AP is undefined (teacher too)
    y = Y[:6] + [0, 0]
    report = _judge([{"metric": "group_ap", "min": 0.0}, {"metric": "ap_mean", "min": 0.0},
                     {"metric": "ap_change_std", "max": 1.0}], y=y)
    group_ap, ap_mean, ap_change_std = report["limits"]
    states = {u["name"]: u["outcome"] for u in group_ap["units"]}
    assert states["not male & not young"] == "not_measured" and group_ap["outcome"] != "pass"
    assert "1 joint group(s) too small to measure, so the limit cannot pass" in group_ap["reason"]
    excluded = _judge([{"metric": "group_ap", "min": 0.0, "unmeasured": "exclude"}], y=y)["limits"][0]
    assert excluded["excluded"] == ["not male & not young"]
    assert "1 joint group(s) not measured and left out" in excluded["reason"]
    for entry in (ap_mean, ap_change_std):
        assert entry["outcome"] == "fail" and "no positive label" in entry["reason"], entry["reason"]


def test_paired_intervals_collapse_when_the_student_is_the_teacher():
    report = _judge([{"metric": m, "max": 0.0} for m in ("acc_change_std", "ap_change_std", "pie_gap", "pie_share")],
                    student=TEACHER)
    for entry in report["limits"]:                 # every resample 0: degenerate, never passed
        assert entry["observed"] == 0 and entry["ci"] is None, entry
        assert entry["outcome"] == "not_enough_evidence" and entry["bound"] == "upper"
        assert {u["outcome"] for u in entry["units"]} == {"degenerate"}
        assert "degenerate bootstrap" in entry["reason"]


def test_report_section_is_table_1_with_ap_and_pie():
    section = _judge([{"metric": "ap_mean", "min": 0.0}])["fairgrape"]     # an AP limit: AP is computed
    assert section["population"] == "raw" and section["group_columns"] == ["male", "young"]
    rows = {row["name"]: row for row in section["rows"]}
    assert list(rows) == ["all"] + JOINT
    assert [rows[g]["size"] for g in rows] == [8 * REPEAT] + [2 * REPEAT] * 4

    def column(metric: str, who: str) -> list[float]:
        return [rows[g][metric][who]["value"] for g in rows]
    assert column("accuracy", "teacher") == pytest.approx([6 / 8, 1, 1, 1 / 2, 1 / 2])
    assert column("accuracy", "student") == pytest.approx([5 / 8, 1 / 2, 1 / 2, 1, 1 / 2])
    assert column("fpr", "student") == pytest.approx([1 / 4, 1, 0, 0, 0])
    assert column("fnr", "teacher") == pytest.approx([1 / 4, 0, 0, 0, 1])
    assert column("ap", "teacher") == pytest.approx([0.95, 1, 1, 1, 1])
    assert column("ap", "student") == pytest.approx([37 / 48, 1, 1 / 2, 1, 1])
    assert [rows[g]["ap_percent_of_teacher"] for g in rows] == pytest.approx([100 * 37 / 48 / 0.95, 100, 50, 100,
                                                                               100])
    assert [rows[g]["pie_share"]["value"] for g in rows] == pytest.approx([2 / 8, 1 / 2, 1 / 2, 0, 0])
    assert section["acc_change_std"]["value"] == pytest.approx(ACC_CHANGE_STD)
    assert section["ap_mean"]["teacher"]["value"] == 1 and section["ap_mean"]["student"]["value"] == 7 / 8
    assert section["ap_std"]["teacher"]["value"] == 0 and section["ap_std"]["student"]["value"] == 0.25
    assert section["ap_change_std"]["value"] == pytest.approx(0.25)
    assert section["pie_gap"]["value"] == 0.5
    # only what a limit gates (AP) has intervals; the row `all` never
    assert section["ap_intervals"] and rows["male & young"]["ap"]["student"]["ci"] is not None
    assert rows["all"]["ap"]["student"]["ci"] is None
    assert section["acc_change_std"]["ci"] is None and section["pie_gap"]["ci"] is None
    assert rows["male & young"]["accuracy"]["student"]["ci"] is None


def test_without_limits_every_number_is_a_point_value_and_ap_is_not_computed():
    report = _judge([])
    section = report["fairgrape"]
    rows = {row["name"]: row for row in section["rows"]}
    assert rows["male & young"]["accuracy"]["student"]["value"] == pytest.approx(1 / 2)
    assert rows["male & young"]["accuracy"]["student"]["ci"] is None and section["pie_gap"]["ci"] is None
    assert section["pie_gap"]["value"] == 0.5
    assert all(row["ap"][who]["value"] is None for row in section["rows"] for who in ("teacher", "student"))
    assert "no limit gates an AP metric" in section["ap_undefined_reason"] and not section["ap_intervals"]
    estimates = report["estimates"]
    assert estimates["intervals"] == []
    assert {"group_accuracy", "pie_gap", "acc_change_std"} <= set(estimates["point_only"])
    assert set(estimates["not_computed"]) >= {"group_ap", "ap_mean", "ap_std", "ap_change_std"}
    assert not set(estimates["point_only"]) & set(estimates["not_computed"])




def test_an_ap_limit_resamples_ap_for_the_report_too():
    section = _judge([{"metric": "ap_mean", "min": 0.5}])["fairgrape"]
    assert section["ap_intervals"]
    lo, hi = section["ap_mean"]["student"]["ci"]
    assert lo <= 7 / 8 <= hi and section["ap_change_std"]["ci"] is not None


def test_without_identity_columns_the_limits_fail_closed_and_the_section_is_null():
    report = _judge([{"metric": "group_accuracy", "min": 0.0}, {"metric": "pie_gap", "max": 1.0},
                     {"metric": "ap_mean", "min": 0.0}], groups=False)
    assert report["fairgrape"] is None and report["outcome"] == "fail"
    for entry in report["limits"]:
        assert entry["outcome"] == "fail" and "no identity group column" in entry["reason"], entry["reason"]


def test_html_has_table_1_and_the_ap_figure_and_the_card_the_headline(tmp_path):
    from compress_gate.pipeline.gate import write_gate_outputs
    from compress_gate.report.html import build_html
    from compress_gate.report.model_card import build_model_card
    result = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT)],
                      _limits([{"metric": "acc_change_std", "max": 0.8}, {"metric": "pie_gap", "max": 1.0},
                               {"metric": "ap_mean", "min": 0.0}]))     # AP is computed for an AP limit only
    html = build_html(result.report)
    assert 'id="fairgrape"' in html and "FairGRAPE Table 1: Accuracy per joint group" in html
    table_1 = html[html.index("FairGRAPE Table 1: Accuracy"):]
    table_1 = table_1[:table_1.index("</table>")]
    for header in ("all", "male &amp; young", "not male &amp; not young", "Std(ΔAcc)"):
        assert f"<th>{header}</th>" in table_1
    assert "<td>0.4787 [" in table_1                      # Std(ΔAcc) = sqrt(11/48), with its interval
    assert "<td>50%</td>" in html and "student AP, % of teacher" in html   # male & not young: 1/2 of 1
    assert "Student AP per joint group as a percentage" in html and "data:image/png;base64," in html
    card = build_model_card(result.report)
    assert "### Joint groups (FairGRAPE, Lin et al., Table 1)" in card
    assert "Std(ΔAcc) 0.4787 \\[" in card and "PIE gap 50% \\[" in card and "Std(ΔAP) 0.25 \\[" in card
    assert "| student AP, % of teacher | 81.14% | 100% | 50% | 100% | 100% |" in card   # all: (37/48) / 0.95
    write_gate_outputs(result, tmp_path)                  # report.json validated by tests/conftest.py
    assert (tmp_path / "report.json").is_file()


def test_html_says_when_a_report_has_no_fairgrape_section():
    from compress_gate.report.html import build_html
    report = evaluate(_data(groups=False), _scores(TEACHER), [_scores(STUDENT)], _limits([])).report
    assert "The report has no FairGRAPE section" in build_html(report)


def test_a_population_is_averaged_per_group_first_and_pie_uses_its_modal_labels():
    # students (STUDENT, TEACHER, STUDENT): mean group accuracy [2/3, 2/3, 5/6, 1/2] against the
    # teacher's [1, 1, 1/2, 1/2]: Δ = [-1/3, -1/3, 1/3, 0], mean -1/12, squared deviations
    # (9 + 9 + 25 + 1)/144 = 44/144, / 3 -> Std(ΔAcc) = sqrt(44/432). Modal labels = STUDENT's: PIE as before.
    limits = _limits([{"metric": "acc_change_std", "max": 1.0, "bound": "point"},
                      {"metric": "pie_gap", "max": 1.0, "bound": "point"}])
    report = evaluate(_data(), _scores(TEACHER), [_scores(STUDENT), _scores(TEACHER), _scores(STUDENT)],
                      limits).report.to_json()
    acc_change_std, pie_gap = report["limits"]
    assert acc_change_std["observed"] == pytest.approx(np.sqrt(44 / 432))
    assert pie_gap["observed"] == 0.5
    assert report["fairgrape"]["rows"][1]["accuracy"]["student"]["value"] == pytest.approx(2 / 3)


def test_every_teacher_pair_metric_has_its_pair_measure_and_no_other():
    from compress_gate.config.gate import GATED_METRICS
    from compress_gate.gate._fairgrape_measures import PAIR_METRICS
    assert set(PAIR_METRICS) == {m for m, spec in GATED_METRICS.items() if spec.source == "teacher_pair"}


def test_too_many_joint_groups_fail_closed_and_leave_the_section_out(monkeypatch):
    import compress_gate.gate._fairgrape_measures as measures
    monkeypatch.setattr(measures, "MAX_JOINT_GROUPS", 3)          # the data has 4
    report = _judge([{"metric": "group_accuracy", "min": 0.0}, {"metric": "pie_gap", "max": 1.0}])
    assert report["fairgrape"] is None
    for entry in report["limits"]:
        assert entry["outcome"] == "fail" and "form 4 joint groups, more than the 3" in entry["reason"]


def test_multiclass_judges_whole_samples():
    # the same rows as two one-hot classes (no, a): argmax = score > .5 here, so group accuracy and PIE
    # are as in the multi-label case; pooled FPR over both classes = errors / (n (K - 1)) = 1 - accuracy
    d = _data()
    data = EvalData(ids=d.ids, labels=np.concatenate([1 - d.labels, d.labels], axis=1), split=d.split,
                    groups=d.groups, group_names=d.group_names, attribute_names=("no", "a"), task="multiclass")

    def two(scores: list[float]) -> np.ndarray:
        s = _scores(scores)
        return np.concatenate([1 - s, s], axis=1)
    limits = _limits([{"metric": "acc_change_std", "max": 1.0, "bound": "point"},
                      {"metric": "pie_gap", "max": 1.0, "bound": "point"}])
    report = evaluate(data, two(TEACHER), [two(STUDENT)], limits).report.to_json()
    assert [e["observed"] for e in report["limits"]] == pytest.approx([ACC_CHANGE_STD, 0.5])
    rows = report["fairgrape"]["rows"]
    assert [r["pie_share"]["value"] for r in rows] == pytest.approx([2 / 8, 1 / 2, 1 / 2, 0, 0])
    assert [r["fpr"]["student"]["value"] for r in rows] == pytest.approx([3 / 8, 1 / 2, 1 / 2, 0, 1 / 2])


def test_ap_is_computed_only_when_a_limit_gates_it(monkeypatch):
    # AP is the costly part (the rows family): a run without an AP limit never computes it
    from compress_gate.gate._measures import PopulationMetrics
    asked = []
    group_ap = PopulationMetrics.group_ap
    monkeypatch.setattr(PopulationMetrics, "group_ap", lambda self, rows, resampled=False: (
        asked.append(resampled), group_ap(self, rows, resampled))[1])
    _judge([{"metric": "acc_change_std", "max": 1.0}, {"metric": "group_fpr", "max": 1.0}])
    assert not asked
    _judge([{"metric": "ap_std", "max": 1.0}])
    assert any(asked) and not all(asked)          # the point value and the resamples


def test_float64_scores_near_1_keep_their_precision_and_per_group_ap_equals_scikit_learns(tmp_path):
    # an over-confident student: float64 scores 1 - 1e-9 * u, which float32 rounds to ties at 1.0;
    # the gate keeps the precision given, so each joint group's AP (mean over attributes) is
    # scikit-learn's average_precision_score on the given values
    from sklearn.metrics import average_precision_score

    from compress_gate.data import align_scores, load_predictions
    rng = np.random.default_rng(0)
    n_train, n_test, k = 40, 400, 2
    n = n_train + n_test
    groups = rng.random((n, 2)) < 0.5
    labels = (rng.random((n, k)) < 0.4).astype(np.uint8)
    data = EvalData(ids=np.array([f"s{i}" for i in range(n)]), labels=labels,
                    split=np.array(["train"] * n_train + ["test"] * n_test), groups=groups,
                    group_names=("male", "young"), attribute_names=("a", "b"), task="multilabel")
    y = labels[n_train:]
    student = 1.0 - 1e-9 * rng.random((n_test, k)) * np.where(y == 1, 1.0, 3.0)
    assert np.unique(student.astype(np.float32)).size < 3           # float32 would tie them all
    teacher = np.clip(0.5 * y + 0.25 + rng.normal(0, 0.2, y.shape), 0.0, 1.0)
    for name, scores in (("teacher", teacher), ("student", student)):
        np.savez(tmp_path / f"{name}.npz", ids=data.ids[n_train:], scores=scores)
    loaded = {name: load_predictions(tmp_path / f"{name}.npz") for name in ("teacher", "student")}
    assert loaded["student"].scores.dtype == np.float64 and np.array_equal(loaded["student"].scores, student)
    aligned = {name: align_scores(data, preds, data.mask("calib", "test")) for name, preds in loaded.items()}
    config = GateConfig.model_validate({"n_resamples": 200,      # the fewest a limit with an interval takes
                                       "limits": [{"metric": "ap_mean", "min": 0.0, "bound": "point"}]})
    section = evaluate(data, aligned["teacher"], [aligned["student"]], config).report.to_json()["fairgrape"]
    test_groups, moved = groups[n_train:], []
    for row in section["rows"][1:]:
        pattern = np.array([not part.startswith("not ") for part in row["name"].split(" & ")])
        rows = (test_groups == pattern).all(axis=1)
        expected = np.mean([average_precision_score(y[rows, j], student[rows, j]) for j in range(k)])
        assert row["ap"]["student"]["value"] == pytest.approx(expected, abs=1e-12)
        rounded = np.mean([average_precision_score(y[rows, j], student[rows, j].astype(np.float32)) for j in range(k)])
        moved.append(abs(rounded - expected))
    assert max(moved) > 1e-3                                         # what float32 rounding would have cost


def test_float32_scores_stay_float32():
    from compress_gate.data._contract_checks import check_prediction_columns
    preds = check_prediction_columns({"ids": np.array(["a", "b"]), "scores": np.array([[0.25], [1.0]], np.float32)},
                                     "p.npz")
    assert preds.scores.dtype == np.float32
    as_ints = check_prediction_columns({"ids": np.array(["a", "b"]), "scores": np.array([[0], [1]])}, "p.npz")
    assert as_ints.scores.dtype == np.float32
