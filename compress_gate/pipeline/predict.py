"""Scores of the *exported* models on the calib and test rows: what ships is what is judged.

The deployment engine scores teacher and student (each on the artefact that engine
runs); each checked engine scores them too, and its student scores are compared with
the deployment engine's:

- ``label_agreement``: share of samples whose predicted label equals the deployment
  engine's (multi-class: the argmax class; multi-label: the whole 0/1 row at 0.5);
- ``max_score_difference``: :math:`\\max_{n,k} |s^{\\mathrm{engine}}_{nk} - s^{\\mathrm{deploy}}_{nk}|`.

Every model is scored by :func:`compress_gate.engines.score_model` and labelled by
:func:`compress_gate.metrics.predict_labels`. A checked engine whose registry entry has a
fallback (DeepSparse: ONNX Runtime) falls back when it is absent or crashes, and the
entry says so (``ran_on``, ``fallback``); another unavailable engine (a GPU one) is
skipped with its reason. Every score table is saved as ``<run>/predictions/<engine>/<model>.npz``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate.data.contract import EvalData, save_predictions
from compress_gate.errors import InputError
from compress_gate.metrics import predict_labels
from compress_gate.pipeline.export import ExportedModels

__all__ = ["EnginePredictions", "predict_exported", "label_agreement"]


@dataclass(frozen=True)
class EnginePredictions:
    """Deployment-engine scores of teacher and student on ``data.mask("calib", "test")`` rows, and checks."""

    teacher: np.ndarray
    student: np.ndarray
    checks: list[dict[str, Any]]
    files: dict[str, str]


def label_agreement(scores: np.ndarray, reference: np.ndarray, *, task: str) -> float:
    """Share of rows whose labels (argmax, or the 0/1 row at 0.5) equal the reference's.

    Raises InputError for shapes that differ or an empty table.
    """
    if scores.shape != reference.shape or scores.shape[0] == 0:
        raise InputError(f"label_agreement: score tables of shapes {scores.shape} and {reference.shape} must "
                         "be equal and non-empty.")
    agree = predict_labels(scores, task=task) == predict_labels(reference, task=task)
    return float(agree.all(axis=1).mean())


def predict_exported(data: EvalData, exported: ExportedModels, *, deployment: str, check: tuple[str, ...],
                     batch_size: int, out_dir: Path,
                     progress: Callable[[str, int], None] | None = None) -> EnginePredictions:
    """Score the exported teacher and student on every engine; compare the checked engines.

    ``progress(label, rows)`` is called after each batch. The deployment engine must
    run (no fallback is accepted for what is judged).

    Raises
    ------
    RuntimeFailure
        The deployment engine cannot run or crashed.
    """
    from compress_gate.engines import ENGINES, engine_availability, score_model

    rows = data.mask("calib", "test")
    inputs = data.inputs[rows]   # image files stay files: each engine decodes them batch by batch
    if not data.streams_images:
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    ids = data.ids[rows]
    files: dict[str, str] = {}

    def tick(label: str) -> Callable[[int], None] | None:
        return None if progress is None else (lambda n: progress(label, n))

    deployed: dict[str, np.ndarray] = {}
    for name, path in (("teacher", exported.teacher), ("student", exported.student_for(deployment))):
        deployed[name] = score_model(path, inputs, engine=deployment, batch_size=batch_size,
                                     progress=tick(f"{name} on {deployment}")).scores
        target = out_dir / deployment / f"{name}.npz"
        files[f"{deployment}/{name}"] = str(save_predictions(target, ids, deployed[name]))

    availability = engine_availability()
    checks: list[dict[str, Any]] = []
    for kind in check:
        artefact = exported.student_for(kind)
        entry: dict[str, Any] = {"engine": kind, "model": "student", "artefact": artefact.name,
                                 "label_agreement": None, "max_score_difference": None,
                                 "ran_on": None, "fallback": None, "skipped": None}
        if availability.get(kind) and ENGINES[kind].fallback is None:
            entry["skipped"] = availability[kind]
            checks.append(entry)
            continue
        scored = score_model(artefact, inputs, engine=kind, batch_size=batch_size, allow_fallback=True,
                             progress=tick(f"student on {kind}"))
        scores = scored.scores
        files[f"{kind}/student"] = str(save_predictions(out_dir / kind / "student.npz", ids, scores))
        entry.update(label_agreement=label_agreement(scores, deployed["student"], task=data.task),
                     max_score_difference=float(np.max(np.abs(scores - deployed["student"]))),
                     ran_on=scored.engine, fallback=scored.fallback)
        checks.append(entry)
    return EnginePredictions(teacher=deployed["teacher"], student=deployed["student"], checks=checks,
                             files=files)
