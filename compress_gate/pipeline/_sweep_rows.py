"""A sweep's rows: the numbers read from each student's ``report.json``, and the choice among them.

:func:`student_row` is one student's row of ``sweep.json`` (its report's numbers through
:func:`student_numbers`, its representation similarity, its calibrated-only gate rerun);
:func:`choose_student` picks the most compressed passing sparsity and :func:`chosen_student_row` the
row that is released.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from compress_gate._atomic import write_text
from compress_gate.config.run import RunConfig
from compress_gate.pipeline._sweep_similarity import student_similarity
from compress_gate.report import largest_increase

if TYPE_CHECKING:
    from compress_gate.pipeline.run import RunOutcome

__all__ = ["student_numbers", "choose_student", "chosen_student_row", "calibrated_report", "student_row"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _get(mapping: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _mean_over_attributes(per_attribute: Any, metric: str) -> float | None:
    values = [_number(_get(row, metric)) for row in (per_attribute or {}).values()] \
        if isinstance(per_attribute, Mapping) else []
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _interval(value: Any) -> list[float] | None:
    if isinstance(value, Sequence) and len(value) == 2 and all(_number(v) is not None for v in value):
        return [float(value[0]), float(value[1])]
    return None


def student_numbers(report: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers a sweep plots, read from one student's ``report.json``.

    The only place the sweep reads a report, and it reads defensively: a missing key or
    a non-number gives ``None``. Means over attributes skip undefined ones.

    Returns keys ``verdict``, ``sparsity`` (achieved, pooled over the pruned weights),
    ``accuracy`` / ``teacher_accuracy`` / ``accuracy_mitigated``, ``uncertainty`` /
    ``teacher_uncertainty`` and ``tcb`` / ``teacher_tcb`` (means over attributes),
    ``ba_increase`` / ``ba_increase_mitigated`` (worst over (attribute, identity) pairs),
    ``cev`` / ``sde`` with ``cev_ci`` / ``sde_ci``,
    ``speedup`` (``{"<engine>@<batch>": teacher time / student time}``) and ``limits``
    (each limit's ``name``, ``metric``, ``observed``, ``ci``, ``limit``, ``outcome``).
    """
    metrics, mitigation = _get(report, "metrics"), _get(report, "mitigation")
    student, teacher = _get(metrics, "student", "per_attribute"), _get(metrics, "teacher", "per_attribute")
    limits = []
    for entry in _get(report, "limits") or []:
        outcome = _get(entry, "outcome") or ("pass" if _get(entry, "passed") else "fail")
        limits.append({"name": _get(entry, "name"), "metric": _get(entry, "metric"),
                       "observed": _number(_get(entry, "observed")), "ci": _interval(_get(entry, "ci")),
                       "limit": _number(_get(entry, "limit")), "outcome": outcome})
    speedup = _get(report, "run", "summary", "speedup")
    return {
        "verdict": _get(report, "verdict"),
        "sparsity": _number(_get(report, "run", "compression", "overall_sparsity")),
        "accuracy": _number(_get(metrics, "student", "accuracy")),
        "teacher_accuracy": _number(_get(metrics, "teacher", "accuracy")),
        "accuracy_mitigated": _number(_get(mitigation, "after", "accuracy")),
        "uncertainty": _mean_over_attributes(student, "uncertainty"),
        "teacher_uncertainty": _mean_over_attributes(teacher, "uncertainty"),
        "tcb": _mean_over_attributes(student, "tcb"),
        "teacher_tcb": _mean_over_attributes(teacher, "tcb"),
        "ba_increase": _largest_ba_increase(_get(metrics, "ba", "increase")),
        "ba_increase_mitigated": _largest_ba_increase(_get(mitigation, "after", "ba", "increase")),
        "cev": _number(_get(metrics, "cev", "value")), "cev_ci": _interval(_get(metrics, "cev", "ci")),
        "sde": _number(_get(metrics, "sde", "value")), "sde_ci": _interval(_get(metrics, "sde", "ci")),
        "speedup": {str(k): float(v) for k, v in speedup.items() if _number(v) is not None}
        if isinstance(speedup, Mapping) else {},
        "limits": limits,
    }


def _largest_ba_increase(increase: Any) -> float | None:
    """The largest defined BA increase of ``{attribute: {identity: value}}``; None if none or not a mapping."""
    if not isinstance(increase, Mapping) or not all(isinstance(row, Mapping) for row in increase.values()):
        return None
    found = largest_increase(increase)
    return None if found is None else found[1]


def choose_student(rows: Sequence[Mapping[str, Any]]) -> float | None:
    """The requested sparsity of the most compressed row whose verdict is ``pass``; None if none passes."""
    passing = [row["requested_sparsity"] for row in rows if row.get("verdict") == "pass"]
    return max(passing) if passing else None


def chosen_student_row(rows: Sequence[Mapping[str, Any]], chosen: float | None) -> Mapping[str, Any] | None:
    """The first passing row at the ``chosen`` sparsity (rows: unstructured before N:M at equal sparsity)."""
    return next((row for row in rows if row.get("verdict") == "pass" and row["requested_sparsity"] == chosen), None)


def calibrated_report(config: RunConfig, run_dir: Path, out: Path) -> dict[str, Any] | None:
    """The student's gate rerun on its own predictions with thresholds only (override budget 0).

    Written to ``out`` by :func:`compress_gate.pipeline.gate.run_gate` (its limits file beside it,
    ``<out>.limits.yaml``, since ``out`` is a directory the gate makes whole), so the
    sweep can show the worst BA increase after threshold calibration alone beside the raw and
    the fully mitigated one. ``None`` when the recipe does not calibrate thresholds.
    """
    from compress_gate.pipeline.gate import run_gate

    if not config.gate.mitigation.calibrate_thresholds:
        return None
    gate = config.gate.model_dump(mode="json", exclude_none=True)
    gate["mitigation"]["override_budget"] = 0.0
    limits = write_text(out.with_name(f"{out.name}.limits.yaml"), yaml.safe_dump(gate, sort_keys=False))
    predictions = run_dir / "predictions" / config.engines.deployment
    run_gate(data=run_dir / "data.npz", out=out, limits=limits, teacher=predictions / "teacher.npz",
             students=[predictions / "student.npz"])
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def student_row(config: RunConfig, sweep_dir: Path, student: tuple[float, str | None], seed: int,
                 outcome: RunOutcome) -> dict[str, Any]:
    """One student's row of sweep.json: its report's numbers, similarity and the calibrated-only rerun."""
    report = json.loads((outcome.run_dir / "gate" / "report.json").read_text(encoding="utf-8"))
    row = {"requested_sparsity": student[0], "mask": student[1], "seed": seed, "student": outcome.run_dir.name,
           "run_dir": str(outcome.run_dir), "bundle": str(outcome.bundle_dir),
           "stage_seconds": outcome.stage_seconds, **student_numbers(report),
           **student_similarity(outcome.run_dir), "ba_increase_calibrated": None}
    start = time.perf_counter()
    calibrated = calibrated_report(config, outcome.run_dir, sweep_dir / "calibrated" / outcome.run_dir.name)
    if calibrated is not None:
        row["ba_increase_calibrated"] = student_numbers(calibrated)["ba_increase_mitigated"]
        row["stage_seconds"] = {**row["stage_seconds"], "gate (calibrated only)": round(time.perf_counter() - start, 3)}
    return row
