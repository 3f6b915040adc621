"""FairGRAPE's group metrics: hand-computed cases, scikit-learn cross-checks, weight properties."""

import numpy as np
import pytest

import compress_gate.metrics.fairgrape_ap as fairgrape_ap_module
from sklearn.metrics import average_precision_score

from compress_gate.errors import InputError
from compress_gate.metrics import (accuracy_change_std, average_precision, average_precision_change_std,
                                   bootstrap_weights, group_average_precision, group_change_std, joint_group_counts,
                                   joint_group_rates, joint_group_rates_from_counts, pie_counts,
                                   pie_shares_from_counts, pruning_identified_exemplars)

NAN = np.nan
NAMES = ("male", "young")
JOINT = ("all", "male & young", "male & not young", "not male & young", "not male & not young")
#               male young  y  teacher student
ROWS = np.array([[1, 1,     1, 1, 1],     # 0  both right
                 [1, 1,     0, 0, 1],     # 1  PIE (teacher right, student wrong)
                 [1, 0,     1, 1, 0],     # 2  PIE
                 [0, 1,     0, 0, 0],     # 3  both right
                 [0, 0,     1, 0, 0],     # 4  both wrong
                 [0, 0,     0, 1, 0]])    # 5  teacher wrong, student right
GROUPS, Y, TEACHER, STUDENT = ROWS[:, :2], ROWS[:, 2:3], ROWS[:, 3:4], ROWS[:, 4:5]


def test_joint_groups_are_the_membership_patterns_member_first():
    table = joint_group_rates(Y, TEACHER, GROUPS, NAMES, task="multilabel")
    assert table.names == JOINT
    np.testing.assert_array_equal(table.sizes, [6, 2, 1, 1, 2])


def test_accuracy_fpr_fnr_per_joint_group():
    teacher = joint_group_rates(Y, TEACHER, GROUPS, NAMES, task="multilabel")
    student = joint_group_rates(Y, STUDENT, GROUPS, NAMES, task="multilabel")
    # teacher right on rows 0-3: all 4/6; groups {0,1} 1, {2} 1, {3} 1, {4,5} 0
    np.testing.assert_allclose(teacher.accuracy, [4 / 6, 1, 1, 1, 0])
    # student right on rows 0, 3, 5: all 3/6; {0,1} 1/2, {2} 0, {3} 1, {4,5} 1/2
    np.testing.assert_allclose(student.accuracy, [3 / 6, 1 / 2, 0, 1, 1 / 2])
    # student FPR: negatives {1} predicted 1 -> 1; {2} none -> nan; {3} -> 0; {5} -> 0; all: 1 of {1,3,5}
    np.testing.assert_allclose(student.fpr[:, 0], [1 / 3, 1, NAN, 0, 0])
    # student FNR: positives {0} right -> 0; {2} missed -> 1; {3} none -> nan; {4} missed -> 1; all 2 of {0,2,4}
    np.testing.assert_allclose(student.fnr[:, 0], [2 / 3, 0, 1, NAN, 1])


def test_accuracy_change_std_is_the_sample_std_over_joint_groups():
    teacher = joint_group_rates(Y, TEACHER, GROUPS, NAMES, task="multilabel")
    student = joint_group_rates(Y, STUDENT, GROUPS, NAMES, task="multilabel")
    # Δ = [1/2 - 1, 0 - 1, 1 - 1, 1/2 - 0] = [-0.5, -1, 0, 0.5]; mean -0.25
    # squared deviations 0.0625 + 0.5625 + 0.0625 + 0.5625 = 1.25; / (4 - 1); sqrt -> 0.645497
    assert accuracy_change_std(teacher, student) == pytest.approx(np.sqrt(1.25 / 3))


def test_accuracy_change_std_is_nan_for_an_empty_group_or_a_single_group():
    weights = np.array([1, 1, 0, 1, 1, 1])             # male & not young has no weight
    teacher = joint_group_rates(Y, TEACHER, GROUPS, NAMES, task="multilabel", sample_weight=weights)
    student = joint_group_rates(Y, STUDENT, GROUPS, NAMES, task="multilabel", sample_weight=weights)
    assert np.isnan(teacher.accuracy[2]) and np.isnan(accuracy_change_std(teacher, student))
    one = np.ones((6, 1))                               # one pattern: a single joint group
    single = joint_group_rates(Y, TEACHER, one, ("all_in",), task="multilabel")
    assert single.names == ("all", "all_in") and np.isnan(accuracy_change_std(single, single))


