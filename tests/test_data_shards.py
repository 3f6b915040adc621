"""Sharded eval data and predictions: the join, the streaming blocks, and every refusal naming its shard."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from compress_gate.data._columns import GROUP_PREFIX
from compress_gate.data._shard_files import INCOMPLETE_NAME, write_shard
from compress_gate.data import shards as shards_module
from compress_gate.data.shards import open_shards
from compress_gate.errors import InputError
from tests._gate_data import make_data


def _eval_columns(data, rows) -> dict[str, np.ndarray]:
    columns = {"ids": data.ids[rows], "labels": data.labels[rows], "split": data.split[rows],
               "attribute_names": np.asarray(data.attribute_names), "task": np.asarray(data.task)}
    for j, name in enumerate(data.group_names):
        columns[GROUP_PREFIX + name] = data.groups[rows, j].astype(np.uint8)
    return columns


def _scores(data, seed):
    return np.random.default_rng(seed).random((data.n_samples, data.n_attributes)).astype(np.float32)


def _write_dirs(tmp_path: Path, data, n_data: int, n_pred: int, *, seed: int = 0, suffix: str = ".npz"):
    """Data in ``n_data`` shuffled shards; teacher/student over scored rows in ``n_pred`` other shards."""
    rng = np.random.default_rng(seed)
    dirs = {name: tmp_path / name for name in ("data", "teacher", "student")}
    for k, rows in enumerate(np.array_split(rng.permutation(data.n_samples), n_data)):
        write_shard(dirs["data"] / f"part-{k:03d}{suffix}", _eval_columns(data, np.sort(rows)))
    scored = np.flatnonzero(data.split != "train")
    for name, scores in (("teacher", _scores(data, 1)), ("student", _scores(data, 2))):
        for k, rows in enumerate(np.array_split(rng.permutation(scored), n_pred)):
            write_shard(dirs[name] / f"p{k:03d}{suffix}", {"ids": data.ids[rows], "scores": scores[rows]})
    return dirs


def _gather(sharded):
    """Blocks re-assembled by id: {id: (labels row, split, teacher row or None, student row or None)}."""
    out = {}
    for block in sharded:
        t = iter(block.teacher)
        s = iter(block.student)
        for i, sample in enumerate(block.data.ids):
            scored = block.scored[i]
            out[sample] = (block.data.labels[i].tolist(), block.data.split[i],
                           next(t).tolist() if scored else None, next(s).tolist() if scored else None)
    return out


@pytest.mark.parametrize("n_data, n_pred", [(1, 1), (37, 5), (4, 4)])
def test_shards_join_to_the_one_file_result(tmp_path, n_data, n_pred):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, n_data, n_pred)
    sharded = open_shards(dirs["data"], dirs["teacher"], dirs["student"])
    assert sharded.n_samples == data.n_samples and len(sharded.data_shards) == n_data
    assert sharded.attribute_names == data.attribute_names and sharded.group_names == data.group_names
    got = _gather(sharded)
    scored = data.split != "train"
    teacher, student = _scores(data, 1), _scores(data, 2)
    assert sorted(got) == sorted(data.ids.tolist())
    for i in range(data.n_samples):
        expected = (data.labels[i].tolist(), data.split[i], teacher[i].tolist() if scored[i] else None,
                    student[i].tolist() if scored[i] else None)
        assert got[data.ids[i]] == expected
    assert _gather(sharded) == got                       # iterable again, same blocks


def _gather_sources(sharded):
    """:func:`_gather` of the blocks that the pickled sources read, as a worker would."""
    return _gather(source.read() for source in pickle.loads(pickle.dumps(sharded.sources())))


def test_sources_are_small_references_that_read_the_same_blocks(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 37, 5)
    sharded = open_shards(dirs["data"], dirs["teacher"], dirs["student"])
    sources = sharded.sources()
    assert [s.data for s in sources] == list(sharded.data_shards)
    assert b"numpy" not in pickle.dumps(sources)          # paths only: no array travels with them
    assert _gather_sources(sharded) == _gather(sharded)
    for source in sources:                       # per model, exactly the prediction shards holding its ids
        ids = set(np.load(source.data)["ids"][np.load(source.data)["split"] != "train"].tolist())
        for model, paths in zip(("teacher", "student"), source.predictions):
            holding = [p for p in sorted(dirs[model].iterdir()) if ids & set(np.load(p)["ids"].tolist())]
            assert list(paths) == holding


def test_a_data_shard_without_scored_rows_reads_no_predictions(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 3)
    write_shard(dirs["data"] / "part-000.npz", _eval_columns(data, np.flatnonzero(data.split == "train")))
    write_shard(dirs["data"] / "part-001.npz", _eval_columns(data, np.flatnonzero(data.split != "train")))
    sharded = open_shards(*dirs.values())
    train_only = sharded.sources()[0]
    assert train_only.predictions == ((), ())
    block = train_only.read()
    assert block.teacher.shape == (0, data.n_attributes) and block.data.n_samples == (data.split == "train").sum()
    assert _gather_sources(sharded) == _gather(sharded)


def test_every_file_is_read_and_checked_through_map_files(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 4, 3)
    seen: list[Path] = []

    def recording_map(fn, paths):
        seen.extend(paths)
        return map(fn, paths)
    sharded = open_shards(*dirs.values(), map_files=recording_map)
    assert sorted(seen) == sorted(p for d in dirs.values() for p in d.iterdir())
    assert _gather(sharded) == _gather(open_shards(*dirs.values()))


def test_ids_whose_hashes_collide_are_still_joined_by_id(tmp_path, monkeypatch):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 5, 3)
    expected = _gather(open_shards(*dirs.values()))
    real = shards_module.hash_ids
    monkeypatch.setattr(shards_module, "hash_ids", lambda ids: real(ids) % np.uint64(3))   # 3 hash values in all
    sharded = open_shards(*dirs.values())
    assert _gather(sharded) == expected and _gather_sources(sharded) == expected
    assert all(len(paths) == 3 for source in sharded.sources() for paths in source.predictions)


def test_parquet_shards_equal_npz_shards(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet shards need pyarrow (the [ray] extra)")
    data = make_data()
    npz = _write_dirs(tmp_path / "npz", data, 3, 2)
    parquet = _write_dirs(tmp_path / "pq", data, 3, 2, suffix=".parquet")
    assert _gather(open_shards(*npz.values())) == _gather(open_shards(*parquet.values()))


def _error(*dirs) -> str:
    with pytest.raises(InputError) as info:
        open_shards(*dirs)
    return str(info.value)


def test_duplicate_id_across_data_shards_names_both(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 3, 1)
    write_shard(dirs["data"] / "part-999.npz", _eval_columns(data, [5]))
    msg = _error(*dirs.values())
    assert "part-999.npz" in msg and "occur in both eval data shards" in msg and repr(str(data.ids[5])) in msg


def test_duplicate_id_across_prediction_shards(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 2)
    row = int(np.flatnonzero(data.split == "test")[0])
    write_shard(dirs["student"] / "p999.npz", {"ids": data.ids[[row]], "scores": _scores(data, 2)[[row]]})
    msg = _error(*dirs.values())
    assert "p999.npz" in msg and "occur in both predictions shards" in msg


def test_missing_scores_name_the_data_shard(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 1, 1)
    shard = dirs["teacher"] / "p000.npz"
    with np.load(shard) as f:
        ids, scores = f["ids"], f["scores"]
    write_shard(shard, {"ids": ids[1:], "scores": scores[1:]})
    msg = _error(*dirs.values())
    assert "part-000.npz" in msg and "have no scores" in msg and repr(str(ids[0])) in msg


def test_unknown_prediction_id_names_the_shard(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 1, 1)
    write_shard(dirs["student"] / "extra.npz", {"ids": np.array(["nope"]), "scores": np.zeros((1, 3), np.float32)})
    msg = _error(*dirs.values())
    assert "extra.npz" in msg and "'nope'" in msg and "not in the eval data" in msg


def test_corrupt_shard_is_named(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 3, 1)
    (dirs["data"] / "part-001.npz").write_bytes(b"PK\x03\x04 truncated")
    msg = _error(*dirs.values())
    assert "part-001.npz" in msg and "not a readable .npz" in msg


def test_corrupt_parquet_shard_is_named(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet shards need pyarrow (the [ray] extra)")
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1, suffix=".parquet")
    (dirs["teacher"] / "p000.parquet").write_bytes(b"PAR1 not really")
    msg = _error(*dirs.values())
    assert "p000.parquet" in msg and "not a readable Parquet" in msg


def test_shard_checks_and_whole_data_checks(tmp_path):
    data = make_data()
    # a train-only shard is fine on its own; a group with no test member anywhere is not
    dirs = _write_dirs(tmp_path, data, 2, 1)
    train = np.flatnonzero(data.split == "train")
    write_shard(dirs["data"] / "part-000.npz", _eval_columns(data, train))
    write_shard(dirs["data"] / "part-001.npz", _eval_columns(data, np.flatnonzero(data.split != "train")))
    assert open_shards(*dirs.values()).n_samples == data.n_samples
    cols = _eval_columns(data, train)
    cols["labels"] = cols["labels"] * 2
    write_shard(dirs["data"] / "part-000.npz", cols)
    assert "part-000.npz" in _error(*dirs.values()) and "only 0 and 1" in _error(*dirs.values())


def test_shards_must_share_their_layout(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    cols = _eval_columns(data, [0, 1])
    cols["attribute_names"] = np.array(["a", "b", "c"])
    write_shard(dirs["data"] / "part-000.npz", cols)
    msg = _error(*dirs.values())
    assert "part-000.npz" in msg and "differ from those of the first shard" in msg


def test_directory_rules(tmp_path):
    data = make_data()
    dirs = _write_dirs(tmp_path, data, 2, 1)
    (dirs["data"] / "notes.csv").write_text("x")
    assert "notes.csv is not eval data shards" in _error(*dirs.values())
    (dirs["data"] / "notes.csv").unlink()
    (dirs["teacher"] / INCOMPLETE_NAME).write_text("")
    assert "did not finish" in _error(*dirs.values())
    (dirs["teacher"] / INCOMPLETE_NAME).unlink()
    (dirs["teacher"] / "manifest.json").write_text(json.dumps({"shards": [{"file": "gone.npz", "rows": 1}]}))
    assert "'gone.npz', which is missing" in _error(*dirs.values())
    assert "does not exist" in _error(tmp_path / "nowhere", dirs["teacher"], dirs["student"])
