"""The gate on directories of shards: streamed shard by shard in this process, or one Ray task per shard.

Memory in this process: one data shard and the prediction shards holding its ids at a
time (:mod:`compress_gate.data.shards`), plus the merged count tables (B-sized) and the
gathered calib rows and override candidates (:mod:`compress_gate.gate._stats`). On Ray
(``backend="ray"``) this process reads the shards and sends each to a task running the
pure per-shard function (retried up to ``RAY_RETRIES`` times when its worker dies), with
at most two tasks per cluster CPU in flight, and adds the results as they come back; the
result is the same as in one process, bit for bit (every merged table holds integers).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress_gate._ray import RAY_RETRIES, check_backend, ray_session
from compress_gate.config.gate import GateConfig
from compress_gate.data.shards import ShardedInputs, open_shards
from compress_gate.gate._measures import Layout
from compress_gate.gate._stats import ShardInput
from compress_gate.gate.evaluate import GateResult, ShardMap, evaluate_shards

__all__ = ["StreamedShards", "judge_shards"]

_WHAT = "the gate's per-shard statistics"
HOLD_ENV = "COMPRESS_GATE_TEST_HOLD_TASK"     # a test hook, unset in use: see _apply


@dataclass(frozen=True)
class StreamedShards:
    """Checked shard directories as a re-iterable of :class:`~compress_gate.gate._stats.ShardInput`,
    each read when the iteration reaches it."""

    sharded: ShardedInputs

    def __iter__(self) -> Iterator[ShardInput]:
        for block in self.sharded:
            yield ShardInput.from_data(block.data, block.teacher, list(block.students), name=str(block.shard))


def _apply(fn: Callable[[ShardInput], Any], shard: ShardInput) -> Any:
    """``fn(shard)``: the body of a Ray task (a top-level function, so Ray can ship it).

    Test hook, off unless the workers' environment sets :data:`HOLD_ENV` to a folder: the first
    task to create ``<folder>/claimed`` writes its worker's pid to ``<folder>/pid`` and sleeps
    60 s before computing, so that a test can kill that worker mid-gate (Ray retries the task;
    tests/test_gate_ray_cluster.py). Every other task, and the retry, computes at once.
    """
    folder = os.environ.get(HOLD_ENV)
    if folder:
        try:
            os.close(os.open(os.path.join(folder, "claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            with open(os.path.join(folder, ".pid.tmp"), "w", encoding="utf-8") as tmp:
                tmp.write(str(os.getpid()))
            os.replace(os.path.join(folder, ".pid.tmp"), os.path.join(folder, "pid"))
            time.sleep(60)
    return fn(shard)


def _ray_map(ray: Any) -> Callable[[Callable[[ShardInput], Any], Iterable[ShardInput]], Iterator[Any]]:
    """A shard map running one Ray task per shard, a bounded window of them in flight."""
    task = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(_apply)
    window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(fn: Callable[[ShardInput], Any], shards: Iterable[ShardInput]) -> Iterator[Any]:
        pending: deque = deque()
        for shard in shards:
            pending.append(task.remote(fn, shard))
            if len(pending) >= window:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
    return run


def judge_shards(data: str | Path, teacher: str | Path, students: Sequence[str | Path], config: GateConfig, *,
                 extra_columns: Sequence[str] = (), backend: str = "local", address: str | None = None
                 ) -> GateResult:
    """Check the shard directories (:func:`~compress_gate.data.shards.open_shards`: any problem is an
    :class:`~compress_gate.errors.InputError` naming the shard) and judge them with
    :func:`~compress_gate.gate.evaluate.evaluate_shards`, shard by shard in this process
    (``backend="local"``) or as Ray tasks (``"ray"``, on the cluster at ``address``, else a
    local one)."""
    check_backend(backend, what=_WHAT)
    sharded = open_shards(data, teacher, list(students), extra_columns=extra_columns)
    layout = Layout(sharded.task, sharded.attribute_names, sharded.group_names)
    inputs = {"data": str(data), "teacher": [str(teacher)], "students": [str(s) for s in students]}

    def judge(map_shards: ShardMap) -> GateResult:
        return evaluate_shards(StreamedShards(sharded), layout, config, n_test=sharded.n_test,
                               n_students=len(students), map_shards=map_shards, score_rows=False, inputs=inputs)
    if backend == "local":
        return judge(map)
    with ray_session(address, what=_WHAT) as ray:
        return judge(_ray_map(ray))
