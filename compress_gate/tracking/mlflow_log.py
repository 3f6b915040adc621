"""Logging to an MLflow tracking server (the ``[mlflow]`` extra): gate, run and sweep.

Each command's files are written first, exactly as without tracking; then one MLflow run
records the student (:mod:`compress_gate.tracking.record` says what), with report.json,
report.html, junit.xml, MODEL_CARD.md and summary.md as artifacts. A sweep is a parent run
(sweep.json and sweep.html) with one child run per student. With ``register``, a student that
passed and has a release bundle becomes a new version of that registered model: the version's
source is the logged bundle (``release/``: model.onnx, manifest.json, ...), its tags carry the
outcome and the bundle's ``manifest_sha256``, and the alias (default ``gated``) is moved to it.
A refused student is never registered, so the alias only ever points at a passing version.

A server that cannot be reached or refuses a request is a :class:`RuntimeFailure` (exit 3)
that says so plainly; MLflow's own retries are limited (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``
2 and ``MLFLOW_HTTP_REQUEST_TIMEOUT`` 30 s unless set), so that takes seconds, not minutes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress_gate.config.tracking import DEFAULT_ALIAS, DEFAULT_EXPERIMENT, TrackingConfig
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.report.schema import Report, as_report
from compress_gate.tracking.record import RunRecord, record_of

__all__ = ["Tracking", "resolve_tracking", "log_gate", "log_run", "log_sweep", "REPORT_ARTIFACTS"]

#: The report files logged as artifacts of every student's run (those present).
REPORT_ARTIFACTS = ("report.json", "report.html", "junit.xml", "MODEL_CARD.md", "summary.md")


@dataclass(frozen=True)
class Tracking:
    """Where and how to log: the server, the experiment, the registered model name and alias."""

    uri: str
    experiment: str = DEFAULT_EXPERIMENT
    register: str | None = None
    alias: str = DEFAULT_ALIAS


def resolve_tracking(section: TrackingConfig | None, uri: str | None, experiment: str | None) -> Tracking | None:
    """The tracking to do: the flags over the recipe's ``tracking:`` section over ``$MLFLOW_TRACKING_URI``.

    None when neither a flag nor the section asks for tracking. Checks that MLflow imports
    before any work (InputError naming the extra otherwise).
    """
    if section is None and uri is None and experiment is None:
        return None
    section = section or TrackingConfig()
    uri = uri or section.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError("MLflow tracking is configured but no server is named. Pass --mlflow-uri "
                         "http://HOST:5000, set `tracking.mlflow_uri` in the recipe, or export MLFLOW_TRACKING_URI.")
    try:
        import mlflow  # noqa: F401
    except ImportError as err:
        raise InputError("MLflow tracking needs the `compress-gate[mlflow]` extra: pip install "
                         "'compress-gate[mlflow]' (or drop --mlflow-uri and the recipe's tracking: section).") from err
    return Tracking(uri=uri, experiment=experiment or section.experiment, register=section.registered_model,
                    alias=section.alias)


@contextmanager
def _server_errors(tracking: Tracking, kept: str) -> Iterator[None]:
    """Turn any failure to talk to the server into one plain RuntimeFailure (exit 3)."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (MlflowException, OSError, ConnectionError) as err:
        detail = " ".join(str(err).split())[:400]
        raise RuntimeFailure(f"the MLflow tracking server at {tracking.uri} could not be reached or refused the "
                             f"record ({type(err).__name__}: {detail}). Nothing was released through MLflow; "
                             f"the gate's own files are written: {kept}. Check the server (and --mlflow-uri) "
                             "and rerun.") from err
    except Exception as err:  # requests' errors and the like, whatever MLflow lets through
        if type(err).__module__.split(".")[0] not in ("requests", "urllib3", "mlflow"):
            raise
        raise RuntimeFailure(f"the MLflow tracking server at {tracking.uri} could not be reached "
                             f"({type(err).__name__}: {' '.join(str(err).split())[:400]}). The gate's own files "
                             f"are written: {kept}. Check the server and rerun.") from err


def _client(tracking: Tracking) -> Any:
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking.uri, registry_uri=tracking.uri)


