"""CelebA-format folders: a generated fixture in the exact layout, round trip, every error."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from _data_fixtures import CELEBA_NAMES, CELEBA_VALUES, write_celeba

from compress_gate.config.data import CelebADataConfig
from compress_gate.data import load_celeba, load_eval_data, save_eval_data
from compress_gate.errors import InputError


def _config(root, **options) -> CelebADataConfig:
    options.setdefault("targets", ("Blond_Hair", "Smiling"))
    options.setdefault("groups", ("Male", "Young"))
    options.setdefault("image_size", 8)
    return CelebADataConfig(root=root, **options)


@pytest.fixture()
def celeba(tmp_path):
    return write_celeba(tmp_path / "celeba_root")


def _error(root, **options) -> str:
    with pytest.raises(InputError) as info:
        load_celeba(_config(root, **options))
    return str(info.value)


def test_round_trip_through_data_npz(celeba, tmp_path):
    data = load_celeba(_config(celeba))
    assert data.task == "multilabel" and data.attribute_names == ("Blond_Hair", "Smiling")
    assert data.group_names == ("Male", "Young")
    assert data.ids.tolist() == [f"{i:06d}.jpg" for i in range(1, 13)]
    assert data.split.tolist() == ["train"] * 4 + ["calib"] * 4 + ["test"] * 4   # 1 (valid) -> calib
    np.testing.assert_array_equal(data.labels, (CELEBA_VALUES[:, [0, 1]] + 1) // 2)
    np.testing.assert_array_equal(data.groups, CELEBA_VALUES[:, [2, 3]] == 1)
    assert data.inputs.shape == (12, 3, 8, 8) and data.inputs.dtype == np.float32
    assert data.inputs[:].min() >= -1.0 and data.inputs[:].max() <= 1.0
    again = load_eval_data(save_eval_data(data, tmp_path / "data.npz"))
    for field in ("ids", "labels", "split", "groups"):
        np.testing.assert_array_equal(getattr(again, field), getattr(data, field))
    np.testing.assert_array_equal(again.inputs[:], data.inputs[:])    # data.npz holds the paths
    assert again.attribute_names == data.attribute_names and again.group_names == data.group_names


def test_relative_root_and_torchvision_layout(celeba, tmp_path):
    nested = tmp_path / "tv"
    shutil.copytree(celeba, nested / "celeba")            # torchvision puts it under <root>/celeba
    data = load_celeba(_config(nested.relative_to(tmp_path)), base_dir=tmp_path)
    assert data.n_samples == 12


def test_max_samples_per_split_is_seeded_and_per_split(celeba):
    a = load_celeba(_config(celeba, max_samples_per_split=2, seed=3))
    b = load_celeba(_config(celeba, max_samples_per_split=2, seed=3))
    assert a.ids.tolist() == b.ids.tolist() and a.n_samples == 6
    assert [int((a.split == s).sum()) for s in ("train", "calib", "test")] == [2, 2, 2]
    assert a.ids.tolist() == sorted(a.ids.tolist())        # kept in file order


def test_crop_then_resize_matches_a_hand_computation(celeba):
    # 20x24 image, centre square 20x20 starts at row (24-20)/2 = 2; resize 20 -> 10 (bilinear box)
    from PIL import Image

    data = load_celeba(_config(celeba, image_size=10))
    with Image.open(celeba / "img_align_celeba" / "000001.jpg") as img:
        expected = np.asarray(img.convert("RGB").crop((0, 2, 20, 22)).resize((10, 10), Image.BILINEAR))
    got = data.inputs[0].transpose(1, 2, 0) * 0.5 + 0.5
    np.testing.assert_allclose(got * 255, expected, atol=1e-3)


def test_progress_reports_each_image(celeba):
    seen = []
    load_celeba(_config(celeba), progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (1, 12) and seen[-1] == (12, 12) and len(seen) == 12


def test_missing_root(tmp_path):
    message = _error(tmp_path / "nowhere")
    assert "no list_attr_celeba.txt here" in message and "data.root" in message


def test_missing_partition_file(celeba):
    (celeba / "list_eval_partition.txt").unlink()
    assert "list_eval_partition.txt is missing" in _error(celeba)


def test_unknown_attribute_lists_the_valid_names(celeba):
    message = _error(celeba, groups=("Female",))
    assert "data.groups" in message and "Female" in message and "Male, Young" in message


def test_count_line_disagrees_with_rows(celeba):
    path = celeba / "list_attr_celeba.txt"
    path.write_text(path.read_text().replace("12\n", "13\n", 1))
    assert "line 1 says 13 images but 12 lines follow" in _error(celeba)


def test_ragged_line_is_named(celeba):
    path = celeba / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]                 # line 5 (image 3) loses a value
    path.write_text("\n".join(lines) + "\n")
    assert "line 5 has 3 values but line 2 names 4 attributes" in _error(celeba)


def test_value_other_than_minus_one_or_one(celeba):
    values = CELEBA_VALUES.copy()
    values[6, 1] = 0
    write_celeba(celeba, values=values)
    message = _error(celeba)
    assert "attribute Smiling of 000007.jpg (line 9) is '0'" in message and "-1 or 1" in message


def test_bad_header(celeba):
    path = celeba / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[1:]))
    assert "line 1 must be the number of images" in _error(celeba)


def test_image_without_partition(celeba):
    write_celeba(celeba, partitions=[0] * 12)
    path = celeba / "list_eval_partition.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
    assert "1 image(s) of list_attr_celeba.txt have no partition, e.g. ['000012.jpg']" in _error(celeba)


def test_partition_value_outside_0_1_2(celeba):
    path = celeba / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000003.jpg 0", "000003.jpg 3"))
    message = _error(celeba)
    assert "line 3 is '000003.jpg 3'" in message and "2 (test)" in message


def test_missing_image(celeba):
    (celeba / "img_align_celeba" / "000005.jpg").unlink()
    message = _error(celeba)
    assert "000005.jpg" in message and "no such image file" in message


def test_corrupt_image(celeba):
    (celeba / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg")
    message = _error(celeba)
    assert "000002.jpg" in message and "cannot read the image" in message


def test_crop_larger_than_image(celeba):
    message = _error(celeba, crop_size=30)
    assert "crop_size = 30 is larger than the image (20x24)" in message and "<= 20" in message


def test_group_without_test_member_is_refused(celeba):
    values = CELEBA_VALUES.copy()
    values[8:, 2] = -1                                    # no Male in the test partition
    write_celeba(celeba, values=values)
    assert "group__Male` has no member in the test split" in _error(celeba)


def test_fixture_matches_the_celeba_layout(celeba):
    lines = (celeba / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "12" and lines[1].split() == CELEBA_NAMES
    assert lines[2].split()[0] == "000001.jpg" and set(lines[2].split()[1:]) <= {"1", "-1"}
