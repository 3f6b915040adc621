"""Threshold calibration: the intent (positives on calib = true positives), not the off-by-one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.mitigation import (apply_thresholds, calibrate_thresholds, read_thresholds,
                                      write_thresholds)


def _col(*values):
    return np.array(values, dtype=float).reshape(-1, 1)


def test_calibration_predicts_as_many_positives_as_true_positives():
    # k = 2 true positives; sorted scores .9 .8 | .7 .6 -> t = (.8 + .7) / 2 = .75 -> 2 positives.
    # The authors' code takes the k-th largest (.8) with a strict `>`: only 1 positive.
    y_true, y_score = _col(0, 1, 0, 1), _col(0.6, 0.9, 0.7, 0.8)
    t = calibrate_thresholds(y_true, y_score)
    assert t == pytest.approx([0.75])
    assert apply_thresholds(y_score, t).sum() == 2
    assert (y_score > 0.8).sum() == 1          # the off-by-one this avoids


def test_k_zero_predicts_no_positive():
    # no true positive: t = the largest score (.9), so nothing is strictly above it.
    # (The authors' k-th largest with k = 0 indexes the smallest score: almost all positive.)
    y_score = _col(0.2, 0.9, 0.4)
    t = calibrate_thresholds(_col(0, 0, 0), y_score)
    assert t == pytest.approx([0.9])
    assert apply_thresholds(y_score, t).sum() == 0


def test_all_positive_predicts_every_row_even_a_zero_score():
    y_score = _col(0.0, 0.3, 0.7)
    t = calibrate_thresholds(_col(1, 1, 1), y_score)
    assert t[0] < 0.0
    assert apply_thresholds(y_score, t).sum() == 3


def test_ties_take_the_closest_achievable_count():
    # k = 3; scores .9 .8 .8 .8 .6: #(s > .8) = 1, #(s >= .8) = 4 -> 4 is closer to 3.
    # t = (.8 + .6) / 2 = .7
    t = calibrate_thresholds(_col(1, 1, 1, 0, 0), _col(0.9, 0.8, 0.8, 0.8, 0.6))
    assert t == pytest.approx([0.7])
    # k = 2; scores .9 .8 .8 .6: 1 and 3 are equally close -> the smaller count, t = (.9 + .8) / 2
    t = calibrate_thresholds(_col(1, 1, 0, 0), _col(0.9, 0.8, 0.8, 0.6))
    assert t == pytest.approx([0.85])
    # all scores equal, k = 1 of 3: 0 (distance 1) beats 3 (distance 2): nothing positive
    y_score = _col(0.5, 0.5, 0.5)
    assert apply_thresholds(y_score, calibrate_thresholds(_col(1, 0, 0), y_score)).sum() == 0


def test_columns_are_calibrated_independently():
    y_true = np.array([[1, 0], [1, 0], [0, 0], [0, 1]])
    y_score = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    t = calibrate_thresholds(y_true, y_score)
    assert t == pytest.approx([0.75, 0.35])
    np.testing.assert_array_equal(apply_thresholds(y_score, t).sum(axis=0), y_true.sum(axis=0))


def test_property_count_matches_whenever_scores_are_distinct():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, k = int(rng.integers(1, 40)), int(rng.integers(1, 4))
        y_true = (rng.random((n, k)) < rng.random()).astype(int)
        y_score = rng.random((n, k))
        t = calibrate_thresholds(y_true, y_score)
        np.testing.assert_array_equal(apply_thresholds(y_score, t).sum(0), y_true.sum(0))


def test_calibration_needs_calib_rows_and_matching_shapes():
    with pytest.raises(InputError, match="threshold calibration needs calib rows"):
        calibrate_thresholds(np.zeros((0, 2)), np.zeros((0, 2)))
    with pytest.raises(InputError, match="must have the same 2-D shape"):
        calibrate_thresholds(np.zeros((3, 2)), np.zeros((3, 1)))


def test_apply_thresholds_default_and_shape_check():
    np.testing.assert_array_equal(apply_thresholds(np.array([[0.5, 0.51]]), None), [[0, 1]])
    with pytest.raises(InputError, match="3 thresholds for scores with 2 attributes"):
        apply_thresholds(np.zeros((1, 2)), np.zeros(3))


def test_thresholds_json_round_trip_and_validation(tmp_path):
    path = write_thresholds(tmp_path / "thresholds.json", np.array([0.25, 0.75]), task="multilabel",
                            attribute_names=["a", "b"])
    doc = json.loads(path.read_text())
    assert doc == {"schema_version": 1, "task": "multilabel", "attribute_names": ["a", "b"],
                   "thresholds": [0.25, 0.75]}
    loaded = read_thresholds(path)
    assert loaded.attribute_names == ("a", "b") and list(loaded.thresholds) == [0.25, 0.75]
    none = read_thresholds(write_thresholds(tmp_path / "mc.json", None, task="multiclass",
                                            attribute_names=["cat", "dog"]))
    assert none.thresholds is None and none.task == "multiclass"
    (tmp_path / "bad.json").write_text(json.dumps({**doc, "thresholds": [0.1]}))
    with pytest.raises(InputError, match="must be null or a list of 2 numbers"):
        read_thresholds(tmp_path / "bad.json")
    (tmp_path / "v2.json").write_text(json.dumps({**doc, "schema_version": 2}))
    with pytest.raises(InputError, match='expected a JSON object with "schema_version": 1'):
        read_thresholds(tmp_path / "v2.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="not a readable thresholds JSON file"):
        read_thresholds(tmp_path / "broken.json")
