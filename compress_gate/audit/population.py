"""Populations of dense and compressed models for the CIE audit: trained, cached or loaded.

Model ``i`` of a population of size ``P`` uses seed ``recipe.seed + i``: the dense
model ``i`` is trained as the run's teacher is (``compress_gate.pipeline.teacher``),
and the compressed model ``i`` is the recipe's SparseML schedule run on dense model
``i`` with the same seed (Hooker et al. train each pruned model from its own dense
one). Each model's scores on the calib and test rows are cached under
``<cache_dir>/audit/`` keyed by everything that determines them, so a second audit
(or one with a larger population) trains only what is new. Scores come from the
torch models (the compressed ones with their fake-quantization in place).

With ``execution="ray"`` each model pair (dense model ``i`` and its compressed model) is
one Ray task (one CPU, retried when its worker dies), so a cluster trains the pairs in
parallel; the seeds and the cache are the same as in the local default, which trains
them one after another. The cache files are written atomically, so a retried task
rewrites the same files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress_gate.config.audit import AuditConfig
from compress_gate.config.run import RunConfig
from compress_gate.data.contract import EvalData, align_scores, load_predictions, save_predictions
from compress_gate.errors import InputError
from compress_gate.execution import Execution, check_execution

if TYPE_CHECKING:
    import torch

__all__ = ["Population", "obtain_populations", "predict_torch"]

_CACHE_FORMAT = 1
Say = Callable[[str], None]


@dataclass(frozen=True)
class Population:
    """Scores of one population on the audited rows.

    ``scores``: (n_models, n_rows, n_attributes) float32, rows in data order;
    ``sources``: one description per model (``seed 3 (cache)``, or a file path).
    """

    kind: str
    scores: np.ndarray
    sources: tuple[str, ...]


def predict_torch(model: torch.nn.Module, inputs: np.ndarray, *, task: str, batch_size: int = 256) -> np.ndarray:
    """Scores (n, K) float32 of ``model`` (in eval mode) on ``inputs``: sigmoid (multilabel) or softmax
    (multiclass), through the scores head every exported graph ends with
    (:class:`compress_gate.compress.scores.ScoresModel`). Labels come from these scores by
    :func:`compress_gate.metrics.predict_labels`, as on every other path."""
    import torch

    from compress_gate.compress.scores import ScoresModel

    scored = ScoresModel(model, task).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(inputs[start:start + batch_size], dtype=np.float32))
            out.append(scored(batch).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 0), np.float32)


def _loaded(kind: str, files: tuple[Path, ...], data: EvalData, mask: np.ndarray) -> Population:
    scores = [align_scores(data, load_predictions(path), mask) for path in files]
    return Population(kind, np.stack(scores).astype(np.float32), tuple(str(p) for p in files))


def obtain_populations(config: RunConfig, audit: AuditConfig, data: EvalData, mask: np.ndarray, *,
                       say: Say | None = None, execution: Execution = "local",
                       address: str | None = None) -> tuple[Population, Population]:
    """The dense and compressed populations' scores on the rows in ``mask``.

    Loads ``audit.dense_predictions`` / ``compressed_predictions`` when given (the
    population sizes are then the numbers of files); otherwise trains or reuses
    ``audit.population`` models of each kind (model i with seed ``recipe.seed + i``: the dense
    one trained as the run's teacher, the compressed one by the recipe's schedule from it, each
    model's scores cached under ``<cache_dir>/audit/``), one pair after another
    (``execution="local"``) or as Ray tasks (``"ray"``, on the cluster at ``address``, or a local one).

    Raises
    ------
    InputError
        A prediction file is missing, malformed or lacks an audited id; the recipe
        loads its teacher from a checkpoint (one dense model cannot be a population
        of different seeds) and no prediction files are given; an unknown ``execution``, or
        ``"ray"`` without Ray installed.
    """
    execution = check_execution(execution, what="training the audit populations", address=address)
    if audit.dense_predictions is not None and audit.compressed_predictions is not None:
        return (_loaded("dense", audit.dense_predictions, data, mask),
                _loaded("compressed", audit.compressed_predictions, data, mask))
    if config.model.checkpoint is not None:
        raise InputError("the audit trains populations of dense models with different seeds, but the recipe "
                         "loads its teacher from `model.checkpoint`. Give `model.train` (e.g. "
                         "`train: {epochs: 6}`), or list `audit.dense_predictions` and "
                         "`audit.compressed_predictions` (one <model>.npz per model).")
    say = say or (lambda message: None)
    eval_rows = data.mask("calib", "test")
    seeded = [config.model_copy(update={"seed": config.seed + i}) for i in range(audit.population)]
    labels = [f"{i + 1}/{audit.population}" for i in range(audit.population)]
    if execution == "ray":
        pairs = _pairs_on_ray(seeded, data, eval_rows, labels, say, address)
    else:
        pairs = [_model_pair(c, data, eval_rows, say, label) for c, label in zip(seeded, labels)]
    dense, compressed = [p[0] for p in pairs], [p[1] for p in pairs]
    sub = mask[eval_rows]  # AuditConfig.splits allows calib and test only, so mask lies in eval_rows
    seeds = tuple(f"seed {config.seed + i}" for i in range(audit.population))
    return (Population("dense", np.stack([s[sub] for s in dense]), seeds),
            Population("compressed", np.stack([s[sub] for s in compressed]), seeds))


def _pairs_on_ray(configs: list[RunConfig], data: EvalData, eval_rows: np.ndarray, labels: list[str], say: Say,
                  address: str | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`_model_pair` of each config as one Ray task (:func:`compress_gate.execution.map_tasks`); results in
    config order."""
    from compress_gate.execution import map_tasks

    say(f"{len(configs)} model pairs submitted to Ray")
    return map_tasks(_PairTask(data, eval_rows), list(zip(configs, labels)), address=address,
                     what="training the audit populations")


@dataclass(frozen=True)
class _PairTask:
    """One Ray task of :func:`_pairs_on_ray`: the model pair of a (config, label) item, quietly."""

    data: EvalData
    eval_rows: np.ndarray

    def __call__(self, item: tuple[RunConfig, str]) -> tuple[np.ndarray, np.ndarray]:
        config, label = item
        return _model_pair(config, self.data, self.eval_rows, _quiet, label)


def _quiet(message: str) -> None:
    """Progress messages of a Ray task are not shown (they happen in another process)."""


def _keys(config: RunConfig, data: EvalData) -> tuple[str, str]:
    """Cache keys of the dense and the compressed model of ``config.seed``."""
    from compress_gate.compress import load_recipe
    from compress_gate.pipeline.teacher import teacher_cache_key

    dense_key = teacher_cache_key(config, data)
    comp = config.compression
    recipe_text = load_recipe(comp.source)
    spec = {"format": _CACHE_FORMAT, "dense": dense_key, "recipe": recipe_text, "seed": config.seed,
            "distillation": comp.distillation, "batch_size": comp.batch_size, "lr": comp.lr,
            "optimizer": comp.optimizer}
    return dense_key, hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _model_pair(config: RunConfig, data: EvalData, eval_rows: np.ndarray, say: Say, label: str
                ) -> tuple[np.ndarray, np.ndarray]:
    """Scores on ``eval_rows`` of the dense and the compressed model of ``config.seed`` (cached)."""
    cache = config.cache_dir / "audit"
    dense_key, comp_key = _keys(config, data)
    dense_file, comp_file = cache / f"dense-{dense_key[:24]}.npz", cache / f"compressed-{comp_key[:24]}.npz"
    ids, inputs = data.ids[eval_rows], data.inputs[eval_rows]
    if dense_file.is_file() and comp_file.is_file():
        say(f"model pair {label} (seed {config.seed}): cached predictions")
        return _read(dense_file, data, eval_rows), _read(comp_file, data, eval_rows)
    from compress_gate.pipeline.student import compress_student
    from compress_gate.pipeline.teacher import obtain_teacher

    say(f"model pair {label} (seed {config.seed}): dense model")
    dense, _ = obtain_teacher(config, data, save_to=cache / f"dense-{dense_key[:24]}.pt")
    dense_scores = predict_torch(dense, inputs, task=data.task)
    save_predictions(dense_file, ids, dense_scores)
    say(f"model pair {label} (seed {config.seed}): compressing")
    student = compress_student(config, data, dense).model
    student_scores = predict_torch(student, inputs, task=data.task)
    save_predictions(comp_file, ids, student_scores)
    return dense_scores, student_scores


def _read(path: Path, data: EvalData, eval_rows: np.ndarray) -> np.ndarray:
    return align_scores(data, load_predictions(path), eval_rows)

