"""The run's own record, ``<run>/run.json``: stage wall times, artefacts and status.

It is rewritten (atomically) after every stage, so a run that stops part-way leaves a
record of what completed, which stage failed and why, next to the completed artefacts.
A stage that fails or is interrupted (SIGINT, or SIGTERM through
:func:`compress_gate._signals.terminate_as_interrupt`) has its partial artefacts
removed, and run.json lists them under ``removed_partial``: what stays on disk is a
completed stage's output.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
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

    ``status`` is ``running``, then ``released``, ``refused``, ``failed`` (with
    ``failed_stage`` and ``error``) or ``interrupted`` (with ``interrupted_stage`` and
    ``error``; SIGINT or SIGTERM). A stop between stages names the stage that was next
    (:meth:`running`).
    """

    def __init__(self, run_dir: Path, facts: dict[str, Any]) -> None:
        self.path = run_dir / "run.json"
        self.stage_seconds: dict[str, float] = {}
        self.stage_cpu_seconds: dict[str, float] = {}
        self._next_stage = "config"
        self.facts: dict[str, Any] = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                      "status": "running", **facts}
        self.save()

    @contextlib.contextmanager
    def stage(self, name: str, *, artefacts: Sequence[str] = ()) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``; record a failure and re-raise it.

        ``artefacts`` (names in the run directory) are what the stage writes: when the
        block fails or is interrupted, those present are removed (partial output) and
        listed in run.json's ``removed_partial``. ``MemoryError``, ``OSError`` (a full
        disk) and torch's ``RuntimeError`` become :class:`RuntimeFailure` naming the stage
        and the run directory that keeps the completed work.
        """
        start, cpu_start = time.perf_counter(), time.process_time()
        self._next_stage = name
        try:
            yield
        except InputError as err:
            self._fail(name, err, artefacts)
            raise
        except RuntimeFailure as err:
            self._fail(name, err, artefacts)
            raise RuntimeFailure(f"{err} (stage `{name}`; completed stages are kept in "
                                 f"{self.path.parent}, see run.json)") from err
        except (MemoryError, OSError, RuntimeError) as err:
            self._fail(name, err, artefacts)
            raise RuntimeFailure(f"stage `{name}` failed: {type(err).__name__}: {err}. Completed stages are "
                                 f"kept in {self.path.parent} (see run.json).") from err
        except BaseException as err:  # a bug or an interrupt: recorded, then raised unchanged
            self._fail(name, err, artefacts)
            raise
        self.stage_seconds[name] = round(time.perf_counter() - start, 3)
        self.stage_cpu_seconds[name] = round(time.process_time() - cpu_start, 3)
        self._next_stage = "after " + name
        self.save()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Record a failure or interrupt that happens outside any :meth:`stage` (between stages)."""
        try:
            yield
        except BaseException as err:
            if self.facts.get("status") == "running":
                self._fail(self._next_stage, err, ())
            raise

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

    def _fail(self, name: str, err: BaseException, artefacts: Sequence[str]) -> None:
        run_dir = self.path.parent
        removed = [a for a in artefacts if (run_dir / a).exists() or (run_dir / a).is_symlink()]
        for artefact in removed:
            target = run_dir / artefact
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        if isinstance(err, KeyboardInterrupt):
            self.facts.update(status="interrupted", interrupted_stage=name,
                              error=str(err) or "interrupted by SIGINT")
        else:
            self.facts.update(status="failed", failed_stage=name, error=f"{type(err).__name__}: {err}")
        if removed:
            self.facts["removed_partial"] = removed
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
