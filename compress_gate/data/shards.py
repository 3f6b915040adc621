"""Eval data and predictions as directories of shards, joined by id and streamed shard by shard.

``data`` may be a directory of shards, each one holding some rows of the contract's
``data.npz`` (same columns; see :mod:`compress_gate.data._shard_files` for the npz and
Parquet layouts and the manifest), and each model's predictions (the teacher's, and
each student's of a population) a directory of shards of ``<model>.npz``. The two need not
be sharded alike: rows join on ``ids`` within and across shards.

:func:`open_shards` reads every shard once and checks what the one-file loaders check
(:func:`~compress_gate.data.load_eval_data`, :func:`~compress_gate.data.load_predictions`,
:func:`~compress_gate.data.align_scores`), per shard and across shards:

- per shard: every column check of the loaders (a corrupt or unreadable shard is an
  :class:`InputError` naming that shard file), and at least one row;
- per directory: a manifest's row counts are those of its shards;
- across data shards: the same ``task``, ``attribute_names`` and identity columns in every
  shard; no id in two shards (both files named); some test row, and a test member of
  every identity group, in the data as a whole;
- across prediction shards: K score columns in every shard (the data's K); no id in two
  shards; no id that is not in the data; a score for every calib and test row (the data
  shard of a missing row is named).

"No id in two shards" compares the ids by string in every pair of shards that hold an equal
hash, so a hash collision can hide no duplicate, whatever the order of the equal hashes;
predicted ids whose hash collides are compared with the data's by string too
(:func:`_check_collided_ids`). Only these comparisons, and an error's message, read a shard
file in this process when the per-file functions run elsewhere.

Each file is read and checked by a pure per-file function (:func:`data_summary`,
:func:`prediction_summary`), mapped over the files by ``map_files`` (``map`` in this process;
the gate's Ray execution maps them as Ray tasks), which returns the file's 64-bit id hashes
(:func:`~compress_gate._id_hash.hash_ids`), sorted; the cross-shard checks are a join of those
hashes in this process, 12 bytes per row and model (13 for the data). Iterating the result
then yields one :class:`ShardBlock` per data shard, in shard order, holding that shard's rows
and the scores of its calib and test rows, so memory is bounded by one data shard plus the
prediction shards that hold its ids (one each when both are sharded alike).
:meth:`ShardedInputs.sources` gives the same blocks as :class:`ShardSource` s, small
picklable references that a worker reads itself. Ids whose hashes collide (probability
about n^2 / 2^65) are still joined exactly, by string.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate.data._contract_checks import check_eval_columns, check_prediction_columns, empty_shard, names_of
from compress_gate.data._records import EvalData, Predictions, Task
from compress_gate.data._shard_files import (INCOMPLETE_NAME, MANIFEST_NAME, check_row_counts, list_shards,
                                            read_shard_columns, write_shard)
from compress_gate.data.contract import align_scores
from compress_gate.errors import InputError
from compress_gate._id_hash import hash_ids

__all__ = ["ShardBlock", "ShardSource", "ShardedInputs", "DataSummary", "PredictionSummary", "FileMap", "open_shards",
           "data_summary", "prediction_summary", "read_data_shard", "read_prediction_shard",
           # the shard files' names and writer (compress_gate.data._shard_files), for `score`
           "INCOMPLETE_NAME", "MANIFEST_NAME", "list_shards", "check_row_counts", "write_shard"]

#: Maps a per-file function over files, yielding its results in file order (``map`` by default).
FileMap = Callable[[Callable[[Path], Any], Sequence[Path]], Iterable[Any]]


@dataclass(frozen=True)
class ShardBlock:
    """One data shard and its scores.

    Attributes
    ----------
    shard : the data shard file
    data : every row of the shard (train rows included: BA and TCB need them)
    teacher : ndarray of shape (n_scored, K), float32 (float64 when its files hold float64)
        Scores of the shard's calib and test rows (``data.split != "train"``), in data order.
    students : tuple of such arrays, one per student directory (the first ships)
    """

    shard: Path
    data: EvalData
    teacher: np.ndarray
    students: tuple[np.ndarray, ...]

    @property
    def student(self) -> np.ndarray:
        """The first student's scores."""
        return self.students[0]

    @property
    def scored(self) -> np.ndarray:
        """Boolean (n,) mask of the rows that have scores (calib and test)."""
        return self.data.split != "train"


