"""Subgroup and intersectional rates: hand-computed, cross-checked against Fairlearn's MetricFrame."""

import numpy as np
import pytest
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate

from compress_gate.errors import InputError
from compress_gate.metrics import subgroup_normalized_difference, subgroup_rates

NAMES = ("male", "young")
# rows (male, young, y, ŷ): r0 1,1,1,1 TP  r1 1,0,1,0 FN  r2 0,1,0,1 FP  r3 0,0,0,0 TN  r4 1,1,0,0 TN  r5 0,1,1,1 TP
GROUPS = np.array([[1, 1], [1, 0], [0, 1], [0, 0], [1, 1], [0, 1]])
Y_TRUE = np.array([[1], [1], [0], [0], [0], [1]])
Y_PRED = np.array([[1], [0], [1], [0], [0], [1]])
NAN = float("nan")


def test_rows_are_all_groups_and_pairwise_intersections():
    table = subgroup_rates(Y_TRUE, Y_PRED, GROUPS, NAMES)
    assert table.names == ("all", "male", "young", "male & young", "male & not young", "not male & young",
                           "not male & not young")


def test_subgroup_rates_by_hand():
    table = subgroup_rates(Y_TRUE, Y_PRED, GROUPS, NAMES)
    # all: 6 rows, FN 1 of 3 positives, FP 1 of 3 negatives, 2 errors
    # male r0 r1 r4: FNR 1/2 (r1), FPR 0/1 (r4), error 1/3
    # young r0 r2 r4 r5: FNR 0/2, FPR 1/2 (r2), error 1/4
    # male & young r0 r4: 0, 0, 0; male & not young r1: FNR 1, no negatives, error 1
    # not male & young r2 r5: FNR 0/1, FPR 1/1, error 1/2; not male & not young r3: no positives, FPR 0, error 0
    assert table.sizes.tolist() == [6, 3, 4, 2, 1, 2, 1]
    np.testing.assert_allclose(table.fnr[:, 0], [1 / 3, 1 / 2, 0, 0, 1, 0, NAN])
    np.testing.assert_allclose(table.fpr[:, 0], [1 / 3, 0, 1 / 2, 0, NAN, 1, 0])
    np.testing.assert_allclose(table.error[:, 0], [1 / 3, 1 / 3, 1 / 4, 0, 1, 1 / 2, 0])
    # one attribute: pooled == per attribute
    np.testing.assert_allclose(table.pooled_fnr, table.fnr[:, 0])
    np.testing.assert_allclose(table.pooled_error, table.error[:, 0])


def test_pooled_rates_sum_counts_over_attributes():
    # second attribute: y 1 0 0 0 0 0, ŷ 0 0 0 0 0 0 -> one FN in r0
    y_true = np.column_stack([Y_TRUE[:, 0], [1, 0, 0, 0, 0, 0]])
    y_pred = np.column_stack([Y_PRED[:, 0], [0, 0, 0, 0, 0, 0]])
    table = subgroup_rates(y_true, y_pred, GROUPS, NAMES)
    # all: FN 1 + 1 of positives 3 + 1; FP 1 + 0 of negatives 3 + 5; errors 2 + 1 of 12 labels
    assert table.pooled_fnr[0] == pytest.approx(2 / 4)
    assert table.pooled_fpr[0] == pytest.approx(1 / 8)
    assert table.pooled_error[0] == pytest.approx(3 / 12)
    # male & young (r0, r4): FN 0 + 1 of 1 + 1 positives
    assert table.pooled_fnr[3] == pytest.approx(1 / 2)


def test_empty_group_has_size_zero_and_undefined_rates():
    groups = np.column_stack([GROUPS[:, 0], np.zeros(6, dtype=int)])
    table = subgroup_rates(Y_TRUE, Y_PRED, groups, NAMES)
    assert table.sizes[2] == 0
    assert np.isnan([table.fnr[2, 0], table.fpr[2, 0], table.error[2, 0], table.pooled_fnr[2]]).all()


def test_pooled_only_leaves_per_attribute_rates_out():
    table = subgroup_rates(Y_TRUE, Y_PRED, GROUPS, NAMES, per_attribute=False)
    assert table.fnr is None and table.error is None
    np.testing.assert_allclose(table.pooled_fpr, [1 / 3, 0, 1 / 2, 0, NAN, 1, 0])


def test_normalized_difference_in_percent():
    teacher = subgroup_rates(Y_TRUE, Y_PRED, GROUPS, NAMES)
    student_pred = Y_PRED.copy()
    student_pred[3] = 1                                   # r3 becomes a FP
    student = subgroup_rates(Y_TRUE, student_pred, GROUPS, NAMES)
    diff = subgroup_normalized_difference(teacher, student)
    # all: FPR 1/3 -> 2/3 (+100 %); error 1/3 -> 1/2 (+50 %); not male & not young FPR 0 -> 1: teacher 0, nan
    assert diff["pooled_fpr"][0] == pytest.approx(100.0)
    assert diff["pooled_error"][0] == pytest.approx(50.0)
    assert np.isnan(diff["fpr"][6, 0])


def test_group_names_must_match_the_columns():
    with pytest.raises(InputError, match="group_names has 1 names but groups has 2 columns"):
        subgroup_rates(Y_TRUE, Y_PRED, GROUPS, ("male",))


def test_matches_fairlearn_metric_frame_per_group_and_intersection():
    rng = np.random.default_rng(0)
    n, k = 400, 3
    groups = rng.random((n, 2)) < np.array([0.4, 0.7])
    y_true = (rng.random((n, k)) < 0.35).astype(int)
    y_pred = np.where(rng.random((n, k)) < 0.8, y_true, 1 - y_true)
    weights = rng.integers(1, 4, n)
    table = subgroup_rates(y_true, y_pred, groups, NAMES, sample_weight=weights)
    rates = {"fpr": false_positive_rate, "fnr": false_negative_rate,
             "error": lambda t, p, sample_weight: np.average(t != p, weights=sample_weight)}
    params = {name: {"sample_weight": weights} for name in rates}
    for j in range(k):
        single = MetricFrame(metrics=rates, y_true=y_true[:, j], y_pred=y_pred[:, j],
                             sensitive_features=groups[:, 0], sample_params=params).by_group
        both = MetricFrame(metrics=rates, y_true=y_true[:, j], y_pred=y_pred[:, j],
                           sensitive_features={"male": groups[:, 0], "young": groups[:, 1]},
                           sample_params=params).by_group
        for rate in rates:
            ours = getattr(table, rate)[:, j]
            assert ours[1] == pytest.approx(single.loc[True, rate])                    # male
            assert ours[3] == pytest.approx(both.loc[(True, True), rate])              # male & young
            assert ours[4] == pytest.approx(both.loc[(True, False), rate])             # male & not young
            assert ours[5] == pytest.approx(both.loc[(False, True), rate])             # not male & young
            assert ours[6] == pytest.approx(both.loc[(False, False), rate])            # not male & not young
