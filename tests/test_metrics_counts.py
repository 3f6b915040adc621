"""Sufficient statistics: each metric family is ``*_from_counts`` of additive ``*_counts``.

Pinned here: the counts by hand, the composition property (the public function equals
finishing its counts), and exactness under re-sharding (counts of shards, added in any
order, equal the counts of the whole set bit for bit, with Poisson resample weights).
"""

import numpy as np
import pytest

from compress_gate import metrics
from compress_gate.metrics.calibration import SCORE_UNIT
from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weights


def _data(n=300, k=3, g=2, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.4).astype(np.uint8)
    score = rng.random((n, k)).astype(np.float32)
    pred = (score > 0.5).astype(np.uint8)
    groups = (rng.random((n, g)) < 0.5).astype(np.uint8)
    ids = np.char.add("s", np.arange(n).astype(str))
    return y, pred, score, groups, ids


def test_subgroup_counts_by_hand():
    # rows: all, g0, g1, then g0&g1, g0&~g1, ~g0&g1, ~g0&~g1
    y = np.array([[1], [1], [0], [0]])
    p = np.array([[1], [0], [1], [0]])
    g = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    c = metrics.subgroup_counts(y, p, g)
    assert c.size.tolist() == [4, 2, 2, 1, 1, 1, 1]
    assert c.positives[:, 0].tolist() == [2, 2, 1, 1, 1, 0, 0]
    assert c.predicted[:, 0].tolist() == [2, 1, 1, 0, 1, 1, 0]
    assert c.tp[:, 0].tolist() == [1, 1, 0, 0, 1, 0, 0]
    assert metrics.subgroup_names(("g0", "g1")) == ("all", "g0", "g1", "g0 & g1", "g0 & not g1",
                                                     "not g0 & g1", "not g0 & not g1")
    # FPR of all: negatives rows 2, 3; predicted positive: row 2 -> 1/2; FNR: positives 0, 1; missed 1 -> 1/2
    assert metrics.false_positive_rate_from_counts(c).tolist() == [0.5]
    assert metrics.false_negative_rate_from_counts(c).tolist() == [0.5]
    assert metrics.error_rate_from_counts(c).tolist() == [0.5]
    assert metrics.accuracy_from_counts(c, task="multilabel") == 0.5


def test_train_counts_by_hand():
    # 4 training rows; group 0 holds rows 0, 1; label positive in rows 0, 1, 2
    c = metrics.train_counts(np.array([[1], [1], [1], [0]]), np.array([[1], [1], [0], [0]]))
    assert float(c.n) == 4 and c.in_group.tolist() == [2] and c.positives.tolist() == [3]
    assert c.positives_in.tolist() == [[2]]
    assert c.mean.tolist() == [0.75]


def test_calibration_counts_by_hand():
    # one bin (8): gaps 0.8 - 1 and 0.8 - 0 with weights 3, 1 -> q = round(0.8 * 2^24)
    q = np.rint(np.float32(0.8) / SCORE_UNIT)
    c = metrics.calibration_counts(np.array([[1], [0]]), np.array([[0.8], [0.8]], dtype=np.float32),
                                   sample_weight=np.array([3.0, 1.0]))
    assert float(c.total) == 4.0
    assert c.gap[0, 8] == 3 * (q - 2**24) + q and np.count_nonzero(c.gap) == 1
    assert metrics.expected_calibration_error_from_counts(c) == pytest.approx([0.05])
    u = metrics.uncertainty_counts(np.array([[0.1], [0.5], [0.95], [0.89]]))
    assert float(u.total) == 4 and u.uncertain.tolist() == [2] and metrics.uncertainty_from_counts(u).tolist() == [0.5]


