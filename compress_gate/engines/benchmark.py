"""Benchmark ONNX models on several engines: latency percentiles, throughput, paired speedups.

Method (the same for ``compress-gate bench``, run reports and ``benchmarks/engines.py``):

1. For each batch size, every (model, engine) pair that can run is opened; inputs
   are generated once (seeded normal noise, read-only) before any timing.
2. Each pair is warmed up, then measured in *interleaved rounds*: round ``r`` runs
   every pair once, in the order rotated by ``r`` (A B C, B C A, C A B, ...), so
   slow drifts of the machine hit all pairs alike and no pair always goes first.
   A short untimed pause before each run lets the previous engine's threads stop
   spinning.
3. Only the seconds inside the engine's inference call count (:meth:`Engine.time_run`;
   DeepSparse measures inside its worker), so worker start, compile, input
   generation and inter-process copies are excluded.
4. Speedup of a model over the reference (the teacher) on the same engine and batch
   size is the median over rounds of the paired ratio ``t_reference[r] / t_model[r]``.

A pair that is unavailable is ``skipped`` with the reason; one that fails (e.g. a
DeepSparse worker crash) is ``failed`` with the reason, and the others go on.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate.engines._base import Engine, read_model_info
from compress_gate.engines._registry import ENGINE_KINDS
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["benchmark_models", "latency_summary", "items_per_second", "paired_speedup", "interleaved_order",
           "measure_interleaved"]

SCHEMA_VERSION = 1

#: One model's ONNX file for every engine, or ``{kind: path}`` when engines run different artefacts.
Artefact = str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]]


def latency_summary(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Latency percentiles in milliseconds of per-run times in seconds.

    ``p50``, ``p90``, ``p99`` use linear interpolation between order statistics
    (``numpy.percentile``'s default): for 1..10 ms, p90 = 9.1 ms. Also ``mean_ms``.
    Raises InputError for no times or a non-positive/non-finite time.
    """
    times = _check_times(seconds, "seconds")
    p50, p90, p99 = np.percentile(times, [50, 90, 99]) * 1e3
    return {"p50_ms": float(p50), "p90_ms": float(p90), "p99_ms": float(p99), "mean_ms": float(times.mean() * 1e3)}


def items_per_second(batch_size: int, seconds: Sequence[float] | np.ndarray) -> float:
    """Throughput ``batch_size / median(seconds)`` in items per second."""
    return float(batch_size / np.median(_check_times(seconds, "seconds")))