def _experiment_id(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found is not None else client.create_experiment(name)


def _log_record(client: Any, run_id: str, record: RunRecord) -> None:
    """Params, metrics and tags in batches within MLflow's per-call limits (100 params/tags, 1000 metrics)."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    params = [Param(k, v) for k, v in record.params.items()]
    metrics = [Metric(k, v, now, 0) for k, v in record.metrics.items()]
    tags = [RunTag(k, v) for k, v in record.tags.items()]
    for start in range(0, max(len(params), len(tags), 1), 100):
        client.log_batch(run_id, params=params[start:start + 100], tags=tags[start:start + 100])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start:start + 1000])


def _student_run(client: Any, experiment_id: str, report: Report, files_dir: Path, *, command: str, name: str,
                 parent: str | None = None, extra_params: dict[str, Any] | None = None,
                 extra_files: Sequence[Path] = ()) -> str:
    tags = {"mlflow.parentRunId": parent} if parent else {}
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = run.info.run_id
    _log_record(client, run_id, record_of(report, command=command, where=Path.cwd(), extra_params=extra_params))
    for artifact in REPORT_ARTIFACTS:
        if (files_dir / artifact).is_file():
            client.log_artifact(run_id, str(files_dir / artifact))
    for path in extra_files:
        client.log_artifact(run_id, str(path))
    return run_id


def _register(client: Any, tracking: Tracking, run_id: str, report: Report, bundle: Path) -> None:
    """Register a passing bundle as a new version of the model ``tracking.register`` and move the alias
    (``tracking.alias``) to it; the version's source is the logged ``release/`` and its tags carry the
    outcome, the verdict, the manifest's SHA-256 and the recipe hash. Does nothing without
    ``register``, for a report that did not pass, or without a ``model.onnx`` in ``bundle``."""
    if tracking.register is None or report.outcome != "pass" or not (bundle / "model.onnx").is_file():
        return
    from mlflow.exceptions import MlflowException

    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    client.log_artifacts(run_id, str(bundle), "release")
    try:
        client.create_registered_model(tracking.register)
    except MlflowException as err:
        if getattr(err, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise
    source = f"{client.get_run(run_id).info.artifact_uri}/release"
    version = client.create_model_version(
        tracking.register, source=source, run_id=run_id,
        tags={"outcome": report.outcome, "verdict": report.verdict,
              "manifest_sha256": str(manifest.get("manifest_sha256")),
              "recipe_hash": str(manifest.get("recipe_hash"))},
        description=f"compress-gate {report.outcome}: {report.scope}")
    client.set_registered_model_alias(tracking.register, tracking.alias, version.version)
    client.set_tag(run_id, "registered_model_version", f"{tracking.register}/{version.version}")


def log_gate(tracking: Tracking, report: Report, out: Path, *, extra_files: Sequence[Path] = ()) -> str:
    """One run for ``compress-gate gate``: the report's record, the files in ``out`` and ``extra_files``
    (the --summary-md file); returns its run id."""
    with _server_errors(tracking, str(out)):
        client = _client(tracking)
        student = Path(report.inputs.students[0]).name if report.inputs.students else "student"
        run_id = _student_run(client, _experiment_id(client, tracking.experiment), report, out, command="gate",
                              name=f"gate {student}", extra_files=extra_files)
        client.set_terminated(run_id, "FINISHED")
    return run_id


def log_run(tracking: Tracking, report: Report, run_dir: Path, bundle_dir: Path) -> str:
    """One run for ``compress-gate run`` (files from ``run_dir/gate``); a passing bundle is registered."""
    with _server_errors(tracking, str(run_dir)):
        client = _client(tracking)
        run_id = _student_run(client, _experiment_id(client, tracking.experiment), report, run_dir / "gate",
                              command="run", name=run_dir.name)
        _register(client, tracking, run_id, report, bundle_dir)
        client.set_terminated(run_id, "FINISHED")
    return run_id


def log_sweep(tracking: Tracking, sweep_dir: Path, rows: Sequence[dict[str, Any]], chosen_student: str | None) -> str:
    """A parent run (sweep.json, sweep.html) with one child run per student; the chosen one is registered."""
    with _server_errors(tracking, str(sweep_dir)):
        client = _client(tracking)
        experiment_id = _experiment_id(client, tracking.experiment)
        parent = client.create_run(experiment_id, run_name=f"sweep {sweep_dir.name}",
                                   tags={"compress_gate.command": "sweep",
                                         "chosen_student": chosen_student or "none"}).info.run_id
        for name in ("sweep.json", "sweep.html"):
            if (sweep_dir / name).is_file():
                client.log_artifact(parent, str(sweep_dir / name))
        for row in rows:
            run_dir = Path(row["run_dir"])
            report = as_report(json.loads((run_dir / "gate" / "report.json").read_text(encoding="utf-8")),
                               source=str(run_dir / "gate" / "report.json"))
            child = _student_run(client, experiment_id, report, run_dir / "gate", command="sweep", name=row["student"],
                                 parent=parent, extra_params={"requested_sparsity": row.get("requested_sparsity"),
                                                              "mask": row.get("mask")})
            if row["student"] == chosen_student:
                _register(client, tracking, child, report, Path(row["bundle"]))
            client.set_terminated(child, "FINISHED")
        client.set_terminated(parent, "FINISHED")
    return parent
