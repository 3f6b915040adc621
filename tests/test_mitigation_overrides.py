"""Teacher-uncertainty overrides: selection by |p − 0.5|, labels, application by id, the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress_gate.errors import InputError
from compress_gate.mitigation import (apply_overrides, overridden_rows, read_overrides,
                                      select_overrides, write_overrides)

IDS = np.array(["a", "b", "c", "d", "e", "f"])
# |p - 0.5| for x: .00 .05 .05 .40 .40 .10   -> ascending, stable: a, b, c, f, d, e
# |p - 0.5| for y: .40 .40 .30 .10 .00 .10   -> ascending, stable: e, d, f, c, a, b
TEACHER = np.array([[0.50, 0.90], [0.45, 0.10], [0.55, 0.20], [0.90, 0.60], [0.10, 0.50], [0.60, 0.40]])


def test_budget_takes_the_least_certain_rows_with_human_labels():
    y_true = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 1], [0, 0]])
    # budget 0.5 of n = 6 -> 3 rows per attribute; only x is overridden
    out = select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x"], budget=0.5, task="multilabel",
                           y_true=y_true)
    assert out == {"a": {"x": 1}, "b": {"x": 0}, "c": {"x": 1}}


def test_ties_are_broken_by_row_order():
    # x: b and c tie at .05; budget round(0.25 * 6) = round(1.5) = 2 (halves up) -> a, b
    out = select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x"], budget=0.25, task="multilabel")
    assert sorted(out) == ["a", "b"]
    # y: d and f tie at .10 after e; budget 2 -> e, d
    out = select_overrides(IDS, TEACHER, ["x", "y"], attributes=["y"], budget=0.25, task="multilabel")
    assert sorted(out) == ["d", "e"]


def test_teacher_label_without_human_labels_and_merged_entries():
    # x: a, b (teacher .50 -> 0, .45 -> 0); y: e, d (teacher .50 -> 0, .60 -> 1)
    out = select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x", "y"], budget=2 / 6,
                           task="multilabel")
    assert out == {"a": {"x": 0}, "b": {"x": 0}, "e": {"y": 0}, "d": {"y": 1}}


def test_zero_budget_or_no_attribute_selects_nothing():
    assert select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x"], budget=0.0, task="multilabel") == {}
    assert select_overrides(IDS, TEACHER, ["x", "y"], attributes=[], budget=1.0, task="multilabel") == {}
    # round(0.08 * 6) = round(0.48) = 0
    assert select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x"], budget=0.08, task="multilabel") == {}


def test_bad_arguments():
    with pytest.raises(InputError, match=r"unknown attribute\(s\) \['z'\]"):
        select_overrides(IDS, TEACHER, ["x", "y"], attributes=["z"], budget=0.1, task="multilabel")
    with pytest.raises(InputError, match="must be in \\[0, 1\\]"):
        select_overrides(IDS, TEACHER, ["x", "y"], attributes=["x"], budget=1.5, task="multilabel")


def test_multiclass_overrides_replace_the_class():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    y_true = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    # class "cat": |p - .5| = 0, .4, .3 -> budget 1 row: id 0 -> its human class "fox"
    out = select_overrides(np.array(["0", "1", "2"]), scores, ["cat", "dog", "fox"], attributes=["cat"],
                           budget=1 / 3, task="multiclass", y_true=y_true)
    assert out == {"0": {"class": "fox"}}
    teacher = select_overrides(np.array(["0", "1", "2"]), scores, ["cat", "dog", "fox"],
                               attributes=["cat"], budget=1 / 3, task="multiclass")
    assert teacher == {"0": {"class": "cat"}}
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    after = apply_overrides(np.array(["0", "1", "2"]), y_pred, out, ["cat", "dog", "fox"])
    np.testing.assert_array_equal(after, [[0, 0, 1], [0, 1, 0], [0, 0, 1]])


def test_apply_overrides_by_id_ignores_other_ids_and_copies():
    y_pred = np.zeros((3, 2), dtype=np.uint8)
    ids = np.array(["c", "a", "z"])
    out = apply_overrides(ids, y_pred, {"a": {"y": 1}, "c": {"x": 1, "y": 1}, "q": {"x": 1}}, ["x", "y"])
    np.testing.assert_array_equal(out, [[1, 1], [0, 1], [0, 0]])
    assert y_pred.sum() == 0
    np.testing.assert_array_equal(overridden_rows(ids, {"a": {}, "q": {}}), [False, True, False])


@pytest.mark.parametrize("entry", [{"w": 1}, {"x": 2}, {"x": True}, {"class": "cow"}])
def test_apply_overrides_refuses_unknown_names_or_values(entry):
    with pytest.raises(InputError, match="override of id 'a'"):
        apply_overrides(np.array(["a"]), np.zeros((1, 2)), {"a": entry}, ["x", "y"])


def test_overrides_json_round_trip_and_validation(tmp_path):
    overrides = {"a": {"x": 1}, "b": {"x": 0, "y": 1}}
    path = write_overrides(tmp_path / "overrides.json", overrides, task="multilabel", attribute_names=["x", "y"])
    assert json.loads(path.read_text()) == {"schema_version": 1, "task": "multilabel",
                                            "attribute_names": ["x", "y"], "overrides": overrides}
    loaded = read_overrides(path)
    assert loaded.overrides == overrides and loaded.attribute_names == ("x", "y")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema_version": 1, "task": "multilabel", "attribute_names": ["x"],
                               "overrides": {"a": {"z": 1}}}))
    with pytest.raises(InputError, match="override of id 'a': 'z': 1 must name one of"):
        read_overrides(bad)
    with pytest.raises(InputError, match="no such overrides file"):
        read_overrides(tmp_path / "missing.json")