def test_multiclass_accuracy_counts_samples():
    # classes of rows: y = 0, 1, 2, 1; predicted 0, 2, 2, 1; group rows {0, 1} and {2, 3}
    y = np.eye(3, dtype=int)[[0, 1, 2, 1]]
    p = np.eye(3, dtype=int)[[0, 2, 2, 1]]
    table = joint_group_rates(y, p, np.array([[1], [1], [0], [0]]), ("g",), task="multiclass")
    np.testing.assert_allclose(table.accuracy, [3 / 4, 1 / 2, 1])
    # class 1 within g: positives {1} missed -> FNR 1; class 2 within g: negatives {0,1}, FP {1} -> 1/2
    assert table.fnr[1, 1] == 1 and table.fpr[1, 2] == 0.5


def test_rows_of_different_tables_must_match():
    teacher = joint_group_rates(Y, TEACHER, GROUPS, NAMES, task="multilabel")
    other = joint_group_rates(Y, TEACHER, GROUPS[:, :1], NAMES[:1], task="multilabel")
    with pytest.raises(InputError, match="differ from the student's"):
        accuracy_change_std(teacher, other)


def test_pie_shares_and_gap():
    pie = pruning_identified_exemplars(Y, TEACHER, STUDENT, GROUPS, NAMES, task="multilabel")
    # PIEs: rows 1 and 2. all 2/6; {0,1} 1/2; {2} 1; {3} 0; {4,5} 0; gap = 1 - 0
    assert pie.names == JOINT
    np.testing.assert_allclose(pie.share, [2 / 6, 1 / 2, 1, 0, 0])
    assert pie.gap == 1.0


def test_pie_weights_and_resamples():
    weights = np.array([1, 3, 1, 1, 1, 1])
    pie = pruning_identified_exemplars(Y, TEACHER, STUDENT, GROUPS, NAMES, task="multilabel", sample_weight=weights)
    # {0,1} weighs 1 + 3 with the PIE row 1 weighing 3 -> 3/4; all: (3 + 1) / 8
    np.testing.assert_allclose(pie.share, [4 / 8, 3 / 4, 1, 0, 0])
    both = pruning_identified_exemplars(Y, TEACHER, STUDENT, GROUPS, NAMES, task="multilabel",
                                        sample_weight=np.stack([weights, np.ones(6)]))
    np.testing.assert_allclose(both.share, [[4 / 8, 3 / 4, 1, 0, 0], [2 / 6, 1 / 2, 1, 0, 0]])
    np.testing.assert_allclose(both.gap, [1, 1])


def test_pie_of_populations_uses_modal_labels():
    # dense population (3 models) votes 1, 0, 1, 0, 1, 0 by majority; compressed (2 models) ties on row 0
    dense = np.array([[1, 0, 1, 0, 1, 0], [1, 0, 1, 0, 0, 0], [0, 1, 1, 0, 1, 1]])[..., None]
    comp = np.array([[1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]])[..., None]
    # dense modal = 1,0,1,0,1,0 = y on every row; compressed modal: row 0 tie, then 1,0,0,0,0
    # rows 1 (0 -> 1), 2 (1 -> 0), 4 (1 -> 0) are PIEs whatever the tie: male & young holds 0 and 1
    for seed in range(4):
        pie = pruning_identified_exemplars(Y, dense, comp, GROUPS, NAMES, task="multilabel", seed=seed)
        tie = pie.share[1] - 1 / 2                     # row 0 is a PIE only when its tie draws 0
        assert tie in (0.0, 0.5)
        np.testing.assert_allclose(pie.share[2:], [1, 0, 1 / 2])
        assert pie.share[0] == pytest.approx((3 + 2 * tie) / 6)


def test_pie_multiclass_judges_whole_samples():
    y = np.eye(3, dtype=int)[[0, 1, 2, 1]]
    dense = np.eye(3, dtype=int)[[0, 1, 2, 0]]
    comp = np.eye(3, dtype=int)[[1, 1, 0, 2]]
    # dense right on rows 0-2; compressed wrong on 0 and 2 -> PIEs {0, 2}; row 3 both wrong
    pie = pruning_identified_exemplars(y, dense, comp, np.array([[1], [1], [0], [0]]), ("g",), task="multiclass")
    np.testing.assert_allclose(pie.share, [2 / 4, 1 / 2, 1 / 2])
    assert pie.gap == 0.0