def paired_speedup(reference_seconds: Sequence[float] | np.ndarray,
                   candidate_seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    """Speedup of a candidate over a reference from paired (same-round) times.

    With ratios ``q_r = reference[r] / candidate[r]``: ``ratio`` = median(q) (> 1:
    the candidate is faster), ``q25`` and ``q75`` its quartiles, and
    ``ratio_of_medians`` = median(reference) / median(candidate) for comparison.
    Raises InputError when the two have different lengths or contain a time <= 0.
    """
    reference = _check_times(reference_seconds, "reference_seconds")
    candidate = _check_times(candidate_seconds, "candidate_seconds")
    if reference.shape != candidate.shape:
        raise InputError(f"paired times need equal lengths, got {reference.size} and {candidate.size}.")
    ratios = reference / candidate
    q25, ratio, q75 = np.percentile(ratios, [25, 50, 75])
    return {"ratio": float(ratio), "q25": float(q25), "q75": float(q75),
            "ratio_of_medians": float(np.median(reference) / np.median(candidate)), "pairs": int(ratios.size)}


def interleaved_order(n_units: int, n_rounds: int) -> list[list[int]]:
    """Run order per round: round ``r`` is ``0 .. n_units-1`` rotated left by ``r``.

    >>> interleaved_order(3, 3)
    [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    """
    return [[(r + i) % n_units for i in range(n_units)] for r in range(n_rounds)] if n_units else []


def measure_interleaved(engines: Sequence[Engine], inputs: Sequence[np.ndarray], *, warmup: int, iterations: int,
                        settle_s: float = 0.0,
                        on_failure: Callable[[int, RuntimeFailure], None] | None = None) -> np.ndarray:
    """Seconds per run, shape (iterations, n_engines), measured in interleaved rounds.

    Engine ``i`` runs ``inputs[i]``: ``warmup`` untimed runs each, then
    :func:`interleaved_order` rounds of :meth:`Engine.time_run`, with an untimed
    pause of ``settle_s`` before each timed run (ONNX Runtime's threads keep
    spinning for tens of milliseconds after a run; the pause keeps them from
    competing with the next engine's run). An engine that
    raises :class:`RuntimeFailure` is reported through ``on_failure(i, error)``
    (re-raised when none is given), dropped from later rounds, and its column is
    ``nan`` from then on.
    """
    times = np.full((iterations, len(engines)), np.nan)
    alive = set(range(len(engines)))

    def attempt(index: int, round_index: int | None) -> None:
        try:
            seconds = engines[index].time_run(inputs[index])
        except RuntimeFailure as err:
            if on_failure is None:
                raise
            alive.discard(index)
            on_failure(index, err)
            return
        if round_index is not None:
            times[round_index, index] = seconds

    for index in range(len(engines)):
        for _ in range(warmup):
            if index in alive:
                attempt(index, None)
    for round_index, order in enumerate(interleaved_order(len(engines), iterations)):
        for index in order:
            if index in alive:
                if settle_s > 0:
                    time.sleep(settle_s)
                attempt(index, round_index)
    return times


def _check_times(seconds: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    times = np.asarray(seconds, dtype=float).reshape(-1)
    if times.size == 0 or not np.all(np.isfinite(times)) or np.any(times <= 0):
        raise InputError(f"{name} must be a non-empty list of finite times > 0, got {times.tolist()[:5]}...")
    return times


def benchmark_models(models: Mapping[str, Artefact], kinds: Sequence[str] | None = None, *,
                     input_shape: Sequence[int] | None = None, batch_sizes: Sequence[int] = (1, 32),
                     warmup: int = 3, iterations: int = 20, num_threads: int | None = None,
                     reference: str | None = None, seed: int = 0, settle_s: float = 0.05,
                     open_engine: Callable[..., Engine] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Benchmark every model on every engine kind; return a JSON-able dict.

    ``models`` maps a display name to an ONNX path, or to ``{kind: path}`` when each
    engine runs its own artefact (a quantized student: SparseML's converted graph on
    DeepSparse, a QDQ graph on ONNX Runtime; a kind missing from the mapping is
    ``skipped``). ``reference`` (default: the first model, the teacher) is what
    speedups are relative to. ``input_shape`` is
    one sample's shape, e.g. ``(3, 224, 224)`` (default: the first model's static
    input dims). ``kinds`` defaults to all of :data:`ENGINE_KINDS`; kinds that
    :func:`engine_availability` rules out are ``skipped`` with its reason.
    ``open_engine`` replaces :func:`compress_gate.engines.open_engine` (tests pass
    fakes). ``progress(message)`` is told each phase. ``settle_s``: the pause before
    each timed run (see :func:`measure_interleaved`).

    Returns ``{"schema_version", "created", "machine", "settings", "models",
    "engines": {kind: null | reason}, "results": [row, ...], "speedups": [row, ...]}``
    where a result row is ``{"model", "engine", "batch_size", "status": "ok" |
    "skipped" | "failed", "reason", "latency_ms": {p50_ms, p90_ms, p99_ms, mean_ms} |
    null, "items_per_s", "times_ms": [...] (per round, null where not measured),
    "details"}`` and a speedup row is ``{"model", "reference", "engine",
    "batch_size", **paired_speedup}`` for each model measured with its reference.
    Raises InputError for an empty ``models``, an unknown reference or kind, a
    missing or corrupt model, or bad counts.
    """
    from compress_gate.engines._registry import engine_availability
    from compress_gate.engines._registry import open_engine as default_open
    from compress_gate.engines.machine import machine_description

    opener = open_engine or default_open
    names, shape, kinds = _check_arguments(models, kinds, input_shape, batch_sizes, warmup, iterations)
    reference = names[0] if reference is None else reference
    if reference not in names:
        raise InputError(f"reference model {reference!r} is not among the models {names}.")
    machine = machine_description(num_threads)  # before measuring: records the load the run starts under
    availability = engine_availability()
    say = progress or (lambda message: None)
    rng = np.random.default_rng(seed)
    results: list[dict[str, Any]] = []
    for batch_size in batch_sizes:
        batch = rng.standard_normal((batch_size, *shape), dtype=np.float32)
        batch.flags.writeable = False
        rows = [_row(name, kind, batch_size) for kind in kinds for name in names]
        opened: list[tuple[dict[str, Any], Engine]] = []
        try:
            for row in rows:
                path = _artefact(models[row["model"]], row["engine"])
                reason = availability[row["engine"]] or (None if path else
                                                         f"no {row['engine']} artefact for {row['model']}")
                if reason:
                    row.update(status="skipped", reason=reason)
                    continue
                say(f"opening {row['model']} on {row['engine']} at batch {batch_size}")
                try:
                    engine = opener(row["engine"], path, batch_size=batch_size, num_threads=num_threads)
                except (RuntimeFailure, InputError) as err:
                    row.update(status="failed", reason=str(err))
                    continue
                row["details"] = getattr(engine, "details", None)
                opened.append((row, engine))
            say(f"measuring {len(opened)} engine(s) at batch {batch_size}")

            def failed(index: int, err: RuntimeFailure) -> None:
                opened[index][0].update(status="failed", reason=str(err))

            times = measure_interleaved([engine for _, engine in opened], [batch] * len(opened), warmup=warmup,
                                        iterations=iterations, settle_s=settle_s, on_failure=failed)
        finally:
            for _, engine in opened:
                engine.close()
        for column, (row, _) in enumerate(opened):
            _fill_row(row, times[:, column], batch_size)
        results.extend(rows)
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": {"batch_sizes": list(batch_sizes), "warmup": warmup, "iterations": iterations,
                     "input_shape": list(shape), "reference": reference, "seed": seed, "settle_s": settle_s,
                     "timing": "seconds inside the engine call only; interleaved rounds; "
                               "speedup = median of paired ratios"},
        "models": {name: _artefact_json(models[name]) for name in names},
        "engines": {kind: availability[kind] for kind in kinds},
        "results": results,
        "speedups": _speedups(results, reference),
    }


def _artefact(artefact: Artefact, kind: str) -> Path | None:
    """The ONNX file ``kind`` runs for one model, or ``None`` when it has none."""
    if isinstance(artefact, Mapping):
        return Path(artefact[kind]) if kind in artefact else None
    return Path(artefact)


def _artefact_json(artefact: Artefact) -> str | dict[str, str]:
    if isinstance(artefact, Mapping):
        return {kind: str(path) for kind, path in artefact.items()}
    return str(artefact)


def _check_arguments(models: Mapping[str, Artefact], kinds: Sequence[str] | None,
                     input_shape: Sequence[int] | None, batch_sizes: Sequence[int], warmup: int,
                     iterations: int) -> tuple[list[str], tuple[int, ...], list[str]]:
    if not models:
        raise InputError("no models to benchmark: pass at least one ONNX file.")
    kinds = list(ENGINE_KINDS if kinds is None else kinds)
    unknown = [kind for kind in kinds if kind not in ENGINE_KINDS]
    if unknown or not kinds:
        raise InputError(f"unknown engine(s) {unknown}; choose from {list(ENGINE_KINDS)}.")
    if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
        raise InputError(f"batch sizes must be integers >= 1, got {list(batch_sizes)}.")
    if warmup < 0 or iterations < 1:
        raise InputError(f"need warmup >= 0 and iterations >= 1, got warmup={warmup}, iterations={iterations}.")
    names = list(models)
    for name in names:
        strange = sorted(set(models[name]) - set(ENGINE_KINDS)) if isinstance(models[name], Mapping) else []
        if strange:
            raise InputError(f"model {name!r}: artefacts for unknown engines {strange}; "
                             f"choose from {list(ENGINE_KINDS)}.")
    infos = [read_model_info(path) for name in names for path in
             (models[name].values() if isinstance(models[name], Mapping) else [models[name]])]
    if not infos:
        raise InputError("the models name no ONNX files.")
    if input_shape is None:
        dims = infos[0].input_shape[1:]
        if any(dim is None for dim in dims):
            raise InputError(f"{infos[0].path}: the input shape {infos[0].input_shape} has dynamic "
                             "dimensions; pass input_shape, e.g. (3, 224, 224).")
        input_shape = dims
    return names, tuple(int(dim) for dim in input_shape), kinds


def _row(model: str, kind: str, batch_size: int) -> dict[str, Any]:
    return {"model": model, "engine": kind, "batch_size": batch_size, "status": "ok", "reason": None,
            "latency_ms": None, "items_per_s": None, "times_ms": None, "details": None}


def _fill_row(row: dict[str, Any], seconds: np.ndarray, batch_size: int) -> None:
    measured = seconds[np.isfinite(seconds)]
    row["times_ms"] = [None if not np.isfinite(s) else round(float(s) * 1e3, 4) for s in seconds]
    if row["status"] == "ok" and measured.size:
        row["latency_ms"] = latency_summary(measured)
        row["items_per_s"] = items_per_second(batch_size, measured)


def _speedups(results: list[dict[str, Any]], reference: str) -> list[dict[str, Any]]:
    """Paired speedup of each measured model over the reference, per engine and batch size."""
    by_key = {(row["model"], row["engine"], row["batch_size"]): row for row in results if row["status"] == "ok"}
    speedups = []
    for (model, kind, batch_size), row in by_key.items():
        base = by_key.get((reference, kind, batch_size))
        if model == reference or base is None:
            continue
        pairs = [(b, c) for b, c in zip(base["times_ms"], row["times_ms"]) if b is not None and c is not None]
        if pairs:
            ref, cand = np.array(pairs).T
            speedups.append({"model": model, "reference": reference, "engine": kind, "batch_size": batch_size,
                             **paired_speedup(ref, cand)})
    return speedups
