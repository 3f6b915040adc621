"""Eval data and predictions as directories of shards, joined by id and streamed shard by shard.

``data`` may be a directory of shards, each one holding some rows of the contract's
``data.npz`` (same columns; see :mod:`compress_gate.data._shard_files` for the npz and
Parquet layouts and the manifest), and each model's predictions (the teacher's, and
each student's of a population) a directory of shards of ``<model>.npz``. The two need not be sharded alike: rows join on ``ids`` within and
across shards.

:func:`open_shards` reads every shard once and checks what the one-file loaders check
(:func:`~compress_gate.data.load_eval_data`, :func:`~compress_gate.data.load_predictions`,
:func:`~compress_gate.data.align_scores`), per shard and across shards:

- per shard: every column check of the loaders (a corrupt or unreadable shard is an
  :class:`InputError` naming that shard file);
- across data shards: the same ``task``, ``attribute_names`` and identity columns in every
  shard; no id in two shards (both files named); some test row, and a test member of
  every identity group, in the data as a whole;
- across prediction shards: no id in two shards; no id that is not in the data; a score
  for every calib and test row (the data shard of a missing row is named).

It keeps only 64-bit id hashes (:func:`~compress_gate.metrics.poisson_bootstrap.hash_ids`)
and shard numbers, about 20 bytes per row and model. Iterating the result then yields one
:class:`ShardBlock` per data shard, in shard order, holding that shard's rows and the
scores of its calib and test rows, so memory is bounded by one data shard plus the
prediction shards that hold its ids (one each when both are sharded alike). Ids whose
hashes collide (probability about n^2 / 2^65) are still joined exactly, by string.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress_gate.data._contract_checks import check_eval_columns, check_prediction_columns, names_of
from compress_gate.data._records import EvalData, Predictions, Task
from compress_gate.data._shard_files import list_shards, read_shard_columns
from compress_gate.data.contract import align_scores
from compress_gate.errors import InputError
from compress_gate._id_hash import hash_ids

__all__ = ["ShardBlock", "ShardedInputs", "open_shards", "read_data_shard", "read_prediction_shard"]


@dataclass(frozen=True)
class ShardBlock:
    """One data shard and its scores.

    Attributes
    ----------
    shard : the data shard file
    data : every row of the shard (train rows included: BA and TCB need them)
    teacher : ndarray of shape (n_scored, K), float32
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
    """One validated predictions shard (the loader's checks)."""
    return check_prediction_columns(read_shard_columns(path, predictions=True), str(path))


class _Index:
    """Sorted id hashes of a shard directory, each with the number of its shard."""

    def __init__(self, hashes: list[np.ndarray], shards: list[Path]):
        self.shards = shards
        hash_all = np.concatenate(hashes)
        shard_of = np.concatenate([np.full(h.size, i, dtype=np.int32) for i, h in enumerate(hashes)])
        order = np.argsort(hash_all, kind="stable")
        self.hashes, self.shard_of = hash_all[order], shard_of[order]

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(self.hashes, hashes), max(self.hashes.size - 1, 0))
        return self.hashes[pos] == hashes if self.hashes.size else np.zeros(hashes.size, bool)

    def shards_holding(self, hashes: np.ndarray) -> list[int]:
        lo = np.searchsorted(self.hashes, hashes, side="left")
        hi = np.searchsorted(self.hashes, hashes, side="right")
        if not (hi > lo).any():
            return []
        spans = [self.shard_of[a:b] for a, b in zip(lo[hi > lo], hi[hi > lo])]
        return sorted(set(np.concatenate(spans).tolist()))

    def check_unique(self, read_ids: Callable[[Path], np.ndarray], what: str) -> None:
        """Raise for an id in two shards; equal hashes of different ids are collisions, not errors."""
        same = np.flatnonzero(self.hashes[1:] == self.hashes[:-1])
        pairs = sorted({(int(self.shard_of[k]), int(self.shard_of[k + 1])) for k in same})
        for a, b in pairs:                         # only shard pairs whose hashes meet
            if a == b:
                continue                           # a collision within a shard: its ids are unique
            common = np.intersect1d(read_ids(self.shards[a]), read_ids(self.shards[b]))
            if common.size:
                raise InputError(f"{self.shards[a]} and {self.shards[b]}: {common.size} id(s) occur in both "
                                 f"{what} shards, e.g. {names_of(common)}. Every id must be in exactly one "
                                 "shard: drop the repeated rows.")


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
    _predictions: tuple[_Index, ...]

    def __iter__(self) -> Iterator[ShardBlock]:
        cache: list[dict[tuple[int, ...], Predictions]] = [{} for _ in self._predictions]
        for path in self.data_shards:
            data = read_data_shard(path, extra_columns=self.extra_columns)
            scored = data.split != "train"
            wanted = hash_ids(data.ids[scored])
            scores = [self._scores(data, scored, wanted, index, memo)
                      for index, memo in zip(self._predictions, cache)]
            yield ShardBlock(shard=path, data=data, teacher=scores[0], students=tuple(scores[1:]))

    @staticmethod
    def _scores(data: EvalData, scored: np.ndarray, wanted: np.ndarray, index: _Index,
                memo: dict[tuple[int, ...], Predictions]) -> np.ndarray:
        needed = tuple(index.shards_holding(wanted))
        if needed not in memo:                    # keep only the last set of prediction shards
            memo.clear()
            parts = [read_prediction_shard(index.shards[i]) for i in needed]
            ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, str)
            scores = np.concatenate([p.scores for p in parts]) if parts else np.zeros((0, data.n_attributes),
                                                                                       np.float32)
            memo[needed] = Predictions(ids=ids, scores=scores,
                                       source=", ".join(str(index.shards[i]) for i in needed))
        preds = memo[needed]
        keep = np.isin(preds.ids, data.ids)
        return align_scores(data, Predictions(preds.ids[keep], preds.scores[keep], preds.source), scored)


