"""The eval-data and predictions contract: round trips, and one clear error per bad input."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.data import (EvalData, align_scores, load_eval_data, load_predictions,
                                save_eval_data, save_predictions)
from compress_gate.errors import InputError

N = 12


def _columns(**overrides) -> dict[str, np.ndarray]:
    """A valid multi-label data.npz as columns: 4 train, 4 calib, 4 test rows."""
    cols = {
        "ids": np.array([f"s{i:02d}" for i in range(N)]),
        "labels": np.array([[i % 2, (i // 2) % 2] for i in range(N)], dtype=np.uint8),
        "split": np.array(["train"] * 4 + ["calib"] * 4 + ["test"] * 4),
        "group__male": np.array([0, 1] * 6, dtype=np.uint8),
        "attribute_names": np.array(["smiling", "bald"]),
    }
    cols.update(overrides)
    return {k: v for k, v in cols.items() if v is not None}


def _write(tmp_path, name="data.npz", **overrides):
    path = tmp_path / name
    np.savez(path, **_columns(**overrides))
    return path


def _error(fn, *args) -> str:
    with pytest.raises(InputError) as info:
        fn(*args)
    return str(info.value)


def test_eval_data_round_trip_multilabel(tmp_path):
    data = load_eval_data(_write(tmp_path))
    assert data.task == "multilabel" and data.n_samples == N and data.n_attributes == 2
    assert data.group_names == ("male",) and data.groups.dtype == bool
    assert data.attribute_names == ("smiling", "bald")
    assert data.mask("test").sum() == 4 and data.mask("calib", "test").sum() == 8
    again = load_eval_data(save_eval_data(data, tmp_path / "copy.npz"))
    for field in ("ids", "labels", "split", "groups"):
        np.testing.assert_array_equal(getattr(again, field), getattr(data, field))
    assert (again.task, again.attribute_names, again.group_names) == (data.task, data.attribute_names,
                                                                       data.group_names)
    sub = data.subset(data.mask("test"))
    assert sub.n_samples == 4 and list(sub.split) == ["test"] * 4


def test_eval_data_multiclass_one_hot_and_round_trip(tmp_path):
    labels = np.array([0, 1, 2, 1] * 3)
    path = _write(tmp_path, labels=labels, attribute_names=np.array(["cat", "dog", "fox"]))
    data = load_eval_data(path)
    assert data.task == "multiclass"
    np.testing.assert_array_equal(data.labels[:4], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(data.label_index, labels)
    again = load_eval_data(save_eval_data(data, tmp_path / "copy.npz"))
    np.testing.assert_array_equal(again.labels, data.labels)
    assert again.attribute_names == ("cat", "dog", "fox")


def test_multiclass_without_names_takes_k_from_labels(tmp_path):
    data = load_eval_data(_write(tmp_path, labels=np.array([0, 3] * 6), attribute_names=None))
    assert data.n_attributes == 4 and data.attribute_names == ("class_0", "class_1", "class_2", "class_3")


def test_inputs_are_kept_as_float32(tmp_path):
    inputs = np.arange(N * 3 * 2 * 2, dtype=np.float64).reshape(N, 3, 2, 2)
    data = load_eval_data(_write(tmp_path, inputs=inputs))
    assert data.inputs.dtype == np.float32 and data.inputs.shape == (N, 3, 2, 2)


@pytest.mark.parametrize("overrides, start", [
    ({"ids": None}, "missing column `ids`"),
    ({"labels": None}, "missing column `labels`"),
    ({"split": None}, "missing column `split`"),
    ({"ids": np.array(["a"] * N)}, "`ids` must be unique; 1 id(s) occur more than once, e.g. 'a'"),
    ({"ids": np.array([f"s{i}" for i in range(N - 1)] + [""])}, "`ids` holds 1 empty string(s)"),
    ({"ids": np.arange(N, dtype=float)}, "`ids` has dtype float64"),
    ({"labels": np.full((N, 2), 2)}, "`labels` must hold only 0 and 1; 24 value(s) do not, e.g. 2 for id 's00'"),
    ({"labels": np.zeros((N - 1, 2))}, "`labels` has shape (11, 2) but `ids` has 12 rows"),
    ({"labels": np.zeros(N, dtype=float)}, "multi-class `labels` must be 1-D (N,) integer class indices"),
    ({"labels": np.array([0, 1, 5] * 4)}, "`labels` must be class indices in [0, 2)"),
    ({"labels": np.array([0, -1] * 6)}, "`labels` must be class indices in [0, 2)"),
    ({"split": np.array(["train"] * 4 + ["val"] * 4 + ["test"] * 4)}, "`split` holds 'val' for 4 row(s)"),
    ({"split": np.array(["train"] * 6 + ["calib"] * 6)}, "no row has split 'test'"),
    ({"group__young": np.array([1] * 8 + [0] * 4)}, "group column `group__young` has no member in the test split"),
    ({"group__young": np.array([0, 1, 2] * 4)}, "`group__young` must hold only 0 and 1"),
    ({"group__young": np.ones(N - 1)}, "`group__young` has shape (11,)"),
    ({"attribute_names": np.array(["a", "b", "c"])}, "`attribute_names` has 3 names but `labels` has K = 2"),
    ({"attribute_names": np.array(["a", "a"])}, "`attribute_names` must be a 1-D array of distinct"),
    ({"task": np.array("regression")}, "`task` = 'regression'"),
    ({"task": np.array("multilabel"), "labels": np.zeros(N, dtype=int)}, "multi-label `labels` must be 2-D"),
    ({"inputs": np.full((N, 3, 2, 2), np.nan, dtype=np.float32)}, "`inputs` holds NaN or inf, e.g. in the row of id 's00'"),
    ({"inputs": np.zeros((N,), dtype=np.float32)}, "`inputs` has shape (12,)"),
])
def test_bad_eval_data_is_one_clear_error(tmp_path, overrides, start):
    path = _write(tmp_path, **overrides)
    message = _error(load_eval_data, path)
    assert message.startswith(f"{path}: {start}"), message


def test_eval_data_not_found_or_not_npz(tmp_path):
    assert _error(load_eval_data, tmp_path / "nope.npz").startswith(f"{tmp_path / 'nope.npz'}: no such eval data file")
    text = tmp_path / "data.npz"
    text.write_text("ids,labels\n")
    assert "not a readable .npz archive" in _error(load_eval_data, text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    assert _error(load_eval_data, single).startswith(f"{single}: not an .npz archive (a single .npy array)")
    objects = tmp_path / "objects.npz"
    np.savez(objects, ids=np.array(["a", None], dtype=object))
    assert "dtype=object" in _error(load_eval_data, objects)


def test_save_eval_data_refuses_what_load_would(tmp_path):
    data = load_eval_data(_write(tmp_path))
    bad = EvalData(ids=data.ids, labels=data.labels, split=np.array(["train"] * N), groups=data.groups,
                   group_names=data.group_names, attribute_names=data.attribute_names, task=data.task)
    assert "no row has split 'test'" in _error(save_eval_data, bad, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


# --- predictions ---------------------------------------------------------------------------
def test_predictions_round_trip_any_suffix(tmp_path):
    ids = np.array(["b", "a", "c"])
    scores = np.array([[0.2, 0.9], [0.0, 1.0], [0.5, 0.5]])
    path = save_predictions(tmp_path / "teacher", ids, scores)   # no .npz suffix: still that path
    assert path.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["teacher"]
    preds = load_predictions(path)
    # float64 scores are read at the precision given (issue 20: no silent float32 rounding)
    assert preds.scores.dtype == np.float64 and list(preds.ids) == ["b", "a", "c"]
    np.testing.assert_array_equal(preds.scores, scores)


def test_predictions_clip_float32_rounding(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, ids=np.array(["a"]), scores=np.array([[1.0000001, -1e-8]], dtype=np.float64))
    np.testing.assert_array_equal(load_predictions(path).scores, [[1.0, 0.0]])


@pytest.mark.parametrize("ids, scores, start", [
    (np.array(["a", "b"]), np.array([[0.1], [np.nan]]), "`scores` holds 1 NaN/inf value(s), e.g. for id 'b'"),
    (np.array(["a", "b"]), np.array([[0.1], [np.inf]]), "`scores` holds 1 NaN/inf value(s)"),
    (np.array(["a", "b"]), np.array([[0.1], [1.5]]), "`scores` must be probabilities in [0, 1]; 1 value(s) are not, e.g. 1.5 for id 'b', column 0"),
    (np.array(["a", "b"]), np.array([[-3.0], [0.5]]), "`scores` must be probabilities in [0, 1]"),
    (np.array(["a", "b"]), np.array([0.1, 0.2]), "`scores` has shape (2,); it must be (M, K) = (2, K)"),
    (np.array(["a", "b"]), np.array([[0.1], [0.2], [0.3]]), "`scores` has shape (3, 1)"),
    (np.array(["a", "a"]), np.array([[0.1], [0.2]]), "`ids` must be unique"),
    (np.array([["a"], ["b"]]), np.array([[0.1], [0.2]]), "`ids` has shape (2, 1)"),
])
def test_bad_predictions_are_one_clear_error(tmp_path, ids, scores, start):
    path = tmp_path / "p.npz"
    np.savez(path, ids=ids, scores=scores)
    message = _error(load_predictions, path)
    assert message.startswith(f"{path}: {start}"), message
    with pytest.raises(InputError):
        save_predictions(tmp_path / "q.npz", ids, scores)
    assert not (tmp_path / "q.npz").exists()


def test_predictions_missing_column(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, ids=np.array(["a"]))
    assert _error(load_predictions, path).startswith(f"{path}: missing column `scores` (columns present: ids)")


# --- align_scores --------------------------------------------------------------------------
def _data_and_preds(tmp_path, **pred_overrides):
    data = load_eval_data(_write(tmp_path))
    rng = np.random.default_rng(0)
    ids = data.ids[::-1].copy()                      # another order, and train rows included
    scores = rng.random((N, 2)).astype(np.float32)
    return data, ids, scores


def test_align_scores_joins_on_ids(tmp_path):
    data, ids, scores = _data_and_preds(tmp_path)
    preds = load_predictions(save_predictions(tmp_path / "p.npz", ids, scores))
    mask = data.mask("calib", "test")
    aligned = align_scores(data, preds, mask)
    lookup = dict(zip(ids, scores))
    np.testing.assert_array_equal(aligned, np.stack([lookup[i] for i in data.ids[mask]]))


def test_align_scores_missing_ids_and_wrong_k(tmp_path):
    data, ids, scores = _data_and_preds(tmp_path)
    keep = ids != "s09"
    preds = load_predictions(save_predictions(tmp_path / "p.npz", ids[keep], scores[keep]))
    message = _error(align_scores, data, preds, data.mask("calib", "test"))
    assert message.startswith(f"{tmp_path / 'p.npz'}: 1 of the 8 eval-data ids that need scores "
                              "(calib/test rows) are missing from `ids`, e.g. 's09'"), message
    extra = load_predictions(save_predictions(tmp_path / "x.npz", np.r_[ids, ["zz"]], np.r_[scores, [[0.5, 0.5]]]))
    assert _error(align_scores, data, extra, data.mask("test")).startswith(
        f"{tmp_path / 'x.npz'}: 1 of its 13 ids are not in the eval data, e.g. 'zz'")
    preds3 = load_predictions(save_predictions(tmp_path / "p3.npz", ids, np.zeros((N, 3))))
    assert "`scores` has 3 columns but the eval data has K = 2 attributes (smiling, bald)" in _error(
        align_scores, data, preds3, data.mask("test"))


def test_align_scores_multiclass_rows_must_sum_to_one(tmp_path):
    data = load_eval_data(_write(tmp_path, labels=np.array([0, 1] * 6)))
    preds = load_predictions(save_predictions(tmp_path / "p.npz", data.ids, np.full((N, 2), 0.9)))
    assert "multi-class scores must be softmax probabilities summing to 1 per row; 4 rows do not, " \
           "e.g. id 's08' sums to 1.8000" in _error(align_scores, data, preds, data.mask("test"))
