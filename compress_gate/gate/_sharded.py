"""The gate on directories of shards: streamed shard by shard in this process, with bounded memory.

Memory: one data shard and the prediction shards holding its ids at a time
(:mod:`compress_gate.data.shards`), plus the merged count tables (B-sized) and the
gathered calib rows and override candidates (:mod:`compress_gate.gate._stats`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from compress_gate.config.gate import GateConfig
from compress_gate.data.shards import ShardedInputs, open_shards
from compress_gate.gate._measures import Layout
from compress_gate.gate._stats import ShardInput
from compress_gate.gate.evaluate import GateResult, ShardMap, evaluate_shards

__all__ = ["StreamedShards", "judge_shards"]


@dataclass(frozen=True)
class StreamedShards:
    """Checked shard directories as a re-iterable of :class:`~compress_gate.gate._stats.ShardInput`,
    each read when the iteration reaches it."""

    sharded: ShardedInputs

    def __iter__(self) -> Iterator[ShardInput]:
        for block in self.sharded:
            yield ShardInput.from_data(block.data, block.teacher, list(block.students), name=str(block.shard))


def judge_shards(data: str | Path, teacher: str | Path, students: Sequence[str | Path], config: GateConfig, *,
                 extra_columns: Sequence[str] = (), map_shards: ShardMap = map) -> GateResult:
    """Check the shard directories (:func:`~compress_gate.data.shards.open_shards`: any problem is an
    :class:`~compress_gate.errors.InputError` naming the shard) and judge them with
    :func:`~compress_gate.gate.evaluate.evaluate_shards`, shard by shard."""
    sharded = open_shards(data, teacher, list(students), extra_columns=extra_columns)
    layout = Layout(sharded.task, sharded.attribute_names, sharded.group_names)
    inputs = {"data": str(data), "teacher": [str(teacher)], "students": [str(s) for s in students]}
    return evaluate_shards(StreamedShards(sharded), layout, config, n_test=sharded.n_test,
                           n_students=len(students), map_shards=map_shards, inputs=inputs)
