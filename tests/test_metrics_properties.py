"""Properties every weighted metric must have, over a registry of them (hypothesis-generated data).

- shuffling the rows changes nothing;
- unit weights equal no weights;
- integer weights equal repeated rows;
- values stay in their bounds;
- weights of shape (B, n) equal B separate calls with (n,) weights.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compress_gate.metrics import (accuracy, bias_amplification, error_rate, expected_calibration_error,
                                   false_negative_rate, false_positive_rate, label_interrelation, subgroup_rates,
                                   train_class_balance, uncertainty)

METRICS = {
    "accuracy": lambda d, w: accuracy(d["y"], d["p"], task="multilabel", sample_weight=w),
    "fpr": lambda d, w: false_positive_rate(d["y"], d["p"], sample_weight=w),
    "fnr": lambda d, w: false_negative_rate(d["y"], d["p"], sample_weight=w),
    "error": lambda d, w: error_rate(d["y"], d["p"], sample_weight=w),
    "tcb": lambda d, w: train_class_balance(d["y"], d["p"], train_mean=d["train_mean"], sample_weight=w),
    "uncertainty": lambda d, w: uncertainty(d["s"], sample_weight=w),
    "ece": lambda d, w: expected_calibration_error(d["y"], d["s"], sample_weight=w),
    "ba": lambda d, w: bias_amplification(d["y"], d["p"], d["g"], train_labels=d["tl"], train_groups=d["tg"],
                                          sample_weight=w, min_positives=2).values,
    "subgroup_fnr": lambda d, w: subgroup_rates(d["y"], d["p"], d["g"], None, sample_weight=w).fnr,
    "subgroup_pooled_fpr": lambda d, w: subgroup_rates(d["y"], d["p"], d["g"], None, sample_weight=w).pooled_fpr,
    "subgroup_sizes": lambda d, w: subgroup_rates(d["y"], d["p"], d["g"], None, sample_weight=w).sizes,
    "r2": lambda d, w: label_interrelation(d["p"], sample_weight=w),
}
BOUNDS = {name: (0.0, 1.0) for name in METRICS}
BOUNDS.update({"ba": (-1.0, 1.0), "tcb": (0.0, np.inf), "subgroup_sizes": (0.0, np.inf)})
RESAMPLED = [name for name in METRICS if name != "r2"]       # R² takes (n,) weights only
PER_SAMPLE = ("y", "p", "s", "g")

DATA = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 3), st.integers(1, 2))
SETTINGS = settings(max_examples=20, deadline=None)


def make(seed: int, n: int, k: int, g: int) -> dict:
    rng = np.random.default_rng(seed)
    y = rng.random((n, k)) < 0.4
    s = np.clip(np.where(y, 0.7, 0.3) + rng.normal(0, 0.3, (n, k)), 0, 1)
    s[rng.random((n, k)) < 0.1] = 1.0                                  # some scores exactly 1
    tl = rng.random((4 * n + 4, k)) < 0.4
    return {"y": y.astype(np.uint8), "p": (s > 0.5).astype(np.uint8), "s": s, "g": rng.random((n, g)) < 0.5,
            "tl": tl.astype(np.uint8), "tg": rng.random((4 * n + 4, g)) < 0.5, "train_mean": tl.mean(axis=0)}


def close(a, b, rtol: float = 1e-9) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("name", METRICS)
@SETTINGS
@given(DATA)
def test_shuffling_rows_changes_nothing(name, params):
    data = make(*params)
    order = np.random.default_rng(params[0] + 1).permutation(params[1])
    shuffled = {**data, **{key: data[key][order] for key in PER_SAMPLE}}
    weights = np.random.default_rng(params[0] + 2).integers(0, 3, params[1]).astype(float)
    close(METRICS[name](shuffled, weights[order]), METRICS[name](data, weights))


@pytest.mark.parametrize("name", METRICS)
@SETTINGS
@given(DATA)
def test_unit_weights_equal_no_weights(name, params):
    data = make(*params)
    close(METRICS[name](data, np.ones(params[1])), METRICS[name](data, None))


@pytest.mark.parametrize("name", METRICS)
@SETTINGS
@given(DATA)
def test_integer_weights_equal_repeated_rows(name, params):
    data = make(*params)
    weights = np.random.default_rng(params[0] + 3).integers(0, 4, params[1])
    repeated = {**data, **{key: np.repeat(data[key], weights, axis=0) for key in PER_SAMPLE}}
    close(METRICS[name](data, weights), METRICS[name](repeated, None))


@pytest.mark.parametrize("name", METRICS)
@SETTINGS
@given(DATA)
def test_values_stay_in_bounds(name, params):
    data = make(*params)
    lo, hi = BOUNDS[name]
    for weights in (None, np.random.default_rng(params[0]).random(params[1])):
        values = np.asarray(METRICS[name](data, weights), dtype=float)
        values = values[~np.isnan(values)]
        assert np.all((values >= lo - 1e-12) & (values <= hi + 1e-12))


@pytest.mark.parametrize("name", RESAMPLED)
@SETTINGS
@given(DATA, st.integers(1, 4))
def test_resample_weights_equal_separate_calls(name, params, n_resamples):
    data = make(*params)
    weights = np.random.default_rng(params[0] + 4).integers(0, 3, (n_resamples, params[1])).astype(np.float32)
    together = np.asarray(METRICS[name](data, weights))
    assert together.shape[0] == n_resamples
    # float32 weights multiply in float32: counts are exact, sums of scores (ECE) round alike to ~1e-7
    close(together, np.stack([METRICS[name](data, w) for w in weights]), rtol=1e-6)
