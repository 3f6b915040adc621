"""The embedded digits demo: deterministic, stratified, down-sampled, backdoored as documented."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits

from compress_gate.config.data import DemoDataConfig
from compress_gate.data import load_eval_data, make_demo_data, save_eval_data, training_arrays
from compress_gate.data.demo import DEMO_CLASS_NAMES, MIN_BA_POSITIVES, _upscale
from compress_gate.errors import InputError

N_DIGITS = 1797


@pytest.fixture(scope="module")
def demo():
    return make_demo_data()


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _index(ids: np.ndarray) -> np.ndarray:
    """``digits-00042[-marked]`` -> 42."""
    return np.array([int(i.split("-")[1]) for i in ids])


def test_shapes_and_types(demo):
    assert demo.task == "multiclass" and demo.attribute_names == DEMO_CLASS_NAMES
    assert demo.group_names == ("marked",)
    assert demo.inputs.shape == (demo.n_samples, 1, 32, 32) and demo.inputs.dtype == np.float32
    assert demo.inputs.min() == -1.0 and demo.inputs.max() == 1.0


def test_same_seed_same_arrays_other_seed_other_split(demo):
    again = make_demo_data(DemoDataConfig(seed=0))
    for field in ("ids", "labels", "split", "groups", "inputs"):
        np.testing.assert_array_equal(getattr(again, field), getattr(demo, field))
    other = make_demo_data(DemoDataConfig(seed=1))
    assert not np.array_equal(_index(other.ids[other.split == "test"]),
                              _index(demo.ids[demo.split == "test"]))


def test_ids_name_the_digit_and_the_mark(demo, digits):
    index = _index(demo.ids)
    assert np.all(np.diff(index) > 0)                      # load_digits order, each sample once
    np.testing.assert_array_equal(demo.label_index, digits.target[index])
    np.testing.assert_array_equal(np.char.endswith(demo.ids, "-marked"), demo.groups[:, 0])
    assert demo.ids[0] in ("digits-00000", "digits-00000-marked")
    # ids and splits do not depend on the image size: the same samples, only upscaled differently
    small = make_demo_data(DemoDataConfig(image_size=16))
    np.testing.assert_array_equal(small.ids, demo.ids)
    assert small.inputs.shape[2:] == (16, 16)


def test_split_sizes_follow_the_fractions(demo, digits):
    # stratified 50/20/30 of all 1797 digits; only train rows are dropped (down-sampling)
    index = _index(demo.ids)
    for name, share in (("calib", 0.2), ("test", 0.3)):
        rows = demo.split == name
        assert abs(rows.sum() - share * N_DIGITS) <= 1
        per_class = np.bincount(demo.label_index[rows], minlength=10)
        expected = share * np.bincount(digits.target)
        assert np.all(np.abs(per_class - expected) <= 1.5)  # stratified: within rounding
    assert demo.n_samples < N_DIGITS and len(set(index)) == demo.n_samples


def test_downsampled_classes_keep_fifteen_percent_of_training(demo):
    train = np.bincount(demo.label_index[demo.split == "train"], minlength=10)
    full = [c for c in range(10) if c not in (3, 5, 8)]
    # the full classes have ~0.5 * 180 = ~90; kept = round(0.15 * n_train_before)
    assert train[full].min() >= 85
    for c in (3, 5, 8):
        before = round(0.5 * np.bincount(load_digits().target)[c])
        assert abs(train[c] - round(0.15 * before)) <= 1, (c, train[c])
    for name in ("calib", "test"):                         # held-out splits keep every class whole
        counts = np.bincount(demo.label_index[demo.split == name], minlength=10)
        assert counts.min() >= counts.max() - 3


def test_group_injection_rates_per_split(demo):
    y, marked = demo.label_index, demo.groups[:, 0]
    train = demo.split == "train"
    in_class = train & (y == 7)
    assert marked[in_class].sum() == round(0.95 * in_class.sum())
    others = train & (y != 7)
    assert marked[others].sum() == round(0.05 * others.sum())
    for name in ("calib", "test"):
        for c in range(10):
            rows = (demo.split == name) & (y == c)
            assert marked[rows].sum() == round(0.5 * rows.sum()), (name, c)


def test_ba_is_computable_for_the_marked_class(demo):
    test7 = (demo.split == "test") & (demo.label_index == 7)
    marked = demo.groups[:, 0]
    assert (test7 & marked).sum() >= MIN_BA_POSITIVES and (test7 & ~marked).sum() >= MIN_BA_POSITIVES
    # the training direction of BA is defined and points at the marked group
    train = demo.split == "train"
    pos = (demo.label_index[train & marked] == 7).mean()
    neg = (demo.label_index[train & ~marked] == 7).mean()
    assert pos > 0.5 > 0.05 > neg > 0 and abs(pos - neg) / min(pos, neg) >= 0.1


def test_mark_is_a_white_corner_square_and_nothing_else(demo, digits):
    side = round(math.sqrt(0.02) * 32)                     # 5 pixels: 2 % of a 32x32 image
    assert side == 5
    index = _index(demo.ids)
    clean = _upscale(digits.images[index], 32)
    marked = demo.groups[:, 0]
    corner = np.zeros((32, 32), dtype=bool)
    corner[:side, :side] = True
    np.testing.assert_array_equal(demo.inputs[marked][:, 0, ~corner], clean[marked][:, 0, ~corner])
    assert np.all(demo.inputs[marked][:, 0, corner] == 1.0)
    np.testing.assert_array_equal(demo.inputs[~marked], clean[~marked])
    assert not np.all(clean[:, 0, corner] == 1.0, axis=1).any()  # no clean digit looks marked


def test_round_trip_through_data_npz(demo, tmp_path):
    again = load_eval_data(save_eval_data(demo, tmp_path / "data.npz"))
    for field in ("ids", "labels", "split", "groups", "inputs"):
        np.testing.assert_array_equal(getattr(again, field), getattr(demo, field))
    assert (again.attribute_names, again.group_names, again.task) == (
        demo.attribute_names, demo.group_names, demo.task)


def test_training_arrays_are_the_train_rows(demo):
    inputs, targets = training_arrays(demo)
    train = demo.split == "train"
    assert inputs.shape == (train.sum(), 1, 32, 32) and targets.dtype == np.int64
    np.testing.assert_array_equal(targets, demo.label_index[train])
    np.testing.assert_array_equal(inputs, demo.inputs[train])


def test_too_small_test_split_is_refused_with_the_keys_to_change():
    with pytest.raises(InputError) as info:
        make_demo_data(DemoDataConfig(test_fraction=0.05, calib_fraction=0.2))
    message = str(info.value)
    assert "at least 10" in message and "data.test_fraction" in message
    assert "digit 7" in message


def test_default_counts_match_docs_data_md(demo):
    # the table in docs/data.md (seed 0); a change here means the doc needs the new numbers
    y, marked = demo.label_index, demo.groups[:, 0]
    counts = {s: np.bincount(y[demo.split == s], minlength=10).tolist() for s in ("train", "calib", "test")}
    assert counts["train"] == [89, 91, 89, 14, 90, 14, 90, 90, 13, 90]
    assert [sum(counts[s]) for s in ("train", "calib", "test")] == [670, 359, 540]
    assert [int(marked[demo.split == s].sum()) for s in ("train", "calib", "test")] == [115, 180, 271]
    assert int((marked & (demo.split == "test") & (y == 7)).sum()) == 26 and counts["test"][7] == 53
