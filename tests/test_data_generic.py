"""Generic sources: a CSV of image paths, an npz of arrays; every error names file, line, column."""

from __future__ import annotations

import numpy as np
import pytest
from _data_fixtures import write_image

from compress_gate.config.data import CsvDataConfig, NpzDataConfig
from compress_gate.data import (load_csv_data, load_eval_data, load_npz_data, sample_id,
                                save_eval_data)
from compress_gate.errors import InputError

# 6 rows: train x2, calib x2, test x2; labels are digits written as text ("10" sorts after "9")
ROWS = [("imgs/a.png", "train", "9", "1", "1", "0"), ("imgs/b.png", "train", "10", "0", "0", "1"),
        ("imgs/c.png", "calib", "2", "1", "1", "1"), ("imgs/d.png", "calib", "9", "0", "0", "0"),
        ("imgs/e.png", "test", "10", "1", "0", "1"), ("imgs/f.png", "test", "2", "0", "1", "0")]
HEADER = "path,split,label,male,smiling,bald"


def _write_csv(root, rows=ROWS, header=HEADER, name="data.csv"):
    for i, row in enumerate(rows):
        if not (root / row[0]).exists():
            write_image(root / row[0], size=(20, 16), seed=i)
    path = root / name
    path.write_text(header + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def _csv(path, **options) -> CsvDataConfig:
    options.setdefault("task", "multiclass")
    options.setdefault("label_columns", ("label",))
    options.setdefault("group_columns", ("male",))
    options.setdefault("image_size", 8)
    if "extra_columns" not in options:   # the fixture's columns this config does not read, kept unread
        used = {"path", "split", *options["label_columns"], *options["group_columns"],
                options.get("id_column")}
        options["extra_columns"] = tuple(c for c in HEADER.split(",") if c not in used)
    return CsvDataConfig(path=path, **options)


def _csv_error(path, **options) -> str:
    with pytest.raises(InputError) as info:
        load_csv_data(_csv(path, **options))
    return str(info.value)


def test_csv_multiclass_sorts_integer_classes_numerically(tmp_path):
    data = load_csv_data(_csv(_write_csv(tmp_path)))
    assert data.task == "multiclass" and data.attribute_names == ("2", "9", "10")
    assert data.label_index.tolist() == [1, 2, 0, 1, 2, 0]
    assert data.ids.tolist() == [r[0] for r in ROWS] and data.group_names == ("male",)
    assert data.groups[:, 0].tolist() == [True, False, True, False, True, False]
    assert data.split.tolist() == ["train", "train", "calib", "calib", "test", "test"]
    assert data.inputs.shape == (6, 3, 8, 8)


def test_csv_classes_order_and_id_column(tmp_path):
    rows = [r + (f"id{i}",) for i, r in enumerate(ROWS)]
    path = _write_csv(tmp_path, rows=rows, header=HEADER + ",sample")
    data = load_csv_data(_csv(path, classes=("10", "9", "2"), id_column="sample"))
    assert data.attribute_names == ("10", "9", "2") and data.label_index.tolist() == [1, 0, 2, 1, 0, 2]
    assert data.ids.tolist() == [f"id{i}" for i in range(6)]


def test_csv_multilabel_grey_round_trip(tmp_path):
    path = _write_csv(tmp_path)
    data = load_csv_data(_csv(path, task="multilabel", label_columns=("smiling", "bald"), channels=1))
    assert data.attribute_names == ("smiling", "bald")
    np.testing.assert_array_equal(data.labels, [[1, 0], [0, 1], [1, 1], [0, 0], [0, 1], [1, 0]])
    assert data.inputs.shape == (6, 1, 8, 8)
    again = load_eval_data(save_eval_data(data, tmp_path / "data.npz"))   # image paths, not pixels
    assert again.streams_images and again.inputs.transform == data.inputs.transform
    np.testing.assert_array_equal(again.inputs[:], data.inputs[:])
    np.testing.assert_array_equal(again.labels, data.labels)


@pytest.mark.parametrize("crop_size, left, top", [(None, 2, 0), (10, 5, 3)])
def test_csv_pixels_are_centre_cropped_resized_and_scaled(tmp_path, crop_size, left, top):
    # image 20x16 (w x h); square side s = crop_size or 16, offset round((20-s)/2), round((16-s)/2):
    # s=16 -> (2, 0); s=10 -> (5, 3); then bilinear resize s -> 8 and p -> (p/255 - 0.5)/0.5
    from PIL import Image

    path = _write_csv(tmp_path)
    data = load_csv_data(_csv(path, image_size=8, crop_size=crop_size))
    pixels = write_image(tmp_path / "imgs/a.png", size=(20, 16), seed=0)   # same seed: same pixels
    side = crop_size or 16
    square = pixels[top:top + side, left:left + side]
    expected = Image.fromarray(square).resize((8, 8), Image.BILINEAR)
    want = (np.asarray(expected, dtype=np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(data.inputs[0].transpose(1, 2, 0), want, atol=1e-6)


def test_csv_missing_file(tmp_path):
    assert "no such CSV file" in _csv_error(tmp_path / "nope.csv")


def test_csv_empty(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER + "\n")
    assert "no data rows" in _csv_error(path)


def test_csv_missing_column_lists_the_header(tmp_path):
    message = _csv_error(_write_csv(tmp_path), group_columns=("female",))
    assert "column(s) ['female'] not found" in message and "'male'" in message
    assert "group_columns" in message


def test_csv_bad_split(tmp_path):
    rows = list(ROWS)
    rows[3] = ("imgs/d.png", "valid", "9", "0", "0", "0")
    message = _csv_error(_write_csv(tmp_path, rows=rows))
    assert "line 5, column split: split 'valid' is not one of" in message and "calib" in message


def test_csv_label_not_in_classes(tmp_path):
    message = _csv_error(_write_csv(tmp_path), classes=("2", "9"))
    assert "line 3, column label: label '10' is not one of the classes ['2', '9']" in message


def test_csv_empty_label(tmp_path):
    rows = list(ROWS)
    rows[1] = ("imgs/b.png", "train", "", "0", "0", "1")
    assert "line 3, column label: the label is empty" in _csv_error(_write_csv(tmp_path, rows=rows))


def test_csv_single_class(tmp_path):
    rows = [r[:2] + ("7",) + r[3:] for r in ROWS]
    assert "holds a single class ('7',)" in _csv_error(_write_csv(tmp_path, rows=rows))


def test_csv_group_cell_not_binary(tmp_path):
    rows = list(ROWS)
    rows[4] = ("imgs/e.png", "test", "10", "2", "0", "1")
    assert "line 6, column male: '2' is not 0 or 1" in _csv_error(_write_csv(tmp_path, rows=rows))


def test_csv_multilabel_cell_not_binary(tmp_path):
    rows = list(ROWS)
    rows[0] = ("imgs/a.png", "train", "9", "1", "maybe", "0")
    message = _csv_error(_write_csv(tmp_path, rows=rows), task="multilabel",
                         label_columns=("smiling", "bald"))
    assert "line 2, column smiling: 'maybe' is not 0 or 1" in message


def test_csv_duplicate_path(tmp_path):
    rows = list(ROWS)
    rows[5] = ("imgs/a.png",) + ROWS[5][1:]
    message = _csv_error(_write_csv(tmp_path, rows=rows))
    assert "'imgs/a.png' appears on lines [2, 7]" in message and "id_column" in message


def test_csv_blank_path(tmp_path):
    path = _write_csv(tmp_path)
    path.write_text(path.read_text().replace("imgs/c.png", ""))
    assert "line 4, column path is empty" in _csv_error(path)


def test_csv_missing_image_names_the_line(tmp_path):
    path = _write_csv(tmp_path)
    (tmp_path / "imgs/e.png").unlink()
    message = _csv_error(path)
    assert "e.png (data.csv line 6, column path): no such image file" in message


def test_csv_unreadable_image_names_the_line(tmp_path):
    path = _write_csv(tmp_path)
    (tmp_path / "imgs/b.png").write_bytes(b"\x89PNG broken")
    message = _csv_error(path)
    assert "b.png (data.csv line 3, column path): cannot read the image" in message


def test_csv_group_without_test_member(tmp_path):
    rows = [r[:3] + ("0" if r[1] == "test" else r[3],) + r[4:] for r in ROWS]
    assert "`group__male` has no member in the test split" in _csv_error(_write_csv(tmp_path, rows=rows))


# --- npz ----------------------------------------------------------------------------------------
def _arrays(**overrides):
    rng = np.random.default_rng(0)
    cols = {"inputs": rng.normal(size=(6, 1, 4, 4)).astype(np.float32),
            "labels": np.array([0, 1, 2, 0, 1, 2]), "split": np.array(["train"] * 2 + ["calib"] * 2
                                                                      + ["test"] * 2),
            "group__left": np.array([1, 0, 1, 0, 1, 0], dtype=np.uint8)}
    cols.update(overrides)
    return {k: v for k, v in cols.items() if v is not None}


def _npz(tmp_path, **overrides):
    path = tmp_path / "arrays.npz"
    np.savez(path, **_arrays(**overrides))
    return path


def test_npz_without_ids_uses_input_hashes(tmp_path):
    data = load_npz_data(NpzDataConfig(path=_npz(tmp_path)))
    cols = _arrays()
    assert data.ids.tolist() == [sample_id(x) for x in cols["inputs"]]
    assert data.task == "multiclass" and data.group_names == ("left",)
    np.testing.assert_array_equal(data.inputs, cols["inputs"])


def test_npz_with_ids_relative_to_base_dir(tmp_path):
    _npz(tmp_path, ids=np.array([f"x{i}" for i in range(6)]))
    data = load_npz_data(NpzDataConfig(path="arrays.npz"), base_dir=tmp_path)
    assert data.ids.tolist() == [f"x{i}" for i in range(6)]


def test_npz_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such eval data file"):
        load_npz_data(NpzDataConfig(path=tmp_path / "none.npz"))


def test_npz_without_inputs(tmp_path):
    with pytest.raises(InputError, match="no `inputs` array; training and prediction need"):
        load_npz_data(NpzDataConfig(path=_npz(tmp_path, inputs=None, ids=np.arange(6))))


def test_npz_identical_inputs_without_ids(tmp_path):
    inputs = _arrays()["inputs"]
    inputs[4] = inputs[1]
    with pytest.raises(InputError, match=r"rows \[1, 4\] hold identical inputs. Add an `ids` array"):
        load_npz_data(NpzDataConfig(path=_npz(tmp_path, inputs=inputs)))


def test_npz_contract_errors_pass_through(tmp_path):
    with pytest.raises(InputError, match="`split` holds 'val'"):
        load_npz_data(NpzDataConfig(path=_npz(tmp_path, split=np.array(["train", "val"] + ["test"] * 4))))


def test_missing_pillow_is_a_clear_input_error(tmp_path, monkeypatch):
    import sys

    path = _write_csv(tmp_path)
    monkeypatch.setitem(sys.modules, "PIL", None)         # `from PIL import Image` -> ImportError
    assert "needs Pillow, which is not installed" in _csv_error(path)
