"""``compress-gate score``: a model's scores on an eval set, written as a directory of prediction shards.

DATA is a ``data.npz`` or a directory of eval-data shards (:mod:`compress_gate.data.shards`)
with an ``inputs`` column, or a ``data.npz`` of image files (``image_paths`` and
``image_transform``, as ``run`` writes for csv and celeba data): those are decoded batch by
batch while they are scored, never all at once. Its calib and test rows are scored, in parts of at most
``rows_per_shard`` rows of one data shard, and each part is written as one predictions
shard ``part-NNNNN.npz`` (``ids``, ``scores``) in OUT. OUT holds :data:`INCOMPLETE_NAME`
while the job runs and ``manifest.json`` (shard files and row counts, written atomically)
only once every shard is written, after which the marker is removed: a job that stops
half-way leaves its finished shards on disk, and the shard readers refuse the directory.

OUT follows the output policy of every command (:mod:`compress_gate._outdir`): it is made
by the tool (marker ``.compress-gate``), so running the same command again replaces it,
an incomplete one included (what the shard readers' message advises); a foreign non-empty
directory, or one that is, holds or lies inside the model or the data, is refused. Every
setting (execution, workers, engine and whether it runs here, batch size, the model, each
shard's ``inputs`` against the model's input shape) is checked before OUT is made, so a bad
one leaves nothing behind. One call writes OUT at a time (:mod:`compress_gate._lock`).

Execution (where the work runs), with identical scores (same parts, same engine, same batches):

- ``local`` (default): one process, the parts one after another, each scored by
  :func:`compress_gate.engines.score_model`;
- ``ray``: Ray Data ``map_batches`` over the parts with a pool of ``workers`` actors, each
  holding one open engine and scoring its parts with
  :func:`compress_gate.engines.predict_scores` (what ``score_model`` runs on the engine it
  opens). An actor whose process dies is restarted and its part retried (up to
  :data:`RAY_RETRIES` times); a part is written atomically, so a retried part writes the
  same file. ``address`` joins a running cluster; without it a local one is started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate._atomic import write_json, write_text
from compress_gate._outdir import check_output_dir, fresh_directory, output_lock
from compress_gate.execution import RAY_RETRIES, Execution, check_execution, ray_session
from compress_gate.data.contract import EvalData, check_prediction_columns, load_eval_data
from compress_gate.data.image_files import ImageFiles, scan_images
from compress_gate.data.shards import (INCOMPLETE_NAME, MANIFEST_NAME, check_row_counts, list_shards, read_data_shard,
                                      write_shard)
from compress_gate.errors import InputError

__all__ = ["ScoredShards", "score_to_shards"]


@dataclass(frozen=True)
class Part:
    """One output shard: rows ``start:stop`` of the calib/test rows of data shard ``source``."""

    index: int
    source: str
    start: int
    stop: int

    @property
    def file_name(self) -> str:
        return f"part-{self.index:05d}.npz"


@dataclass(frozen=True)
class ScoredShards:
    """What :func:`score_to_shards` wrote: the directory, its manifest and the rows scored."""

    out: Path
    manifest: Path
    n_rows: int
    n_shards: int


def _scored_inputs(data: EvalData, source: str) -> tuple[np.ndarray, np.ndarray]:
    if data.inputs is None:
        raise InputError(f"{source}: no `inputs` column, so there is nothing to score. Save the "
                         "preprocessed model inputs as `inputs` (N, C, H, W) float32.")
    scored = data.split != "train"
    return data.ids[scored], data.inputs[scored]


def plan_parts(data: str | Path, *, rows_per_shard: int,
               input_shape: tuple[int | None, ...] | None = None) -> list[Part]:
    """The parts to score, in order: each data shard's calib/test rows cut into ``rows_per_shard`` pieces.

    With ``input_shape`` (the model's input, ``None`` for a free dimension; the batch
    dimension is not compared) every shard's ``inputs`` must fit it: refused before any work.
    Image files are checked by their headers (:func:`~compress_gate.data.image_files.scan_images`).
    """
    if not isinstance(rows_per_shard, int) or rows_per_shard < 1:
        raise InputError(f"--rows-per-shard = {rows_per_shard!r} must be an integer >= 1.")
    data = Path(data)
    if data.is_dir():
        sources, readers = list_shards(data, "eval data"), read_data_shard
    else:
        sources, readers = [data], load_eval_data
    parts: list[Part] = []
    held = []
    for path in sources:
        shard = readers(path)
        held.append(shard.n_samples)
        ids, inputs = _scored_inputs(shard, str(path))
        if input_shape is not None:
            _check_input_shape(inputs, input_shape, str(path))
        if isinstance(inputs, ImageFiles):     # a missing, unreadable or wrong-mode file: before OUT is made
            scan_images(inputs, ids, skip=False)
        for start in range(0, ids.size, rows_per_shard):
            parts.append(Part(len(parts), str(path), start, min(start + rows_per_shard, ids.size)))
    if data.is_dir():
        check_row_counts(data, sources, held, "eval data")
    if not parts:
        raise InputError(f"{data}: no calib or test row to score. Mark the rows to judge with split = "
                         "'calib' or 'test'.")
    return parts


def _check_input_shape(inputs: np.ndarray, input_shape: tuple[int | None, ...], source: str) -> None:
    expected = tuple(input_shape[1:])
    got = tuple(inputs.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        shown = tuple("?" if e is None else e for e in expected)
        raise InputError(f"{source}: `inputs` has rows of shape {got}, but the model takes {shown} (batch "
                         "dimension left out). Score these inputs with a model built for them, or preprocess "
                         "the data to the model's input size.")


def score_part(part: Part, scores_of: Any, out: Path, *, whole_file: bool) -> int:
    """Score one part with ``scores_of(inputs)`` and write its shard; return its row count."""
    data = (load_eval_data if whole_file else read_data_shard)(Path(part.source))
    ids, inputs = _scored_inputs(data, part.source)
    rows = np.arange(part.start, part.stop)       # an index array: streamed image files stay undecoded
    ids, inputs = ids[rows], inputs[rows]
    if isinstance(inputs, np.ndarray):
        inputs = np.ascontiguousarray(inputs)
    preds = check_prediction_columns({"ids": ids, "scores": scores_of(inputs)}, str(out / part.file_name))
    write_shard(out / part.file_name, {"ids": preds.ids, "scores": preds.scores})
    return int(ids.size)


def score_to_shards(model: str | Path, data: str | Path, out: str | Path, *, engine: str = "onnxruntime",
                    batch_size: int = 64, rows_per_shard: int = 100_000, execution: Execution = "local",
                    address: str | None = None, workers: int = 2) -> ScoredShards:
    """Score the calib/test rows of ``data`` with ``model`` into the shard directory ``out``.

    The rows are scored in parts of at most ``rows_per_shard`` rows of one data shard; each part
    becomes ``part-NNNNN.npz`` (``ids``, ``scores``) in ``out``, which holds
    :data:`INCOMPLETE_NAME` until ``manifest.json`` is written last. ``execution="local"`` scores
    the parts one after another; ``"ray"`` with ``workers`` actors (same parts, same batches,
    identical scores). Every setting is checked before ``out`` is made.

    Raises
    ------
    InputError
        An unknown execution or engine, an engine that does not run here, a batch size < 1, an
        ``out`` compress-gate may not replace (a foreign non-empty directory, or one that is, holds
        or lies inside the model or the data) or that another call is writing,
        bad data (shard named), no ``inputs`` or inputs that do not fit the model, a
        missing or corrupt model, Ray asked for but not installed: all before ``out`` is made.
    RuntimeFailure
        The engine failed, or a Ray job failed after its retries; finished shards stay in
        ``out``, which keeps its :data:`INCOMPLETE_NAME` marker.
    """
    from compress_gate.engines import read_model_info

    _check_settings(workers=workers, engine=engine, batch_size=batch_size)
    model, data, out = Path(model).resolve(), Path(data).resolve(), Path(out).resolve()
    inputs = {"model": model, "eval data": data}
    check_output_dir(out, what="prediction shard directory (--out)", inputs=inputs)
    execution = check_execution(execution, what="scoring", address=address)     # before anything is written
    info = read_model_info(model)                  # a missing or corrupt model fails before any work
    parts = plan_parts(data, rows_per_shard=rows_per_shard, input_shape=info.input_shape)
    with output_lock(out, what="prediction shard directory (--out)"):
        fresh_directory(out, what="prediction shard directory (--out)", inputs=inputs)
        write_text(out / INCOMPLETE_NAME, "compress-gate score is writing this directory\n")
        return _score_parts(model, data, out, parts, engine=engine, batch_size=batch_size,
                            execution=execution, address=address, workers=workers)


def _check_settings(*, workers: int, engine: str, batch_size: int) -> None:
    """Refuse, before anything is read or written, a worker count, engine or batch size that cannot work (an
    engine that does not run on this machine included)."""
    from compress_gate.engines import ENGINE_KINDS, engine_availability

    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise InputError(f"--workers = {workers!r} must be an integer >= 1.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise InputError(f"--batch-size = {batch_size!r} must be an integer >= 1 (rows per engine batch), "
                         "e.g. `--batch-size 64`.")
    if engine not in ENGINE_KINDS:
        raise InputError(f"--engine {engine!r} is not an engine. It should be one of {list(ENGINE_KINDS)}.")
    reason = engine_availability()[engine]
    if reason:
        raise InputError(f"--engine {engine} cannot run on this machine: {reason}. Score with an engine that "
                         "runs here, e.g. `--engine onnxruntime`.")


def _score_parts(model: Path, data: Path, out: Path, parts: list[Part], *, engine: str, batch_size: int,
                 execution: Execution, address: str | None, workers: int) -> ScoredShards:
    """Score ``parts`` into the new directory ``out`` (which holds the incomplete marker), then write
    ``manifest.json`` (format, model, engine, data, each shard file with its row count) and only
    then remove the marker, so a job that stops half-way is never read as complete."""
    settings = {"model": str(model), "engine": engine, "batch_size": batch_size, "out": str(out),
                "whole_file": not data.is_dir()}
    if execution == "local":
        from compress_gate.engines import score_model
        rows = [score_part(part, lambda x: score_model(model, x, engine=engine, batch_size=batch_size).scores,
                           out, whole_file=settings["whole_file"]) for part in parts]
    else:
        rows = _score_on_ray(parts, settings, address=address, workers=workers)
    manifest = write_json(out / MANIFEST_NAME, {
        "format": "compress-gate prediction shards", "version": 1, "model": str(model), "engine": engine,
        "data": str(data), "shards": [{"file": p.file_name, "rows": n} for p, n in zip(parts, rows)]})
    (out / INCOMPLETE_NAME).unlink()
    return ScoredShards(out=out, manifest=manifest, n_rows=int(sum(rows)), n_shards=len(parts))


class OrtScorer:
    """A Ray Data actor: one open engine; each batch is a list of parts, scored and written."""

    def __init__(self, model: str, engine: str, batch_size: int, out: str, whole_file: bool):
        from compress_gate.engines import open_engine
        self.engine = open_engine(engine, model, batch_size=batch_size)
        self.out, self.whole_file = Path(out), whole_file

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from compress_gate.engines import predict_scores
        parts = [Part(int(i), str(s), int(a), int(b))
                 for i, s, a, b in zip(batch["index"], batch["source"], batch["start"], batch["stop"])]
        rows = [score_part(p, lambda x: predict_scores(self.engine, x), self.out, whole_file=self.whole_file)
                for p in parts]
        return {"index": np.array([p.index for p in parts]), "rows": np.array(rows)}


def _score_on_ray(parts: list[Part], settings: dict[str, Any], *, address: str | None, workers: int) -> list[int]:
    """Ray Data ``map_batches`` of the parts over a pool of ``workers`` scorer actors; rows per part."""
    with ray_session(address, what="scoring (finished shards stay in --out, marked incomplete)") as ray:
        dataset = ray.data.from_items([asdict(p) for p in parts])
        done = dataset.map_batches(OrtScorer, fn_constructor_kwargs=settings, batch_size=1, batch_format="numpy",
                                   concurrency=min(workers, len(parts)), num_cpus=1,
                                   ray_remote_args_fn=_retry_args).take_all()
    rows = {int(r["index"]): int(r["rows"]) for r in done}
    return [rows[p.index] for p in parts]


def _retry_args() -> dict[str, int]:
    """Actor options: a dead scoring actor is restarted, and its part retried, at most RAY_RETRIES times."""
    return {"max_restarts": RAY_RETRIES, "max_task_retries": RAY_RETRIES}