@pytest.mark.parametrize("weights", ["none", "vector", "resamples"])
def test_public_functions_are_the_composition(weights):
    y, pred, score, groups, ids = _data()
    w = {"none": None, "vector": np.arange(len(y)) % 3 * 1.0,
         "resamples": poisson_weights(hash_ids(ids), seed=3, n_resamples=7)}[weights]
    c = metrics.subgroup_counts(y, pred, groups, sample_weight=w)
    train = metrics.train_counts(y[:100], groups[:100])
    same = np.testing.assert_array_equal
    same(metrics.false_positive_rate(y, pred, sample_weight=w), metrics.false_positive_rate_from_counts(c))
    same(metrics.false_negative_rate(y, pred, sample_weight=w), metrics.false_negative_rate_from_counts(c))
    same(metrics.error_rate(y, pred, sample_weight=w), metrics.error_rate_from_counts(c))
    same(metrics.accuracy(y, pred, task="multilabel", sample_weight=w),
         metrics.accuracy_from_counts(c, task="multilabel"))
    same(metrics.train_class_balance(y, pred, train_mean=train.mean, sample_weight=w),
         metrics.train_class_balance_from_counts(c, train_mean=train.mean))
    ba = metrics.bias_amplification(y, pred, groups, train_labels=y[:100], train_groups=groups[:100],
                                    sample_weight=w, min_positives=3)
    ba_c = metrics.bias_amplification_from_counts(c, train, min_positives=3)
    same(ba.values, ba_c.values)
    same(ba.direction, ba_c.direction)
    assert (ba.reasons == ba_c.reasons).all()
    table = metrics.subgroup_rates(y, pred, groups, ("a", "b"), sample_weight=w)
    table_c = metrics.subgroup_rates_from_counts(c, ("a", "b"))
    for field in ("sizes", "pooled_error", "pooled_fpr", "pooled_fnr", "error", "fpr", "fnr"):
        same(getattr(table, field), getattr(table_c, field))
    same(metrics.expected_calibration_error(y, score, sample_weight=w),
         metrics.expected_calibration_error_from_counts(metrics.calibration_counts(y, score, sample_weight=w)))
    same(metrics.uncertainty(score, sample_weight=w),
         metrics.uncertainty_from_counts(metrics.uncertainty_counts(score, sample_weight=w)))


def test_ece_fixed_point_is_within_its_rounding_of_the_real_formula():
    y, _, score, _, _ = _data(n=500, k=2, seed=4)
    s = score.astype(np.float64)
    real = np.zeros(2)
    for k in range(2):                  # the formula, bin by bin, in float64
        bins = np.minimum(np.floor(s[:, k] * 10), 9)
        real[k] = sum(abs((s[bins == b, k] - y[bins == b, k]).sum()) for b in range(10)) / len(y)
    assert np.abs(metrics.expected_calibration_error(y, score) - real).max() <= 2.0 ** -25


def _shard_sum(tables, order):
    total = tables[order[0]]
    for i in order[1:]:
        total = total + tables[i]
    return total


def test_counts_of_shards_in_any_order_equal_the_whole_bit_for_bit():
    y, pred, score, groups, ids = _data(n=700, seed=1)
    rng = np.random.default_rng(2)
    perm = rng.permutation(len(y))
    parts = np.array_split(perm, 7)                    # 7 shards of shuffled rows

    def weights(rows):
        return poisson_weights(hash_ids(ids[rows]), seed=9, n_resamples=11)
    whole_w = weights(np.arange(len(y)))
    whole = (metrics.subgroup_counts(y, pred, groups, sample_weight=whole_w),
             metrics.calibration_counts(y, score, sample_weight=whole_w),
             metrics.uncertainty_counts(score, sample_weight=whole_w),
             metrics.train_counts(y, groups))
    shards = [(metrics.subgroup_counts(y[r], pred[r], groups[r], sample_weight=weights(r)),
               metrics.calibration_counts(y[r], score[r], sample_weight=weights(r)),
               metrics.uncertainty_counts(score[r], sample_weight=weights(r)),
               metrics.train_counts(y[r], groups[r])) for r in parts]
    for order in ([0, 1, 2, 3, 4, 5, 6], [6, 2, 4, 0, 5, 1, 3]):
        merged = [_shard_sum([s[f] for s in shards], order) for f in range(4)]
        for got, want in zip(merged, whole):
            for field in want.__dataclass_fields__:
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    ece_whole = metrics.expected_calibration_error(y, score, sample_weight=whole_w)
    np.testing.assert_array_equal(metrics.expected_calibration_error_from_counts(
        _shard_sum([s[1] for s in shards], [3, 1, 0, 2, 6, 5, 4])), ece_whole)


def test_empty_counts_finish_as_nan():
    empty = np.zeros((0, 2), dtype=np.uint8)
    c = metrics.subgroup_counts(empty, empty)
    assert np.isnan(metrics.false_positive_rate_from_counts(c)).all()
    assert np.isnan(metrics.accuracy_from_counts(c, task="multilabel"))
    assert np.isnan(metrics.expected_calibration_error_from_counts(metrics.calibration_counts(empty, empty))).all()
