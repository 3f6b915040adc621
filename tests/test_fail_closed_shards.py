"""Issue 20, sharded inputs: hostile shard directories are refused (exit 2, one message naming the
shard, no traceback), whatever the hash order, the manifest or the file kinds.

- colliding 64-bit id hashes (a real collision, :mod:`tests._id_collisions`) can hide no duplicate;
- a manifest lists every shard of its directory, with the right row counts;
- prediction shards of another width, a Parquet ``input_shape`` that does not fit its values,
  an id too long, a shard with no rows, and entries named ``*.npz`` that are no regular file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from compress_gate._id_hash import MAX_ID_LENGTH, hash_ids
from compress_gate.data import shards as shards_module
from compress_gate.data._shard_files import write_shard
from compress_gate.data.shards import open_shards
from compress_gate.errors import InputError
from tests._gate_data import make_data
from tests._id_collisions import COLLIDING_PAIRS, find_collisions
from tests.test_data_shards import _eval_columns, _scores, _write_dirs
from tests.test_fail_closed_inputs import _invoke

LIMITS = "n_resamples: 200\nseed: 0\nlimits:\n  - {metric: accuracy, change: absolute, min: -0.5}\n"


def _gate(tmp_path: Path, dirs: dict[str, Path], *extra) -> tuple[int, str]:
    limits = tmp_path / "limits.yaml"
    limits.write_text(LIMITS)
    return _invoke(["gate", "--data", dirs["data"], "--teacher", dirs["teacher"], "--student", dirs["student"],
                    "--limits", limits, "--out", tmp_path / "out", *extra])


def _refused(tmp_path: Path, dirs: dict[str, Path], *parts: str) -> str:
    """The gate exits 2 with every one of ``parts`` in its message, and writes no report."""
    code, message = _gate(tmp_path, dirs)
    assert code == 2, message
    for part in parts:
        assert part in message, (part, message)
    assert not (tmp_path / "out" / "report.json").exists()
    return message


# --- 3. colliding 64-bit id hashes --------------------------------------------------------------
def test_the_stored_pairs_are_real_collisions():
    for left, right in COLLIDING_PAIRS:
        assert left != right and len(left) == len(right) == 3
        assert hash_ids(np.array([left]))[0] == hash_ids(np.array([right]))[0]


@pytest.mark.slow
def test_a_birthday_search_finds_new_collisions_in_seconds():
    start = time.perf_counter()
    pairs = find_collisions(limit=2)
    assert pairs and time.perf_counter() - start < 120
    for left, right in pairs:
        assert left != right and hash_ids(np.array([left]))[0] == hash_ids(np.array([right]))[0]


def _colliding_data(pair: tuple[str, str]):
    """make_data with two test rows renamed to the colliding ids; returns (data, row of left, row of right)."""
    data = make_data()
    test = np.flatnonzero(data.split == "test")
    left, right = int(test[0]), int(test[1])
    ids = data.ids.astype(object)
    ids[left], ids[right] = pair
    return dataclasses.replace(data, ids=np.asarray(ids.tolist(), dtype=str)), left, right


def _write_by_rows(directory: Path, columns_of, row_sets: list[np.ndarray]) -> list[Path]:
    return [write_shard(directory / f"p{k:03d}.npz", columns_of(np.asarray(rows))) for k, rows in
            enumerate(row_sets)]


def _collision_layout(tmp_path: Path, pair, *, duplicate_in: str):
    """Shards 0, 1, 2 of ``duplicate_in`` hold (everything but the right id), the right id, the left id
    again: sorted by hash, the run of the shared hash is shards 0, 1, 2, so the duplicate (0, 2) is
    not a neighbour pair. The other directories are written plainly."""
    data, left, right = _colliding_data(pair)
    scored = np.flatnonzero(data.split != "train")
    dirs = {name: tmp_path / name for name in ("data", "teacher", "student")}
    teacher = _scores(data, 1)
    rows = scored if duplicate_in == "teacher" else np.arange(data.n_samples)
    sets = [rows[rows != right], np.array([right]), np.array([left])]
    if duplicate_in == "data":
        _write_by_rows(dirs["data"], lambda r: _eval_columns(data, r), sets)
    else:
        write_shard(dirs["data"] / "part.npz", _eval_columns(data, np.arange(data.n_samples)))
    if duplicate_in == "teacher":
        other = teacher.copy()
        other[left] = 1 - other[left]                    # a second, different score for the same id
        _write_by_rows(dirs["teacher"], lambda r: {"ids": data.ids[r], "scores": (
            other if r.tolist() == [left] else teacher)[r]}, sets)
    else:
        write_shard(dirs["teacher"] / "p.npz", {"ids": data.ids[scored], "scores": teacher[scored]})
    write_shard(dirs["student"] / "p.npz", {"ids": data.ids[scored], "scores": _scores(data, 2)[scored]})
    return data, dirs


@pytest.mark.parametrize("pair", COLLIDING_PAIRS[:2], ids=["pair0", "pair1"])
@pytest.mark.parametrize("where, what", [("data", "eval data"), ("teacher", "predictions")])
def test_a_collision_between_a_duplicated_id_hides_nothing(tmp_path, pair, where, what):
    data, dirs = _collision_layout(tmp_path, pair, duplicate_in=where)
    paths = sorted(dirs[where].iterdir())
    read = shards_module.read_data_shard if where == "data" else shards_module.read_prediction_shard
    index = shards_module._Index([np.sort(hash_ids(read(p).ids)) for p in paths], paths)
    run = index.shard_of[index.hashes == hash_ids(np.array([pair[0]]))[0]]
    assert run.tolist() == [0, 1, 2]            # the duplicate's two shards are not neighbours in the index
    message = _refused(tmp_path, dirs, f"{paths[0]} and {paths[2]}: 1 id(s) occur in both {what} shards",
                       repr(pair[0]))
    assert "Traceback" not in message


def test_a_predicted_stranger_that_collides_with_a_data_id_is_found_by_string(tmp_path):
    data, left, right = _colliding_data(COLLIDING_PAIRS[0])
    keep = np.arange(data.n_samples) != right                  # the right id is not in the data at all
    dirs = _write_dirs(tmp_path, data, 2, 1)
    for path in dirs["data"].iterdir():
        path.unlink()
    write_shard(dirs["data"] / "part.npz", _eval_columns(data, np.flatnonzero(keep)))
    scored = np.flatnonzero(data.split != "train")
    write_shard(dirs["teacher"] / "p000.npz", {"ids": data.ids[scored], "scores": _scores(data, 1)[scored]})
    with pytest.raises(InputError, match="1 predicted id\\(s\\) are not in the eval data") as info:
        open_shards(*dirs.values())
    assert repr(COLLIDING_PAIRS[0][1]) in str(info.value) and "found by string" in str(info.value)


def test_colliding_ids_in_different_shards_are_joined_exactly(tmp_path):
    data, left, right = _colliding_data(COLLIDING_PAIRS[1])
    dirs = {name: tmp_path / name for name in ("data", "teacher", "student")}
    everything = np.arange(data.n_samples)
    _write_by_rows(dirs["data"], lambda r: _eval_columns(data, r),
                   [everything[(everything != left) & (everything != right)], [left], [right]])
    scored = np.flatnonzero(data.split != "train")
    for name, seed in (("teacher", 1), ("student", 2)):
        scores = _scores(data, seed)
        _write_by_rows(dirs[name], lambda r: {"ids": data.ids[r], "scores": scores[r]},
                       [scored[(scored != left) & (scored != right)], [right], [left]])
    blocks = {block.shard.name: block for block in open_shards(*dirs.values())}
    for name, row in (("p001.npz", left), ("p002.npz", right)):
        assert blocks[name].data.ids.tolist() == [data.ids[row]]
        assert blocks[name].teacher.tolist() == _scores(data, 1)[[row]].tolist()


# --- 4. the manifest -------------------------------------------------------------------------------
def _manifest(directory: Path, entries: list[dict]) -> Path:
    path = directory / "manifest.json"
    path.write_text(json.dumps({"shards": entries}))
    return path


def _listed(directory: Path, *, skip: int | None = None, rows: dict[str, int] | None = None) -> list[dict]:
    entries = []
    for k, path in enumerate(sorted(directory.glob("*.npz"))):
        if k != skip:
            entries.append({"file": path.name, "rows": (rows or {}).get(path.name, int(np.load(path)["ids"].size))})
    return entries


@pytest.mark.parametrize("where", ["data", "teacher"])
def test_a_manifest_that_omits_a_shard_is_refused_naming_it(tmp_path, where):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 3, 3)
    _manifest(dirs[where], _listed(dirs[where], skip=1))
    omitted = sorted(dirs[where].glob("*.npz"))[1].name
    _refused(tmp_path, dirs, f"{dirs[where]}: {omitted} is in the directory but not listed in manifest.json",
             "rows would be dropped silently")


@pytest.mark.parametrize("where", ["data", "student"])
def test_a_manifest_row_count_that_does_not_match_is_refused(tmp_path, where):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 3, 2)
    first = sorted(dirs[where].glob("*.npz"))[0]
    held = int(np.load(first)["ids"].size)
    _manifest(dirs[where], _listed(dirs[where], rows={first.name: held + 7}))
    _refused(tmp_path, dirs, f"{dirs[where] / 'manifest.json'}: the row counts it lists do not match",
             f"{first.name} ({held + 7} listed, {held} held)")


@pytest.mark.parametrize("entry, expected", [
    ({"file": "p000.npz"}, "not a readable shard manifest"),
    ({"file": "p000.npz", "rows": True}, "has `rows` = True"),
    ({"file": "p000.npz", "rows": 0}, "has `rows` = 0"),
    ({"file": "p000.npz", "rows": "12"}, "has `rows` = '12'"),
], ids=["no-rows", "rows-bool", "rows-zero", "rows-string"])
def test_a_manifest_entry_needs_a_row_count(tmp_path, entry, expected):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 1, 1)
    _manifest(dirs["teacher"], [entry])
    _refused(tmp_path, dirs, expected)


def test_a_manifest_that_lists_a_shard_twice_is_refused(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 1, 1)
    entry = _listed(dirs["teacher"])[0]
    _manifest(dirs["teacher"], [entry, entry])
    _refused(tmp_path, dirs, "lists p000.npz more than once")


def test_a_complete_manifest_is_read_in_its_order(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 3, 2)
    entries = _listed(dirs["data"])[::-1]
    _manifest(dirs["data"], entries)
    assert [p.name for p in open_shards(*dirs.values()).data_shards] == [e["file"] for e in entries]


@pytest.mark.parametrize("kind, said", [("directory", "a directory"), ("fifo", "a FIFO (named pipe)"),
                                        ("dangling", "a dangling symbolic link")])
def test_a_manifest_that_is_no_regular_file_says_what_it_is(tmp_path, kind, said):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    manifest = dirs["teacher"] / "manifest.json"
    if kind == "directory":
        manifest.mkdir()
    elif kind == "fifo":
        os.mkfifo(manifest)                              # reading it would block forever
    else:
        manifest.symlink_to(tmp_path / "gone.json")
    _refused(tmp_path, dirs, f"{manifest}: is {said}, not a shard manifest file")


# --- 9., 10. widths and shapes ---------------------------------------------------------------------
def test_prediction_shards_of_another_width_are_refused_naming_the_shard(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 3)
    shard = dirs["teacher"] / "p001.npz"
    with np.load(shard) as f:
        ids, scores = f["ids"], f["scores"]
    write_shard(shard, {"ids": ids, "scores": np.c_[scores, scores[:, :1]]})      # 4 columns beside 3
    _refused(tmp_path, dirs, f"{shard}: `scores` has 4 columns but the eval data", "K = 3",
             f"the shards of {dirs['teacher']} have 3, 4 columns")


def _parquet_dirs(tmp_path: Path, shape) -> tuple[dict[str, Path], Path]:
    pytest.importorskip("pyarrow", reason="Parquet shards need pyarrow (the [ray] extra)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    shard = dirs["data"] / "part-000.npz"
    columns = dict(np.load(shard))
    columns["inputs"] = np.zeros((columns["ids"].size, 1, 2, 2), np.float32)
    parquet = write_shard(shard.with_suffix(".parquet"), columns)
    shard.unlink()
    table = pq.read_table(parquet)
    meta = json.loads(table.schema.metadata[b"compress_gate"])
    meta["input_shape"] = shape
    pq.write_table(table.replace_schema_metadata({b"compress_gate": json.dumps(meta)}), parquet)
    del pa
    return dirs, parquet


@pytest.mark.parametrize("shape", [[3, 5], [2], [1, 2, -2], ["1", 2, 2], 4], ids=str)
def test_a_parquet_input_shape_that_does_not_fit_is_refused_naming_the_shard(tmp_path, shape):
    dirs, parquet = _parquet_dirs(tmp_path, shape)
    _refused(tmp_path, dirs, f"{parquet}: the `input_shape` metadata {shape!r} does not fit the `inputs` column",
             "hold 4 values each")


def test_parquet_metadata_that_is_no_object_is_refused(tmp_path):
    dirs, parquet = _parquet_dirs(tmp_path, [1, 2, 2])     # skips without pyarrow (the [ray] extra)
    import pyarrow.parquet as pq

    table = pq.read_table(parquet)
    pq.write_table(table.replace_schema_metadata({b"compress_gate": b'"input_shape"'}), parquet)
    _refused(tmp_path, dirs, f"{parquet}: the schema metadata `compress_gate` is str JSON; it must be a JSON object")


def test_a_fitting_parquet_input_shape_is_read(tmp_path):
    dirs, parquet = _parquet_dirs(tmp_path, [1, 2, 2])
    assert shards_module.read_data_shard(parquet).inputs.shape[1:] == (1, 2, 2)


# --- 12. long ids ------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
@pytest.mark.parametrize("where", ["data", "teacher"])
def test_an_id_longer_than_the_cap_is_refused_before_it_costs(tmp_path, suffix, where):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow", reason="Parquet shards need pyarrow (the [ray] extra)")
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 2, suffix=suffix)
    shard = sorted(dirs[where].iterdir())[0]
    columns = shards_module.read_shard_columns(shard, predictions=where != "data")
    ids = columns["ids"].astype(object)
    ids[0] = "x" * 200_000
    columns["ids"] = np.asarray(ids.tolist(), dtype=str)
    write_shard(shard, columns)
    start = time.perf_counter()
    _refused(tmp_path, dirs, f"{shard}: `ids` holds an id of 200,000 characters",
             f"at most {MAX_ID_LENGTH} characters", "SHA-256")
    assert time.perf_counter() - start < 30                  # was 67 s and 3.75 GB


def test_ids_at_the_cap_are_accepted_and_hash_by_their_text():
    at_cap = "y" * MAX_ID_LENGTH
    wide = np.array([at_cap, "ab"], dtype=f"<U{MAX_ID_LENGTH + 50}")   # a wide array of ids that fit
    assert (hash_ids(wide) == hash_ids(np.array([at_cap, "ab"]))).all()
    with pytest.raises(InputError, match=f"an id of {MAX_ID_LENGTH + 1} characters"):
        hash_ids(np.array([at_cap + "y"]))


# --- smaller: empty shards and entries that are no regular file ------------------------------------
def test_a_data_shard_with_no_rows_is_refused_for_that_reason(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    empty = write_shard(dirs["data"] / "part-999.npz", _eval_columns(data, np.zeros(0, int)))
    message = _refused(tmp_path, dirs, f"{empty}: the shard holds no rows", "delete the empty file")
    assert "at least one test row" not in message


def test_a_prediction_shard_with_no_rows_is_refused_for_that_reason(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    empty = write_shard(dirs["student"] / "p999.npz", {"ids": np.zeros(0, str), "scores": np.zeros((0, 3), np.float32)})
    _refused(tmp_path, dirs, f"{empty}: the shard holds no rows", "delete the empty file")


def _special(directory: Path, kind: str) -> Path:
    path = directory / "part-500.npz"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(directory / "gone.npz")
    return path


@pytest.mark.parametrize("kind, said", [("directory", "a directory"), ("fifo", "a FIFO (named pipe)"),
                                        ("dangling", "a dangling symbolic link")])
@pytest.mark.parametrize("manifest", [False, True], ids=["listed-by-name", "listed-in-manifest"])
def test_an_entry_named_like_a_shard_that_is_no_file_says_what_it_is(tmp_path, kind, said, manifest):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    entries = _listed(dirs["data"])
    path = _special(dirs["data"], kind)
    if manifest:
        _manifest(dirs["data"], [*entries, {"file": path.name, "rows": 5}])
    message = _refused(tmp_path, dirs, f"{path}: ", f"is {said}, not a shard file (eval data)",
                       "nothing was read from it")
    assert "not eval data shards" not in message


# --- 12. synthetic data too large for the machine -------------------------------------------------
_BIG = {"kind": "synthetic", "image_size": 64, "n_train": 1_000_000, "n_calib": 1_000_000, "n_test": 1_000_000}
_BIG_SAYS = ("3,000,000 rows (n_train + n_calib + n_test) of 3x64x64 float32 images take 147.5 GB",
             "about 294.9 GB while they are built", "nothing was drawn")


def _too_big_here(monkeypatch) -> None:
    from compress_gate.data import synthetic

    # 3e6 rows x 3 x 64 x 64 x 4 B = 147.5 GB of images, 294.9 GB at the peak: more than any CI machine has
    if synthetic._available_memory() >= 2 * 147_456_000_000:
        pytest.skip("this machine could build the images")
    monkeypatch.setattr(synthetic, "draw_labels", lambda *a, **k: pytest.fail("drew before refusing"))


def test_synthetic_data_too_large_for_the_machine_is_refused_before_drawing(tmp_path, monkeypatch):
    from compress_gate.config.data import parse_data_config
    from compress_gate.data import load_dataset

    _too_big_here(monkeypatch)
    with pytest.raises(InputError) as info:
        load_dataset(parse_data_config(_BIG, source="recipe.yaml"), base_dir=tmp_path)
    assert all(part in str(info.value) for part in _BIG_SAYS), str(info.value)


def test_run_refuses_synthetic_data_too_large_for_the_machine(tmp_path, monkeypatch):
    pytest.importorskip("sparseml", reason="`run` needs a compression backend (the recipe's: SparseML)")
    from tests.test_pipeline_config import write_recipe

    _too_big_here(monkeypatch)
    start = time.perf_counter()
    code, message = _invoke(["run", write_recipe(tmp_path / "recipe.yaml", data=_BIG)])
    assert code == 2 and all(part in message for part in _BIG_SAYS), message
    assert time.perf_counter() - start < 60


def test_the_synthetic_memory_estimate_by_hand(monkeypatch):
    from compress_gate.config.data import SyntheticDataConfig
    from compress_gate.data import synthetic

    cfg = SyntheticDataConfig(image_size=16, n_train=1000, n_calib=500, n_test=500)
    # 2000 rows x 3 x 16 x 16 x 4 B = 6,144,000 B; the peak holds two copies: 12,288,000 B
    monkeypatch.setattr(synthetic, "_available_memory", lambda: 12_288_000)
    synthetic._check_fits_in_memory(cfg)                      # exactly fits
    monkeypatch.setattr(synthetic, "_available_memory", lambda: 12_287_999)
    with pytest.raises(InputError, match=r"take 0\.006 GB, and about 0\.012 GB while they are built, but this "
                       r"machine has 0\.012 GB"):
        synthetic._check_fits_in_memory(cfg)


# --- 4. score reads data shards through the same manifest rules ------------------------------------
@pytest.mark.parametrize("case", ["omitted", "row-count"])
def test_score_refuses_a_data_manifest_that_does_not_describe_its_shards(tmp_path, case):
    from tests._engine_fixtures import write_tiny_onnx
    from tests.test_pipeline_score import make_scoring_data, write_data_shards

    model = write_tiny_onnx(tmp_path / "m.onnx")
    write_data_shards(tmp_path / "data", make_scoring_data(), 3)      # 10 rows each
    entries = [{"file": f"d{k}.npz", "rows": 10} for k in range(3)]
    expected = "d2.npz is in the directory but not listed in manifest.json"
    if case == "omitted":
        entries = entries[:2]
    else:
        entries[1]["rows"] = 12
        expected = "d1.npz (12 listed, 10 held)"
    _manifest(tmp_path / "data", entries)
    code, message = _invoke(["score", model, tmp_path / "data", "--out", tmp_path / "p"])
    assert code == 2 and expected in message, message
    assert not (tmp_path / "p").exists()
