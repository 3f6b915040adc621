"""What one judged student puts into MLflow, from its report and files alone (no MLflow import).

- **params**: the command, the recipe hash, the compression backend, sparsity and N:M mask, the
  deployment engine, the judged population, the versions of the libraries that decide the
  numbers, and the SHA-256 of the data and every prediction or model file the report names
  (a directory of shards: the SHA-256 over its files' names and digests, in name order);
- **metrics**: each limit's observed value, interval ends and gated bound
  (``limit/<name>/observed|ci_low|ci_high|gated``), the teacher's and student's accuracy
  (and the shipped student's after mitigation), CEV and SDE, the worst BA increase raw,
  calibrated (thresholds only) and overridden (thresholds and overrides), and each speed-up
  of the run's benchmark (``speedup/<engine>``). Undefined numbers are left out, never logged as 0;
- **tags**: ``outcome`` (pass / fail / not_enough_evidence), ``verdict``, ``judged``, and
  ``git_commit`` when the working directory is in a git repository.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from compress_gate._format import is_number
from compress_gate.report import largest_ba_increase
from compress_gate.report.schema import Report

__all__ = ["RunRecord", "record_of", "metric_key", "git_commit", "LIBRARIES"]

#: The distributions whose versions are logged as ``version/<name>`` when installed.
LIBRARIES = ("compress-gate", "numpy", "scipy", "onnx", "onnxruntime", "torch", "torch-pruning", "sparseml",
             "deepsparse", "openvino", "pydantic", "mlflow", "mlflow-skinny")
_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class RunRecord:
    """One MLflow run's content: params and tags as strings, metrics as finite floats."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def metric_key(text: str) -> str:
    """``text`` as an MLflow key: characters MLflow refuses become ``_`` (``"BA (max)"`` -> ``"BA _max_"``)."""
    return _KEY_CHARS.sub("_", text.strip())[:250] or "_"


def _sha256_path(path: Path) -> str | None:
    """SHA-256 of a file, or of ``name:digest`` lines of a directory's files (sorted); None if absent."""
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    if path.is_dir():
        lines = [f"{p.relative_to(path).as_posix()}:{_sha256_path(p)}" for p in sorted(path.rglob("*"))
                 if p.is_file()]
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()
    return None


def _file_hashes(report: Report) -> dict[str, str]:
    inputs = report.inputs
    named = {"data": inputs.data, **{f"teacher_{i}": p for i, p in enumerate(inputs.teacher)},
             **{f"student_{i}": p for i, p in enumerate(inputs.students)}}
    predictions = inputs.predictions
    if isinstance(predictions, list):
        named.update({f"predictions_{i}": p for i, p in enumerate(predictions)})
    elif isinstance(predictions, Mapping):
        named.update({f"predictions_{k}": p for k, p in predictions.items()})
    hashes = {}
    for name, value in named.items():
        digest = _sha256_path(Path(value)) if value else None
        if digest is not None:
            hashes[f"sha256/{metric_key(name)}"] = digest
    return hashes


def _versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[f"version/{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _run_params(report: Report) -> dict[str, str]:
    run = report.run
    if run is None:
        engine = report.engines.deployment if report.engines else "onnxruntime"
        return {"deployment_engine": engine}
    compression = run.compression
    params = {"recipe_hash": run.recipe_hash, "deployment_engine": run.deployment_engine, "seed": str(run.seed)}
    for key in ("backend", "target_sparsity", "trained_sparsity", "overall_sparsity", "quantized", "distilled",
                "mask"):
        if compression.get(key) is not None:
            params[f"compression/{key}"] = str(compression[key])
    return params


def _limit_metrics(report: Report) -> dict[str, float]:
    metrics: dict[str, Any] = {}
    for lim in report.limits:
        key = f"limit/{metric_key(lim.name)}"
        low, high = lim.ci if lim.ci is not None else (None, None)
        metrics.update({f"{key}/observed": lim.observed, f"{key}/ci_low": low, f"{key}/ci_high": high,
                        f"{key}/gated": lim.gated})
    return metrics


def _worst(comparison: Any) -> float | None:
    found = largest_ba_increase(comparison)
    return None if found is None else found[1]


def _headline_metrics(report: Report) -> dict[str, Any]:
    m, mit = report.metrics, report.mitigation
    metrics = {"accuracy/teacher": m.teacher.accuracy, "accuracy/student": m.student.accuracy,
               "cev": m.cev.value, "sde": m.sde.value, "ba_increase/worst_raw": _worst(m.ba)}
    if mit is not None:
        metrics.update({"accuracy/student_mitigated": mit.after.accuracy, "cev/mitigated": mit.after.cev.value,
                        "sde/mitigated": mit.after.sde.value, "ba_increase/worst_overridden": _worst(mit.after.ba),
                        "ba_increase/worst_calibrated": _worst(mit.calibrated.ba) if mit.calibrated else None})
    summary = report.run.summary if report.run is not None else None
    if summary is not None:
        metrics.update({f"speedup/{metric_key(k)}": v for k, v in summary.speedup.items()})
        metrics["sparsity/overall"] = summary.overall_sparsity
    return metrics


def git_commit(directory: Path) -> str | None:
    """The HEAD commit of the git repository holding ``directory``, or None (no repository, no git)."""
    try:
        out = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def record_of(report: Report, *, command: str, where: Path,
              extra_params: Mapping[str, Any] | None = None) -> RunRecord:
    """The params, metrics and tags of one judged student; ``where`` locates git.

    Params: the command, the judged population, the run's recipe hash, backend, sparsity and
    engine, library versions, the SHA-256 of every input file, and ``extra_params`` (each at most
    6000 characters). Metrics: each limit's observed value, interval and gated bound, and the
    headline numbers; undefined numbers are left out, never logged as 0. Tags: outcome,
    verdict, judged, command, and the git commit when ``where`` is in a repository.
    """
    params = {"command": command, "judged": report.judged, **_run_params(report), **_versions(),
              **_file_hashes(report), **{k: str(v) for k, v in (extra_params or {}).items() if v is not None}}
    metrics = {k: float(v) for k, v in {**_limit_metrics(report), **_headline_metrics(report)}.items()
               if is_number(v)}
    tags = {"outcome": report.outcome, "verdict": report.verdict, "judged": report.judged,
            "compress_gate.command": command}
    commit = git_commit(where)
    if commit:
        tags["git_commit"] = commit
    return RunRecord(params={k: v[:6000] for k, v in params.items()}, metrics=metrics, tags=tags)