def test_pie_rejects_predictions_of_other_samples():
    with pytest.raises(InputError, match="predict the same samples"):
        pruning_identified_exemplars(Y[:5], TEACHER, STUDENT, GROUPS[:5], NAMES, task="multilabel")


# AP: one attribute; rows 0-1 in group g, rows 2-4 not
AP_Y = np.array([[1], [0], [1], [0], [1]])
AP_TEACHER = np.array([[0.9], [0.8], [0.8], [0.1], [0.1]])
AP_STUDENT = np.array([[0.2], [0.8], [0.8], [0.1], [0.1]])
AP_GROUPS = np.array([[1], [1], [0], [0], [0]])


def test_average_precision_with_ties_by_hand():
    # thresholds 0.9: TP 1 FP 0 (P 1, R 1/3); 0.8 (rows 1, 2 tie): TP 2 FP 1 (P 2/3, R 2/3); 0.1: TP 3 FP 2 (P 3/5, R 1)
    # AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45
    assert average_precision(AP_Y, AP_TEACHER) == pytest.approx([34 / 45])
    assert average_precision_score(AP_Y[:, 0], AP_TEACHER[:, 0]) == pytest.approx(34 / 45)


def test_group_average_precision_mean_std_and_change_std():
    teacher = group_average_precision(AP_Y, AP_TEACHER, AP_GROUPS, ("g",))
    # g: 0.9 (pos) first -> AP 1; not g: 0.8 (pos) P 1 R 1/2, then 0.1 tie TP 2 FP 1 P 2/3 R 1 -> 1/2 + 1/3 = 5/6
    assert teacher.names == ("all", "g", "not g")
    np.testing.assert_allclose(teacher.per_group, [34 / 45, 1, 5 / 6])
    assert teacher.mean == pytest.approx(11 / 12)               # (1 + 5/6) / 2
    assert teacher.std == pytest.approx((1 / 6) / np.sqrt(2))   # two values: |a - b| / sqrt(2)
    student = group_average_precision(AP_Y, AP_STUDENT, AP_GROUPS, ("g",))
    # g: 0.8 (neg) P 0 R 0, then 0.2 (pos) P 1/2 R 1 -> 1/2; not g unchanged. ΔAP = [-1/2, 0]
    np.testing.assert_allclose(student.per_group[1:], [1 / 2, 5 / 6])
    assert average_precision_change_std(teacher, student) == pytest.approx(0.5 / np.sqrt(2))


def test_average_precision_is_nan_without_positives():
    y = np.array([[0, 1], [0, 0], [0, 1]])
    s = np.array([[0.2, 0.3], [0.4, 0.5], [0.6, 0.7]])
    ap = average_precision(y, s)
    assert np.isnan(ap[0]) and ap[1] == pytest.approx(average_precision_score(y[:, 1], s[:, 1]))
    assert np.isnan(average_precision(y, s, sample_weight=np.array([0, 1, 0]))[1])     # positives weigh 0


def test_average_precision_matches_sklearn_with_ties_weights_and_groups():
    rng = np.random.default_rng(0)
    n, k = 300, 3
    y = (rng.random((n, k)) < 0.4).astype(int)
    scores = np.round(np.clip(0.5 * y + rng.random((n, k)) * 0.6, 0, 1), 1)     # many ties
    groups = rng.random((n, 2)) < np.array([0.5, 0.3])
    weights = rng.integers(0, 4, n)
    table = group_average_precision(y, scores, groups, NAMES, sample_weight=weights)
    rows = [np.ones(n, bool), groups[:, 0] & groups[:, 1], groups[:, 0] & ~groups[:, 1],
            ~groups[:, 0] & groups[:, 1], ~groups[:, 0] & ~groups[:, 1]]
    for r, rows_r in enumerate(rows):
        for a in range(k):
            expected = average_precision_score(y[rows_r, a], scores[rows_r, a], sample_weight=weights[rows_r])
            assert table.ap[r, a] == pytest.approx(expected, rel=1e-12)


