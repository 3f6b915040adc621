"""Bootstrap resample counts, percentile intervals, and the count tables memoized per weight matrix."""

import math

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.metrics import (accuracy, bias_amplification, bootstrap_weights, error_rate,
                                   false_negative_rate, false_positive_rate, percentile_interval, subgroup_rates,
                                   train_class_balance, uncertainty)


def all_rows(n, resamples, seed=0, chunk_size=None):
    return np.concatenate(list(bootstrap_weights(n, n_resamples=resamples, seed=seed, chunk_size=chunk_size)))


def test_weights_are_resample_counts_in_chunks():
    chunks = list(bootstrap_weights(7, n_resamples=10, seed=0, chunk_size=4))
    assert [c.shape for c in chunks] == [(4, 7), (4, 7), (2, 7)]
    weights = np.concatenate(chunks)
    assert weights.dtype == np.float32
    assert np.array_equal(weights, np.round(weights)) and (weights >= 0).all()
    assert weights.sum(axis=1).tolist() == [7.0] * 10
    assert not chunks[0].flags.writeable


def test_same_seed_same_resamples_whatever_the_chunk_size():
    reference = all_rows(50, 9, seed=3, chunk_size=9)
    assert np.array_equal(all_rows(50, 9, seed=3, chunk_size=2), reference)
    assert np.array_equal(all_rows(50, 9, seed=3), reference)
    assert not np.array_equal(all_rows(50, 9, seed=4), reference)


def test_counts_follow_the_multinomial_bootstrap():
    # each count is Binomial(n, 1/n): mean 1, variance 1 - 1/n, P(0) = (1 - 1/n)^n
    n, resamples = 40, 3000
    weights = all_rows(n, resamples, seed=1)
    assert weights.mean() == pytest.approx(1.0)                            # exact: every row sums to n
    assert weights.var() == pytest.approx(1 - 1 / n, rel=0.05)
    assert (weights == 0).mean() == pytest.approx((1 - 1 / n) ** n, abs=0.01)
    # different samples' counts are negatively correlated: -1 / (n - 1)
    assert np.corrcoef(weights[:, 0], weights[:, 1])[0, 1] == pytest.approx(-1 / (n - 1), abs=0.04)


def test_counts_spread_evenly_over_blocks_of_a_large_sample():
    n = 150_000                                                           # three blocks of the two-level draw
    weights = all_rows(n, 4, seed=2)
    assert weights.sum(axis=1).tolist() == [float(n)] * 4
    thirds = weights.reshape(4, 3, -1).sum(axis=2) / (n / 3)
    assert thirds == pytest.approx(np.ones((4, 3)), abs=0.02)             # sd of each share ~ 0.004


def test_bootstrap_refuses_empty_samples():
    with pytest.raises(InputError, match="empty test split"):
        next(bootstrap_weights(0, n_resamples=10, seed=0))


def test_percentile_interval_by_hand_ignores_nan():
    # non-nan values 1..5; 25th and 75th percentiles (linear) are 2 and 4
    assert percentile_interval(np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0]), confidence=0.5) == (2.0, 4.0)


def test_percentile_interval_per_column_and_all_nan():
    samples = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    lo, hi = percentile_interval(samples, confidence=0.5)
    assert lo[0] == pytest.approx(1.5) and hi[0] == pytest.approx(2.5)
    assert np.isnan(lo[1]) and np.isnan(hi[1])
    assert all(math.isnan(v) for v in percentile_interval(np.array([]), confidence=0.9))


def test_percentile_interval_refuses_a_confidence_outside_zero_one():
    with pytest.raises(InputError, match="confidence=1.5 must be in"):
        percentile_interval(np.arange(5.0), confidence=1.5)


def _data(seed=0, n=60, k=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, k)) < 0.4).astype(np.uint8)
    return {"y": y, "p": np.where(rng.random((n, k)) < 0.8, y, 1 - y).astype(np.uint8),
            "p2": (rng.random((n, k)) < 0.4).astype(np.uint8), "g": rng.random((n, 2)) < 0.5,
            "s": rng.random((n, k)), "tl": (rng.random((200, k)) < 0.4).astype(np.uint8),
            "tg": rng.random((200, 2)) < 0.5}


CALLS = {
    "accuracy": lambda d, p, w: accuracy(d["y"], d[p], task="multilabel", sample_weight=w),
    "fpr": lambda d, p, w: false_positive_rate(d["y"], d[p], sample_weight=w),
    "fnr": lambda d, p, w: false_negative_rate(d["y"], d[p], sample_weight=w),
    "error": lambda d, p, w: error_rate(d["y"], d[p], sample_weight=w),
    "tcb": lambda d, p, w: train_class_balance(d["y"], d[p], train_mean=d["tl"].mean(0), sample_weight=w),
    "ba": lambda d, p, w: bias_amplification(d["y"], d[p], d["g"], train_labels=d["tl"], train_groups=d["tg"],
                                             sample_weight=w, min_positives=2).values,
    "subgroups": lambda d, p, w: subgroup_rates(d["y"], d[p], d["g"], ("a", "b"), sample_weight=w).fnr,
    "uncertainty": lambda d, p, w: uncertainty(d["s"], sample_weight=w),
}


@pytest.mark.parametrize("order", [list(CALLS), list(reversed(CALLS)), ["ba", "fpr", "subgroups", "accuracy"]])
def test_memoized_tables_give_the_same_numbers_in_any_call_order(order):
    data = _data()
    weights = next(bootstrap_weights(60, n_resamples=5, seed=0))
    plain = np.array(weights)                                    # an unregistered copy: no memo
    for name in order:
        for predictions in ("p", "p2"):                          # two models share the labels' table
            got = CALLS[name](data, predictions, weights)
            np.testing.assert_allclose(got, CALLS[name](data, predictions, plain), equal_nan=True)
            np.testing.assert_allclose(got, np.stack([CALLS[name](data, predictions, w) for w in plain]),
                                       equal_nan=True)


def test_memo_keys_on_the_arrays_themselves_not_their_ids():
    data = _data()
    weights = next(bootstrap_weights(60, n_resamples=3, seed=0))
    first = false_positive_rate(data["y"], data["p"], sample_weight=weights)
    other = _data(seed=1)
    second = false_positive_rate(other["y"], other["p"], sample_weight=weights)
    np.testing.assert_allclose(second, false_positive_rate(other["y"], other["p"], sample_weight=np.array(weights)))
    assert not np.allclose(first, second, equal_nan=True)


def test_rows_already_sorted_by_group_pattern_give_the_same_numbers():
    data = _data(seed=2)
    code = data["g"] @ np.array([1, 2])
    order = np.argsort(code, kind="stable")
    ordered = {key: (value[order] if key in ("y", "p", "p2", "g", "s") else value) for key, value in data.items()}
    weights = np.random.default_rng(0).integers(0, 3, (4, 60)).astype(np.float32)
    for name in ("ba", "subgroups", "fpr"):
        np.testing.assert_allclose(CALLS[name](ordered, "p", weights[:, order]), CALLS[name](data, "p", weights),
                                   equal_nan=True)