def open_shards(data_dir: str | Path, teacher_dir: str | Path, student_dir: str | Path | Sequence[str | Path], *,
                extra_columns: Sequence[str] = ()) -> ShardedInputs:
    """Check the shard directories of the eval data and of the models' predictions (module docstring).

    ``student_dir`` is one directory, or a sequence of them (a population of students).

    Raises
    ------
    InputError
        Any problem the one-file loaders report, named by shard file, and the
        cross-shard problems listed in the module docstring.
    """
    data_dir = Path(data_dir)
    shards = list_shards(data_dir, "eval data")
    hashes: list[np.ndarray] = []
    scored_rows: list[np.ndarray] = []
    first: tuple[Path, tuple] | None = None
    n_test, group_test = 0, None
    for path in shards:
        data = read_data_shard(path, extra_columns=extra_columns)
        layout = (data.task, data.attribute_names, data.group_names)
        if first is None:
            first = (path, layout)
        elif layout != first[1]:
            raise InputError(f"{path}: its task, attribute names and identity columns {layout} differ from "
                             f"those of the first shard {first[0]} {first[1]}. Every shard of one data set "
                             "needs the same columns: write them from one table.")
        hashes.append(hash_ids(data.ids))
        scored_rows.append(data.split != "train")
        test = data.split == "test"
        n_test += int(test.sum())
        present = data.groups[test].any(axis=0)
        group_test = present if group_test is None else group_test | present
    assert first is not None                                     # list_shards returns at least one
    task, attribute_names, group_names = first[1]
    if n_test == 0:
        raise InputError(f"{data_dir}: no row of any shard has split 'test'; the gate judges the test "
                         "split. Mark the held-out rows with split = 'test'.")
    for name, present in zip(group_names, group_test):
        if not present:
            raise InputError(f"{data_dir}: group column `group__{name}` has no member in the test split of "
                             "any shard, so no metric can be computed for it. Add test samples of this "
                             "group, or drop the column.")
    data_index = _Index(hashes, shards)
    data_index.check_unique(lambda p: read_data_shard(p, extra_columns=extra_columns).ids, "eval data")
    needed = [(h[m], path) for h, m, path in zip(hashes, scored_rows, shards)]
    students = [student_dir] if isinstance(student_dir, (str, Path)) else list(student_dir)
    if not students:
        raise InputError("no student predictions directory was given; pass at least one.")
    indexes = tuple(_prediction_index(Path(d), data_index, needed, data_dir, extra_columns)
                    for d in (teacher_dir, *students))
    return ShardedInputs(data_shards=tuple(shards), n_samples=int(sum(h.size for h in hashes)), n_test=n_test,
                         task=task,
                         attribute_names=attribute_names, group_names=group_names,
                         extra_columns=tuple(extra_columns), _predictions=indexes)


def _prediction_index(directory: Path, data_index: _Index, needed: list[tuple[np.ndarray, Path]],
                      data_dir: Path, extra_columns: Sequence[str]) -> _Index:
    shards = list_shards(directory, "predictions")
    hashes = []
    for path in shards:
        preds = read_prediction_shard(path)
        h = hash_ids(preds.ids)
        unknown = ~data_index.contains(h)
        if unknown.any():
            raise InputError(f"{path}: {int(unknown.sum())} of its {h.size} ids are not in the eval data "
                             f"({data_dir}), e.g. {names_of(preds.ids[unknown])}. The predictions were made "
                             "for another eval set: predict the rows of this data.")
        hashes.append(h)
    index = _Index(hashes, shards)
    index.check_unique(lambda p: read_prediction_shard(p).ids, "predictions")
    for wanted, path in needed:
        missing = ~index.contains(wanted)
        if missing.any():
            data = read_data_shard(path, extra_columns=extra_columns)
            ids = data.ids[data.split != "train"][missing]
            raise InputError(f"{directory}: {ids.size} calib/test id(s) of the data shard {path} have no "
                             f"scores in any predictions shard, e.g. {names_of(ids)}. Predict every calib "
                             "and test row of the eval data.")
    return index