def read_data_shard(path: Path, *, extra_columns: Sequence[str] = ()) -> EvalData:
    """One validated eval-data shard (the loader's checks, less those that need every row)."""
    return check_eval_columns(read_shard_columns(path, predictions=False, extra_columns=extra_columns),
                              str(path), complete=False)


def read_prediction_shard(path: Path) -> Predictions:
    """One validated predictions shard (the loader's checks; like a data shard, it holds a row at least)."""
    preds = check_prediction_columns(read_shard_columns(path, predictions=True), str(path))
    if not preds.ids.size:
        raise empty_shard(str(path))
    return preds


@dataclass(frozen=True)
class DataSummary:
    """What the cross-shard checks need of one data shard (:func:`data_summary`)."""

    layout: tuple                  # (task, attribute_names, group_names)
    hashes: np.ndarray             # (n,) uint64 id hashes, ascending
    scored: np.ndarray             # (n,) bool: calib and test rows, in the order of ``hashes``
    n_test: int
    group_test: np.ndarray         # (G,) bool: identity groups with a test member in this shard


def data_summary(path: Path, *, extra_columns: Sequence[str] = ()) -> DataSummary:
    """Read and check one data shard (:func:`read_data_shard`) and summarise it for the cross-shard checks."""
    data = read_data_shard(path, extra_columns=extra_columns)
    hashes = hash_ids(data.ids)
    order = np.argsort(hashes)
    test = data.split == "test"
    return DataSummary(layout=(data.task, data.attribute_names, data.group_names), hashes=hashes[order],
                       scored=(data.split != "train")[order], n_test=int(test.sum()),
                       group_test=data.groups[test].any(axis=0))


@dataclass(frozen=True)
class PredictionSummary:
    """What the cross-shard checks need of one predictions shard (:func:`prediction_summary`)."""

    hashes: np.ndarray             # (n,) uint64 id hashes, ascending
    width: int                     # K, the number of score columns


def prediction_summary(path: Path) -> PredictionSummary:
    """Read and check one predictions shard (:func:`read_prediction_shard`) and summarise it."""
    preds = read_prediction_shard(path)
    return PredictionSummary(hashes=np.sort(hash_ids(preds.ids)), width=int(preds.scores.shape[1]))