def test_resample_weights_equal_separate_calls_and_integer_weights_equal_repeats():
    rng = np.random.default_rng(1)
    n, k = 40, 2
    y = (rng.random((n, k)) < 0.5).astype(int)
    scores = np.round(rng.random((n, k)), 1)
    teacher, student = (scores > 0.5).astype(int), (rng.random((n, k)) < 0.5).astype(int)
    groups = rng.random((n, 2)) < 0.5
    w = rng.integers(0, 3, (3, n)).astype(np.float32)
    metrics = {
        "ap": lambda yy, ss, tt, pp, gg, ww: group_average_precision(yy, ss, gg, sample_weight=ww).ap,
        "acc": lambda yy, ss, tt, pp, gg, ww: joint_group_rates(yy, pp, gg, task="multilabel",
                                                                sample_weight=ww).accuracy,
        "pie": lambda yy, ss, tt, pp, gg, ww: pruning_identified_exemplars(yy, tt, pp, gg, task="multilabel",
                                                                           sample_weight=ww).share,
    }
    for name, metric in metrics.items():
        together = metric(y, scores, teacher, student, groups, w)
        for b in range(3):
            np.testing.assert_allclose(together[b], metric(y, scores, teacher, student, groups, w[b]),
                                       rtol=1e-12, err_msg=name)
        repeat = np.repeat(np.arange(n), w[0].astype(int))
        np.testing.assert_allclose(metric(y[repeat], scores[repeat], teacher[repeat], student[repeat],
                                          groups[repeat], None), together[0], rtol=1e-12, err_msg=name)


def test_shuffling_rows_changes_nothing():
    order = np.array([3, 0, 5, 1, 4, 2])
    before = pruning_identified_exemplars(Y, TEACHER, STUDENT, GROUPS, NAMES, task="multilabel").share
    after = pruning_identified_exemplars(Y[order], TEACHER[order], STUDENT[order], GROUPS[order], NAMES,
                                         task="multilabel").share
    np.testing.assert_array_equal(before, after)
    perm = np.array([4, 2, 0, 3, 1])
    np.testing.assert_allclose(group_average_precision(AP_Y[perm], AP_TEACHER[perm], AP_GROUPS[perm]).ap,
                               group_average_precision(AP_Y, AP_TEACHER, AP_GROUPS).ap)


def test_bad_scores_are_input_errors():
    with pytest.raises(InputError, match="outside \\[0, 1\\]"):
        average_precision(AP_Y, AP_TEACHER * 2)


def test_resample_blocks_and_registered_bootstrap_weights_change_nothing(monkeypatch):
    rng = np.random.default_rng(2)
    n = 30
    y = (rng.random((n, 2)) < 0.5).astype(int)
    scores, groups = np.round(rng.random((n, 2)), 1), rng.random((n, 2)) < 0.5
    weights = next(bootstrap_weights(n, n_resamples=5, seed=0))            # registered: memoized tables
    plain = np.array(weights)                                              # an unregistered copy
    ap = group_average_precision(y, scores, groups, sample_weight=weights).ap
    monkeypatch.setattr(fairgrape_ap_module, "_AP_BLOCK_VALUES", 2 * n)     # blocks of 2 resamples
    np.testing.assert_allclose(group_average_precision(y, scores, groups, sample_weight=plain).ap, ap, rtol=1e-12)
    first = joint_group_rates(y, y, groups, task="multilabel", sample_weight=weights)
    again = joint_group_rates(y, 1 - y, groups, task="multilabel", sample_weight=weights)   # memo hit for groups
    np.testing.assert_allclose(first.accuracy, np.where(first.sizes > 0, 1.0, np.nan))
    np.testing.assert_allclose(again.accuracy,
                               joint_group_rates(y, 1 - y, groups, task="multilabel", sample_weight=plain).accuracy)


def test_no_samples_give_nan_not_zero():
    empty = np.zeros((0, 1))
    assert np.isnan(average_precision(empty, empty)).all()
    table = joint_group_rates(empty, empty, np.zeros((0, 2)), task="multilabel")
    assert table.names == ("all",) and np.isnan(table.accuracy).all() and np.isnan(accuracy_change_std(table, table))


# --- sufficient statistics: counts that add across shards, finished once ---------------------

def test_counts_of_shards_add_to_the_counts_of_the_whole():
    # shard A = rows 0-2 (groups male&young, male&not young), shard B = rows 3-5 (the not-male groups):
    # the shards have no joint group in common, the sum has all four, in member-first order
    whole = joint_group_counts(Y, STUDENT, GROUPS, NAMES, task="multilabel")
    a = joint_group_counts(Y[:3], STUDENT[:3], GROUPS[:3], NAMES, task="multilabel")
    b = joint_group_counts(Y[3:], STUDENT[3:], GROUPS[3:], NAMES, task="multilabel")
    assert a.names == ("all", "male & young", "male & not young")
    for merged in (a + b, b + a):
        assert merged.names == JOINT
        for field in ("size", "tp", "fp", "fn"):
            np.testing.assert_array_equal(getattr(merged, field), getattr(whole, field))
    table = joint_group_rates_from_counts(b + a, task="multilabel")
    np.testing.assert_allclose(table.accuracy, [3 / 6, 1 / 2, 0, 1, 1 / 2])


