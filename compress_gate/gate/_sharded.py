"""The gate on directories of shards: streamed shard by shard in this process, or as Ray tasks.

Memory in this process: one data shard and the prediction shards holding its ids at a
time (:mod:`compress_gate.data.shards`; on Ray, none), the sorted id hashes of the checks,
the merged count tables (B-sized), the override candidates and, when thresholds are
calibrated, the calib rows (:mod:`compress_gate.gate._stats`).

On Ray (``execution="ray"``) this process moves no shard: the files are read where the tasks
run, so the shard directories must be readable at the same paths on every node (one
machine, or a shared filesystem). Each map over a directory's files is at most ``2 x``
(cluster CPUs) tasks, each given a run of consecutive files by path:

- the checks (one map per directory, all started at once): each task reads and checks its
  files (:func:`~compress_gate.data.shards.data_summary`,
  :func:`~compress_gate.data.shards.prediction_summary`) and returns their id hashes, which
  this process joins (:func:`~compress_gate.data.shards.open_shards`);
- the gate's two passes: each task reads its shards (:meth:`~compress_gate.data.shards.ShardSource.read`),
  computes the pure per-shard function on each and returns the sum, so this process adds at
  most ``2 x`` CPUs results per pass, not one per shard.

A task whose worker dies is retried up to ``RAY_RETRIES`` times; the result is the same as in
one process, bit for bit (every merged table holds integers, and the sum is taken in shard order).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress_gate.execution import RAY_RETRIES, Execution, ray_session
from compress_gate.config.gate import GateConfig
from compress_gate.data.shards import ShardBlock, ShardedInputs, ShardSource, open_shards
from compress_gate.errors import InputError
from compress_gate.gate._measures import Layout
from compress_gate.gate._stats import ShardInput, merge
from compress_gate.gate.evaluate import GateResult, ShardMap, evaluate_shards

__all__ = ["StreamedShards", "judge_shards", "runs"]

_WHAT = "the gate's per-shard statistics"


@dataclass(frozen=True)
class StreamedShards:
    """Checked shard directories as a re-iterable of :class:`~compress_gate.gate._stats.ShardInput`,
    each read when the iteration reaches it."""

    sharded: ShardedInputs

    def __iter__(self) -> Iterator[ShardInput]:
        for block in self.sharded:
            yield _shard_input(block)


def _shard_input(block: ShardBlock) -> ShardInput:
    return ShardInput.from_data(block.data, block.teacher, list(block.students), name=str(block.shard))


def runs(n_items: int, n_tasks: int) -> list[range]:
    """``n_items`` split into ``min(n_items, n_tasks)`` runs of consecutive indices whose sizes differ by at most 1."""
    if n_items == 0:
        return []
    n_runs = min(n_items, max(1, n_tasks))
    size, extra = divmod(n_items, n_runs)
    bounds = [i * size + min(i, extra) for i in range(n_runs + 1)]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _reachable(*paths: Path) -> None:
    """Raise when a file that the driver listed is not there for this task (no shared filesystem)."""
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: not found on the Ray node {socket.gethostname()}, where a task of the "
                             "gate ran, though this process listed it. With --execution ray every node reads the "
                             "shard files itself: put the shard directories on a filesystem that every node "
                             "mounts at the same path, or drop --execution ray to stream them in one process.")


def _summed(fn: Callable[[ShardInput], Any], sources: list[ShardSource]) -> Any:
    """The body of a statistics task: ``fn`` on each of its shards, read here, added up in shard order
    as they are computed (one shard and one running sum in memory)."""
    return merge(fn(_shard_input(_read(source))) for source in sources)


def _read(source: ShardSource) -> ShardBlock:
    _reachable(source.data, *(path for paths in source.predictions for path in paths))
    return source.read()


def _each(fn: Callable[[Path], Any], paths: list[Path]) -> list[Any]:
    """The body of a checks task: ``fn`` on each of its files, in order."""
    _reachable(*paths)
    return [fn(path) for path in paths]


@dataclass(frozen=True)
class _RayMaps:
    """Maps over files (the checks) and shard sources (the gate's passes) as Ray tasks, each a run of
    consecutive items, at most ``2 x`` cluster CPUs tasks per map, results taken in item order."""

    ray: Any

    def _tasks(self, body: Callable, fn: Callable, items: Sequence[Any]) -> Iterator[Any]:
        """Start the tasks now; the iterator gives their results in order."""
        remote = self.ray.remote(num_cpus=1, max_retries=RAY_RETRIES, retry_exceptions=False)(body)
        n_tasks = 2 * max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        fn_ref = self.ray.put(fn)
        refs = [remote.remote(fn_ref, [items[i] for i in run]) for run in runs(len(items), n_tasks)]
        # A failed task (or an abandoned map) cancels no other task (map_tasks says why): they finish, dropped.
        return (self.ray.get(ref) for ref in refs)

    def files(self, fn: Callable[[Path], Any], paths: Sequence[Path]) -> Iterator[Any]:
        return (result for results in self._tasks(_each, fn, list(paths)) for result in results)

    def shards(self, fn: Callable[[ShardInput], Any], sources: Sequence[ShardSource]) -> Iterator[Any]:
        return self._tasks(_summed, fn, list(sources))


def judge_shards(data: str | Path, teacher: str | Path, students: Sequence[str | Path], config: GateConfig, *,
                 extra_columns: Sequence[str] = (), execution: Execution = "local", address: str | None = None
                 ) -> GateResult:
    """Check the shard directories (:func:`~compress_gate.data.shards.open_shards`: any problem is an
    :class:`~compress_gate.errors.InputError` naming the shard) and judge them with
    :func:`~compress_gate.gate.evaluate.evaluate_shards`, shard by shard in this process
    (``execution="local"``: one data shard and its prediction rows in memory at a time) or as Ray
    tasks (``"ray"``, on the cluster at ``address``, else a local one: at most 2 × cluster CPUs
    tasks per pass, each reading a run of shard files where it runs and returning their sum, so
    the shard directories must be readable at the same paths on every node). The result is the
    same either way, bit for bit. ``execution`` is checked by the caller
    (:func:`compress_gate.execution.check_execution`)."""
    inputs = {"data": str(data), "teacher": [str(teacher)], "students": [str(s) for s in students]}
    if execution == "local":
        sharded = open_shards(data, teacher, list(students), extra_columns=extra_columns)
        return _judge(sharded, config, inputs, len(students), StreamedShards, map)
    dirs = [Path(d).absolute() for d in (data, teacher, *students)]     # tasks run in other directories
    with ray_session(address, what=_WHAT) as ray:
        maps = _RayMaps(ray)
        sharded = open_shards(dirs[0], dirs[1], dirs[2:], extra_columns=extra_columns, map_files=maps.files)
        return _judge(sharded, config, inputs, len(students), ShardedInputs.sources, maps.shards)


def _judge(sharded: ShardedInputs, config: GateConfig, inputs: dict, n_students: int,
           shards: Callable[[ShardedInputs], Any], map_shards: ShardMap) -> GateResult:
    """:func:`~compress_gate.gate.evaluate.evaluate_shards` on checked shards, as ``map_shards`` takes them."""
    return evaluate_shards(shards(sharded), Layout(sharded.task, sharded.attribute_names, sharded.group_names),
                           config, n_test=sharded.n_test, n_students=n_students,
                           map_shards=map_shards, inputs=inputs)
