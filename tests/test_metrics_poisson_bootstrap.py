"""The counter-based Poisson bootstrap: pinned hash and weights, sharding invariance, coverage."""

from __future__ import annotations

from math import exp, factorial

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.metrics import percentile_interval
from compress_gate.metrics import poisson_bootstrap
from compress_gate.metrics.poisson_bootstrap import hash_ids, poisson_weight_chunks, poisson_weights

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


def _mix_ref(x: int) -> int:
    """SplitMix64's finaliser in plain Python integers (an independent reference)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _hash_ref(text: str) -> int:
    state = 0x6A09E667F3BCC908
    for char in text:
        state = _mix_ref(state ^ ord(char))
    return _mix_ref(state ^ len(text))


def _weight_ref(seed: int, text: str, r: int) -> int:
    key = _mix_ref((_mix_ref(seed & _MASK) + (r + 1) * _GAMMA) & _MASK)
    x = _mix_ref((_mix_ref(_hash_ref(text) ^ key) + _GAMMA) & _MASK)
    return _inverse_ref(x >> 11)


def _inverse_ref(v: int) -> int:
    """The Poisson(1) inverse CDF of u = v 2^-53 (v a 53-bit integer), in plain Python."""
    u = v * 2.0 ** -53
    cdf, k = 0.0, 0
    while True:                          # inverse CDF: smallest k with u < F(k)
        cdf += exp(-1.0) / factorial(k)
        if u < cdf:
            return k
        k += 1


def test_hash_matches_reference_and_ignores_string_width():
    ids = np.array(["a", "ab", "sample-0001", "é€"])
    expected = [_hash_ref(s) for s in ids.tolist()]
    assert hash_ids(ids).tolist() == expected
    assert hash_ids(ids.astype("<U40")).tolist() == expected
    assert hash_ids(np.array([7, 12])).tolist() == [_hash_ref("7"), _hash_ref("12")]
    assert hash_ids(np.array([b"ab"])).tolist() == [_hash_ref("ab")]
    assert hash_ids(np.array([], dtype=str)).shape == (0,)


def test_hash_refuses_empty_or_2d_ids():
    with pytest.raises(InputError, match="empty string at row 1"):
        hash_ids(np.array(["a", ""]))
    with pytest.raises(InputError, match="1-D"):
        hash_ids(np.array([["a"]]))


def test_weights_match_reference_formula():
    ids = ["x", "y", "id-42"]
    w = poisson_weights(hash_ids(np.array(ids)), seed=-3, n_resamples=4, start=5)
    expected = [[_weight_ref(-3, s, r) for s in ids] for r in range(5, 9)]
    assert w.dtype == np.float32 and w.tolist() == expected


def test_the_inverse_cdf_table_gives_the_reference_counts_at_every_edge():
    # v at and beside every CDF threshold, at both ends of every table range, and at random; the
    # low 11 bits of x (dropped by v = x >> 11) set at random
    thresholds = [int(t) for t in poisson_bootstrap._THRESHOLDS]
    starts = [j << 40 for j in range(1 << 13)]
    rng = np.random.default_rng(0)
    v = sorted({min(max(t + d, 0), 2**53 - 1) for t in thresholds + starts + [s - 1 for s in starts] + [2**53 - 1]
                for d in (-1, 0, 1)} | {int(r) for r in rng.integers(0, 2**53, 2000, dtype=np.uint64)})
    x = (np.array(v, dtype=np.uint64) << np.uint64(11)) | rng.integers(0, 2**11, len(v), dtype=np.uint64)
    out = np.empty(len(v), np.float32)
    poisson_bootstrap._inverse_cdf(x, np.empty_like(x), out)
    assert out.tolist() == [_inverse_ref(value) for value in v]
    assert max(out) == len(thresholds)                  # the rarest count (v = 2^53 - 1) was reached


def test_weights_are_poisson_one():
    w = poisson_weights(hash_ids(np.arange(20_000)), seed=0, n_resamples=50)
    n = w.size                                   # 1e6 draws: standard errors about 1e-3
    assert w.mean() == pytest.approx(1.0, abs=5e-3)
    assert w.var() == pytest.approx(1.0, abs=1e-2)
    for k in range(4):
        assert (w == k).sum() / n == pytest.approx(exp(-1.0) / factorial(k), abs=3e-3)


def test_one_shard_equals_37_shuffled_shards():
    rng = np.random.default_rng(1)
    ids = np.array([f"img_{i:06d}.jpg" for i in rng.permutation(5_000)])
    whole = poisson_weights(hash_ids(ids), seed=11, n_resamples=30)
    order = rng.permutation(ids.size)
    shards = np.array_split(order, 37)
    for s in rng.permutation(len(shards)):
        rows = shards[s]
        part = poisson_weights(hash_ids(ids[rows].astype(f"<U{20 + s}")), seed=11, n_resamples=30)
        np.testing.assert_array_equal(part, whole[:, rows])


def test_chunks_concatenate_to_the_whole_and_seed_matters():
    h = hash_ids(np.array([f"s{i}" for i in range(300)]))
    whole = poisson_weights(h, seed=5, n_resamples=23)
    for chunk in (1, 7, 23, 100):
        np.testing.assert_array_equal(np.concatenate(list(poisson_weight_chunks(
            h, seed=5, n_resamples=23, chunk_size=chunk))), whole)
    assert not np.array_equal(poisson_weights(h, seed=6, n_resamples=23), whole)
    assert poisson_weights(h, seed=5, n_resamples=0).shape == (0, 300)


def test_weights_refuse_bad_arguments():
    with pytest.raises(InputError, match="uint64"):
        poisson_weights(np.arange(3), seed=0, n_resamples=2)
    with pytest.raises(InputError, match="at least 1 resample"):
        list(poisson_weight_chunks(hash_ids(np.array(["a"])), seed=0, n_resamples=0))


# --- coverage on simulated data --------------------------------------------------------------
def _coverage(n_datasets: int, n_samples: int, *, n_resamples: int = 200) -> tuple[float, float]:
    """Share of 95 % percentile intervals covering the truth: (Bernoulli rate, paired difference).

    Data set d: rows with ids ``d-i``; teacher correct with p = 0.8; the student agrees with
    the teacher except a flip with probability 0.1, so its accuracy is 0.8*0.9 + 0.2*0.1 = 0.74
    and the true difference student - teacher is -0.06. Rate: the teacher's accuracy 0.8.
    Teacher and student share each resample (weights of the id). Seed = d.
    """
    rng = np.random.default_rng(2024)
    covered = np.zeros(2)
    for d in range(n_datasets):
        teacher = (rng.random(n_samples) < 0.8).astype(np.float64)
        student = np.where(rng.random(n_samples) < 0.1, 1.0 - teacher, teacher)
        w = poisson_weights(hash_ids(np.char.add(f"{d}-", np.arange(n_samples).astype(str))),
                            seed=d, n_resamples=n_resamples).astype(np.float64)
        total = w.sum(axis=1)
        rate = w @ teacher / total
        diff = w @ (student - teacher) / total
        for j, (values, truth) in enumerate(((rate, 0.8), (diff, -0.06))):
            lo, hi = percentile_interval(values)
            covered[j] += lo <= truth <= hi
    return covered[0] / n_datasets, covered[1] / n_datasets


def test_coverage_fast():
    # 150 data sets: Monte-Carlo SE sqrt(.95 * .05 / 150) = 0.018; 3 SE = 0.053
    rate, diff = _coverage(150, 400)
    assert abs(rate - 0.95) <= 0.053 and abs(diff - 0.95) <= 0.053, (rate, diff)


@pytest.mark.slow
def test_coverage_slow():
    # 1000 data sets: SE 0.0069; 3 SE = 0.021. Percentile intervals from 200 resamples of
    # n = 1000 undercover by about 0.5 point (a known small-B, finite-n effect), inside that.
    rate, diff = _coverage(1000, 1000)
    print(f"coverage over 1000 data sets: rate {rate:.3f}, paired difference {diff:.3f}")
    assert abs(rate - 0.95) <= 0.021 and abs(diff - 0.95) <= 0.021, (rate, diff)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_weights_do_not_depend_on_the_number_of_threads(monkeypatch, threads):
    hashes = hash_ids(np.array([f"id{i}" for i in range(2 * poisson_bootstrap._BLOCK + 5)]))
    one = poisson_weights(hashes, seed=9, n_resamples=7, start=2)
    monkeypatch.setattr(poisson_bootstrap, "_threads", lambda: threads)
    assert np.array_equal(poisson_weights(hashes, seed=9, n_resamples=7, start=2), one)
    assert poisson_weights(hashes, seed=9, n_resamples=0).shape == (0, hashes.size)


def test_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert poisson_bootstrap._threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert 1 <= poisson_bootstrap._threads() <= 4