def test_pooled_rates_sum_counts_over_attributes():
    # two attributes: the second is the first negated, so each row's FP of one is FN of the other
    y, pred = np.hstack([Y, 1 - Y]), np.hstack([STUDENT, 1 - STUDENT])
    table = joint_group_rates(y, pred, GROUPS, NAMES, task="multilabel")
    # all: FP = 1 + 2, negatives = 3 + 3 -> 3/6 ; FN = 2 + 1, positives 3 + 3 -> 3/6
    assert (table.pooled_fpr[0], table.pooled_fnr[0]) == pytest.approx((0.5, 0.5))
    # male & not young (row 2, y = 1, predicted 0): FP 0 + 1 over negatives 0 + 1; FN 1 + 0 over 1 + 0
    assert (table.pooled_fpr[2], table.pooled_fnr[2]) == pytest.approx((1.0, 1.0))


def test_pie_counts_add_and_finish_like_the_composed_function():
    weights = np.stack([np.array([1, 3, 1, 1, 1, 1.0]), np.ones(6)])
    whole = pruning_identified_exemplars(Y, TEACHER, STUDENT, GROUPS, NAMES, task="multilabel",
                                         sample_weight=weights)
    parts = [pie_counts(Y[r], TEACHER[r], STUDENT[r], GROUPS[r], NAMES, task="multilabel",
                        sample_weight=weights[:, r]) for r in (slice(0, 2), slice(2, 6))]
    merged = pie_shares_from_counts(parts[0] + parts[1])
    assert merged.names == whole.names
    np.testing.assert_array_equal(merged.share, whole.share)
    np.testing.assert_array_equal(merged.gap, whole.gap)


def test_counts_of_other_columns_do_not_add():
    a = joint_group_counts(Y, STUDENT, GROUPS, NAMES, task="multilabel")
    b = joint_group_counts(Y, STUDENT, GROUPS, ("young", "male"), task="multilabel")
    with pytest.raises(InputError, match="same identity columns"):
        a + b


def test_group_change_std_by_hand():
    # Δ = [-0.5, 0, 0.5]: mean 0, squares 0.25 + 0 + 0.25 = 0.5, / 2 -> 0.25, sqrt -> 0.5
    assert group_change_std(np.ones(3), np.array([0.5, 1, 1.5])) == pytest.approx(0.5)
    assert np.isnan(group_change_std(np.ones(1), np.ones(1)))


def test_pie_ties_keyed_by_id_hash_do_not_depend_on_row_order_or_shards():
    # two compressed models disagree on about half the pairs: their modal label is a tie there,
    # drawn per sample from (seed, id hash), so any split and order of the rows counts the same PIEs
    from compress_gate._id_hash import hash_ids
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, (n, 2))
    groups = rng.random((n, 2)) < 0.5
    dense, comp = rng.integers(0, 2, (1, n, 2)), rng.integers(0, 2, (2, n, 2))
    h = hash_ids(np.array([f"s{i}" for i in range(n)]))

    def counts(rows: np.ndarray):
        return pie_counts(y[rows], dense[:, rows], comp[:, rows], groups[rows], NAMES, task="multilabel", seed=4,
                          id_hash=h[rows])
    whole = counts(np.arange(n))
    perm = rng.permutation(n)
    merged = counts(perm[:70]) + counts(perm[70:200]) + counts(perm[200:])
    assert merged.names == whole.names
    np.testing.assert_array_equal(merged.pie, whole.pie)
    np.testing.assert_array_equal(merged.size, whole.size)
    assert 0 < whole.pie[0] < 2 * n


def test_without_the_overall_row_the_joint_groups_are_unchanged():
    rng = np.random.default_rng(2)
    y, scores = (rng.random((60, 2)) < 0.5).astype(int), np.round(rng.random((60, 2)), 1)
    groups, w = rng.random((60, 2)) < 0.5, rng.integers(0, 3, (4, 60)).astype(np.float32)
    full = group_average_precision(y, scores, groups, NAMES, sample_weight=w)
    groups_only = group_average_precision(y, scores, groups, NAMES, sample_weight=w, overall=False)
    assert np.isnan(groups_only.ap[:, 0]).all()
    np.testing.assert_array_equal(groups_only.ap[:, 1:], full.ap[:, 1:])