class _Index:
    """Id hashes of a shard directory, sorted, each with the number of its shard (and, for the
    data, whether its row is scored). Joins are searches of one sorted array in another.

    Each shard's hashes come sorted (the per-file summaries sort them, in parallel on Ray), so
    the stable sort here only merges sorted runs. Memory: 12 bytes per row (13 for the data).
    """

    def __init__(self, hashes: list[np.ndarray], shards: list[Path], scored: list[np.ndarray] | None = None):
        self.shards = shards
        hash_all = np.concatenate(hashes)
        order = np.argsort(hash_all, kind="stable")
        self.hashes = hash_all[order]
        self.shard_of = np.repeat(np.arange(len(hashes), dtype=np.int32), [h.size for h in hashes])[order]
        self.scored = None if scored is None else np.concatenate(scored)[order]
        self.repeats = bool((self.hashes[1:] == self.hashes[:-1]).any())   # ids in two shards, or collisions

    def find(self, sorted_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``sorted_hashes``, the span ``[lo, hi)`` of this index holding it (empty: absent).
        Any order is correct; ascending is fast (NumPy's search then walks the index once, in order)."""
        lo = np.searchsorted(self.hashes, sorted_hashes)
        if self.repeats:
            return lo, np.searchsorted(self.hashes, sorted_hashes, side="right")
        if not self.hashes.size:
            return lo, lo
        return lo, lo + (self.hashes[np.minimum(lo, self.hashes.size - 1)] == sorted_hashes)

    def contains(self, sorted_hashes: np.ndarray) -> np.ndarray:
        lo, hi = self.find(sorted_hashes)
        return hi > lo

    def holders(self, of: _Index, lo: np.ndarray, hi: np.ndarray) -> list[tuple[int, ...]]:
        """Per shard of ``of`` (the data): the shards of this index that hold the hashes of its scored
        rows, given the spans ``lo, hi = self.find(of.hashes)``. Equal hashes of different ids
        (collisions) count every shard holding one. Memory: one byte per pair of shards."""
        assert of.scored is not None
        rows = of.scored & (hi > lo)
        seen = np.zeros((len(of.shards), len(self.shards)), dtype=bool)
        seen[of.shard_of[rows], self.shard_of[lo[rows]]] = True
        for k in np.flatnonzero(rows & (hi - lo > 1)):          # collisions only: about n^2 / 2^65 of them
            seen[of.shard_of[k], self.shard_of[lo[k]:hi[k]]] = True
        return [tuple(np.flatnonzero(row).tolist()) for row in seen]

    def repeated(self) -> np.ndarray:
        """The hashes held more than once, each once, ascending: ids in two shards, or collisions."""
        if not self.repeats:
            return self.hashes[:0]
        return np.unique(self.hashes[1:][self.hashes[1:] == self.hashes[:-1]])

    def shard_pairs(self) -> list[tuple[int, int]]:
        """Every pair ``(a, b)``, ``a < b``, of shards that hold an equal hash, however many entries
        share it and in whatever order (not only neighbours in the sorted index), ascending."""
        same = self.hashes[1:] == self.hashes[:-1]
        in_run = np.r_[same, False] | np.r_[False, same]
        run = np.cumsum(np.r_[True, ~same])[in_run]                      # the run of equal hashes of each
        held = np.unique(np.stack([run, self.shard_of[in_run]], axis=1), axis=0)  # (run, shard), by run
        starts = np.flatnonzero(np.r_[True, held[1:, 0] != held[:-1, 0]])
        sizes = np.diff(np.r_[starts, len(held)])
        pairs = {(int(held[i, 1]), int(held[i + 1, 1])) for i in starts[sizes == 2]}
        for i, size in zip(starts[sizes > 2], sizes[sizes > 2]):       # 3 or more shards share one hash
            pairs.update(itertools.combinations(held[i:i + size, 1].tolist(), 2))
        return sorted(pairs)

    def check_unique(self, read_ids: Callable[[Path], np.ndarray], what: str) -> None:
        """Raise for an id in two shards, compared by string in every pair of shards that share a
        hash; equal hashes of different ids are collisions, not errors (within one shard its
        ids are unique: the per-shard checks)."""
        if not self.repeats:
            return
        for a, b in self.shard_pairs():
            common = np.intersect1d(read_ids(self.shards[a]), read_ids(self.shards[b]))
            if common.size:
                raise InputError(f"{self.shards[a]} and {self.shards[b]}: {common.size} id(s) occur in both "
                                 f"{what} shards, e.g. {names_of(common)}. Every id must be in exactly one "
                                 "shard: drop the repeated rows.")

    def ids_with(self, hashes: np.ndarray, read_ids: Callable[[Path], np.ndarray]) -> np.ndarray:
        """The id strings of this index whose hash is one of ``hashes`` (read from the shards holding them)."""
        shards = np.unique(self.shard_of[np.isin(self.hashes, hashes)])
        found = [ids[np.isin(hash_ids(ids), hashes)] for ids in (read_ids(self.shards[k]) for k in shards)]
        return np.concatenate(found) if found else np.zeros(0, str)


@dataclass(frozen=True)
class ShardSource:
    """Where one data shard's block is: the data shard file and, per model (teacher first, then
    each student), the prediction shard files that hold its calib and test ids. Small and
    picklable: :meth:`read` gives the :class:`ShardBlock`, wherever the files can be read."""

    data: Path
    predictions: tuple[tuple[Path, ...], ...]
    extra_columns: tuple[str, ...] = ()

    def read(self) -> ShardBlock:
        """The block: the data shard and its scores (the files were checked by :func:`open_shards`)."""
        data = read_data_shard(self.data, extra_columns=self.extra_columns)
        scores = [_aligned(data, _joined([read_prediction_shard(p) for p in paths], data.n_attributes))
                  for paths in self.predictions]
        return ShardBlock(shard=self.data, data=data, teacher=scores[0], students=tuple(scores[1:]))


def _joined(parts: list[Predictions], n_attributes: int) -> Predictions:
    """Prediction shards as one :class:`Predictions` (no shard: none of the K columns)."""
    if not parts:
        return Predictions(ids=np.zeros(0, str), scores=np.zeros((0, n_attributes), np.float32), source="")
    return Predictions(ids=np.concatenate([p.ids for p in parts]), scores=np.concatenate([p.scores for p in parts]),
                       source=", ".join(p.source for p in parts))


def _aligned(data: EvalData, preds: Predictions) -> np.ndarray:
    """The scores of ``data``'s calib and test rows, in data order, from ``preds`` (rows of other shards dropped)."""
    keep = np.isin(preds.ids, data.ids)
    return align_scores(data, Predictions(preds.ids[keep], preds.scores[keep], preds.source), data.split != "train")


@dataclass(frozen=True)
class ShardedInputs:
    """Checked shard directories (:func:`open_shards`); iterate for the :class:`ShardBlock` s."""

    data_shards: tuple[Path, ...]
    n_samples: int
    n_test: int
    task: Task
    attribute_names: tuple[str, ...]
    group_names: tuple[str, ...]
    extra_columns: tuple[str, ...]
    _holders: tuple[tuple[tuple[Path, ...], ...], ...]   # per data shard, per model: the prediction shards

    def sources(self) -> list[ShardSource]:
        """Every data shard's :class:`ShardSource`, in shard order."""
        return [ShardSource(path, holders, self.extra_columns)
                for path, holders in zip(self.data_shards, self._holders)]

    def __iter__(self) -> Iterator[ShardBlock]:
        """The blocks in shard order, read here; a model's prediction shards are read once for
        consecutive data shards that need the same ones."""
        loaded: dict[int, tuple[tuple[Path, ...], Predictions]] = {}    # per model: the last shards read
        for path, holders in zip(self.data_shards, self._holders):
            data = read_data_shard(path, extra_columns=self.extra_columns)
            scores = []
            for model, paths in enumerate(holders):
                if model not in loaded or loaded[model][0] != paths:
                    loaded[model] = (paths, _joined([read_prediction_shard(p) for p in paths], data.n_attributes))
                scores.append(_aligned(data, loaded[model][1]))
            yield ShardBlock(shard=path, data=data, teacher=scores[0], students=tuple(scores[1:]))


def open_shards(data_dir: str | Path, teacher_dir: str | Path, student_dir: str | Path | Sequence[str | Path], *,
                extra_columns: Sequence[str] = (), map_files: FileMap = map) -> ShardedInputs:
    """Check the shard directories of the eval data and of the models' predictions, and join them by id.

    Every file is read once and checked as the one-file loaders check it; across shards: the
    same task, attribute and identity columns in every data shard, no id in two shards, some
    test row and a test member of every identity group, K score columns in every prediction
    shard, no predicted id outside the data, and a score for every calib and test row.

    ``student_dir`` is one directory, or a sequence of them (a population of students).
    ``map_files(fn, paths)`` runs the per-file reads and checks (:func:`data_summary`,
    :func:`prediction_summary`) and yields their results in file order. It is called for every
    directory before any result is read, so a map that starts its work when called (the Ray
    backend's) checks all the directories at once.

    Raises
    ------
    InputError
        Any problem the one-file loaders report, named by shard file, and each cross-shard
        problem above (naming both files of a duplicated id, or the data shard of a missing row).
    """
    data_dir = Path(data_dir)
    students = [student_dir] if isinstance(student_dir, (str, Path)) else list(student_dir)
    if not students:
        raise InputError("no student predictions directory was given; pass at least one.")
    shards = list_shards(data_dir, "eval data")
    pending = map_files(partial(data_summary, extra_columns=tuple(extra_columns)), shards)
    models = [(Path(d), list_shards(d, "predictions")) for d in (teacher_dir, *students)]
    model_summaries = [map_files(prediction_summary, paths) for _, paths in models]   # Ray: all start at once
    summaries: list[DataSummary] = list(pending)
    first = summaries[0]                                         # list_shards returns at least one
    for path, summary in zip(shards, summaries):
        if summary.layout != first.layout:
            raise InputError(f"{path}: its task, attribute names and identity columns {summary.layout} differ "
                             f"from those of the first shard {shards[0]} {first.layout}. Every shard of one data "
                             "set needs the same columns: write them from one table.")
    task, attribute_names, group_names = first.layout
    n_test = sum(s.n_test for s in summaries)
    if n_test == 0:
        raise InputError(f"{data_dir}: no row of any shard has split 'test'; the gate judges the test "
                         "split. Mark the held-out rows with split = 'test'.")
    group_test = np.logical_or.reduce([s.group_test for s in summaries])
    for name, present in zip(group_names, group_test):
        if not present:
            raise InputError(f"{data_dir}: group column `group__{name}` has no member in the test split of "
                             "any shard, so no metric can be computed for it. Add test samples of this "
                             "group, or drop the column.")
    check_row_counts(data_dir, shards, [s.hashes.size for s in summaries], "eval data")
    data_index = _Index([s.hashes for s in summaries], shards, scored=[s.scored for s in summaries])
    data_index.check_unique(lambda p: read_data_shard(p, extra_columns=extra_columns).ids, "eval data")
    holders = [_prediction_holders(directory, paths, list(results), data_index, data_dir, extra_columns,
                                   n_attributes=len(attribute_names))
               for (directory, paths), results in zip(models, model_summaries)]
    return ShardedInputs(data_shards=tuple(shards), n_samples=int(sum(s.hashes.size for s in summaries)),
                         n_test=n_test, task=task, attribute_names=attribute_names, group_names=group_names,
                         extra_columns=tuple(extra_columns), _holders=tuple(zip(*holders)))


def _check_widths(directory: Path, shards: list[Path], widths: list[int], n_attributes: int, data_dir: Path) -> None:
    """Raise for a predictions shard whose number of score columns is not the data's K."""
    for path, width in zip(shards, widths):
        if width != n_attributes:
            others = sorted(set(widths))
            raise InputError(f"{path}: `scores` has {width} columns but the eval data ({data_dir}) has K = "
                             f"{n_attributes} attributes or classes (the shards of {directory} have "
                             f"{', '.join(map(str, others))} columns). Every predictions shard needs one column per "
                             "attribute or class: score every shard with the same model, for this data.")


def _prediction_holders(directory: Path, shards: list[Path], summaries: list[PredictionSummary],
                        data_index: _Index, data_dir: Path, extra_columns: Sequence[str], *,
                        n_attributes: int) -> list[tuple[Path, ...]]:
    """Check one model's prediction shards (their widths and id hashes) against the data; per data
    shard, the prediction shards holding its ids."""
    _check_widths(directory, shards, [s.width for s in summaries], n_attributes, data_dir)
    check_row_counts(directory, shards, [s.hashes.size for s in summaries], "predictions")
    index = _Index([s.hashes for s in summaries], shards)
    unknown = ~data_index.contains(index.hashes)
    if unknown.any():
        path = shards[int(index.shard_of[unknown].min())]
        ids = read_prediction_shard(path).ids
        strangers = ids[~np.isin(hash_ids(ids), data_index.hashes)]
        raise InputError(f"{path}: {strangers.size} of its {ids.size} ids are not in the eval data "
                         f"({data_dir}), e.g. {names_of(strangers)}. The predictions were made "
                         "for another eval set: predict the rows of this data.")
    read_ids = lambda p: read_prediction_shard(p).ids  # noqa: E731
    index.check_unique(read_ids, "predictions")
    _check_collided_ids(directory, index, data_index, read_ids, data_dir, extra_columns)
    assert data_index.scored is not None
    lo, hi = index.find(data_index.hashes)
    missing = data_index.scored & (hi == lo)
    if missing.any():
        path = data_index.shards[int(data_index.shard_of[missing].min())]
        data = read_data_shard(path, extra_columns=extra_columns)
        scored_ids = data.ids[data.split != "train"]
        ids = scored_ids[~np.isin(hash_ids(scored_ids), index.hashes)]
        raise InputError(f"{directory}: {ids.size} calib/test id(s) of the data shard {path} have no "
                         f"scores in any predictions shard, e.g. {names_of(ids)}. Predict every calib "
                         "and test row of the eval data.")
    return [tuple(shards[i] for i in held) for held in index.holders(data_index, lo, hi)]


def _check_collided_ids(directory: Path, index: _Index, data_index: _Index, read_ids: Callable[[Path], np.ndarray],
                        data_dir: Path, extra_columns: Sequence[str]) -> None:
    """Compare by string the prediction ids whose hash another id shares (a collision; the hash join
    alone would take one for the other): each must be an id of the data. A predicted id whose
    colliding twin is neither predicted nor held twice in the data is found by string when its
    data shard is read (a calib/test twin: its scores are missing) or ignored (a train twin)."""
    collided = np.union1d(index.repeated(), np.intersect1d(data_index.repeated(), index.hashes))
    if not collided.size:
        return
    predicted = index.ids_with(collided, read_ids)
    known = data_index.ids_with(collided, lambda p: read_data_shard(p, extra_columns=extra_columns).ids)
    strangers = np.setdiff1d(predicted, known)
    if strangers.size:
        raise InputError(f"{directory}: {strangers.size} predicted id(s) are not in the eval data "
                         f"({data_dir}), e.g. {names_of(strangers)}, though their 64-bit hashes equal those of "
                         "other ids (found by string). The predictions were made for another eval set: "
                         "predict the rows of this data.")
