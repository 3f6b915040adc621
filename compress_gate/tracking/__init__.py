"""Recording gates, runs and sweeps where their users track models: MLflow (the ``[mlflow]`` extra).

:mod:`compress_gate.tracking.record` decides what a judged student logs (no MLflow import);
:mod:`compress_gate.tracking.mlflow_log` talks to the server. Both only read what the
commands wrote: tracking never changes a verdict or a file.
"""

from compress_gate.tracking.mlflow_log import Tracking, log_gate, log_run, log_sweep, resolve_tracking

__all__ = ["Tracking", "resolve_tracking", "log_gate", "log_run", "log_sweep"]
