"""The run's own record, ``<run>/run.json``: stage wall times, artefacts and status.

It is rewritten (atomically) after every stage, so a run that stops part-way leaves a
record of what completed, which stage failed and why, next to the completed artefacts.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_json
from compress_gate._json import json_safe
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["RunRecord", "json_ready"]


def json_ready(value: Any) -> Any:
    """``value`` in plain JSON types, by the one convention of :func:`compress_gate._json.json_safe`."""
    return json_safe(value)


class RunRecord:
    """Collects ``stage -> seconds`` and the run's facts; persisted to ``<run>/run.json``.

    ``stage_seconds`` are wall times; ``stage_cpu_seconds`` the CPU time of this process
    (all its threads, not DeepSparse's worker process) in the same stage, which tells a
    slow stage from a machine busy with other work.

    ``status`` is ``running``, then ``released``, ``refused`` or ``failed`` (with
    ``failed_stage`` and ``error``).
    """

    def __init__(self, run_dir: Path, facts: dict[str, Any]) -> None:
        self.path = run_dir / "run.json"
        self.stage_seconds: dict[str, float] = {}
        self.stage_cpu_seconds: dict[str, float] = {}
        self.facts: dict[str, Any] = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "status": "running", **facts}
        self.save()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``; record a failure and re-raise it.

        ``MemoryError`` and torch's ``RuntimeError`` become :class:`RuntimeFailure`
        naming the stage and the run directory that keeps the completed work.
        """
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        except InputError as err:
            self._fail(name, err)
            raise
        except RuntimeFailure as err:
            self._fail(name, err)
            raise RuntimeFailure(f"{err} (stage `{name}`; completed stages are kept in "
                                 f"{self.path.parent}, see run.json)") from err
        except (MemoryError, RuntimeError) as err:
            self._fail(name, err)
            raise RuntimeFailure(f"stage `{name}` failed: {type(err).__name__}: {err}. Completed stages are "
                                 f"kept in {self.path.parent} (see run.json).") from err
        except BaseException as err:  # a bug or an interrupt: recorded, then raised unchanged
            self._fail(name, err)
            raise
        self.stage_seconds[name] = round(time.perf_counter() - start, 3)
        self.stage_cpu_seconds[name] = round(time.process_time() - cpu_start, 3)
        self.save()

    @contextlib.contextmanager
    def capture_warnings(self) -> Iterator[None]:
        """Collect the libraries' warnings into run.json's ``warnings`` instead of the terminal.

        Each distinct warning is kept once (category and first 300 characters), at most 50.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                yield
            finally:
                unique = dict.fromkeys(f"{w.category.__name__}: {str(w.message)[:300]}" for w in caught)
                self.facts["warnings"] = list(unique)[:50]
                self.save()

    def _fail(self, name: str, err: BaseException) -> None:
        self.facts.update(status="failed", failed_stage=name, error=f"{type(err).__name__}: {err}")
        self.save()

    def update(self, **facts: Any) -> None:
        """Add or replace facts and persist."""
        self.facts.update(facts)
        self.save()

    def as_dict(self) -> dict[str, Any]:
        """The record as written to run.json."""
        return {**self.facts, "stage_seconds": dict(self.stage_seconds),
                "total_seconds": round(sum(self.stage_seconds.values()), 3),
                "stage_cpu_seconds": dict(self.stage_cpu_seconds)}

    def save(self) -> None:
        """Write run.json atomically."""
        write_json(self.path, json_ready(self.as_dict()))
