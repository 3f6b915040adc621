"""``run --resume``: which run directory may be continued, and where its epoch checkpoints live.

A run directory holds ``checkpoints/teacher.pt`` while the dense teacher trains and
``checkpoints/student.pt`` while the torch backend fine-tunes the student
(:mod:`compress_gate.models.checkpoint`: the state after the last finished epoch). They
stay when a run fails or is interrupted, and are removed when it finishes (released or
refused). ``compress-gate run RECIPE --resume`` continues such a directory: every stage runs
again, and the teacher and the student training pick up their checkpoints, so the run ends
with the weights an uninterrupted run would have given.

Only a directory whose ``run.json`` says ``interrupted``, ``failed`` or ``running`` (a
process killed outright, e.g. SIGKILL or the out-of-memory killer, never wrote its end;
the run directory's lock proves none is running now) and whose ``recipe_hash`` is this
recipe's may be resumed; anything else is exit 2 (:func:`check_resumable`).

``compress-gate sweep ... --resume`` keeps the sweep directory and takes each student in turn
(:func:`continue_student`): a student whose run finished (released or refused) for the same
recipe is read back, not run again; an interrupted or failed one is resumed; one never started
runs. A finished sweep (its ``sweep.json`` written) is not resumed (:func:`check_sweep_resumable`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.data.contract import EvalData
    from compress_gate.models.checkpoint import EpochCheckpoint

__all__ = ["RESUMABLE", "check_resumable", "check_sweep_resumable", "continue_student", "checkpoint_for",
           "student_checkpoint_key", "remove_checkpoints"]

#: run.json statuses a run may be resumed from.
RESUMABLE = ("interrupted", "failed", "running")
_DIRECTORY = "checkpoints"


def check_resumable(run_dir: Path, digest: str, recipe: Path) -> dict[str, Any]:
    """``run_dir``'s run.json facts, when ``--resume`` may continue it: its status is ``interrupted``,
    ``failed`` or ``running`` and its ``recipe_hash`` is ``digest``.

    Raises
    ------
    InputError
        No run.json (nothing to resume), a finished run, or another recipe's run; the
        message names the file and the fix.
    """
    record = run_dir / "run.json"
    try:
        facts = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{record}: --resume found no run to continue in {run_dir} (no readable run.json). "
                         f"Run `compress-gate run {recipe}` without --resume to start it.") from err
    status = facts.get("status") if isinstance(facts, dict) else None
    if status not in RESUMABLE:
        raise InputError(f"{record}: --resume continues an interrupted or failed run, but this run's status is "
                         f"{status!r} (it finished). Its results stand; run without --resume to start the "
                         "recipe again (that replaces the directory).")
    if facts.get("recipe_hash") != digest:
        raise InputError(f"{record}: --resume continues a run of the same recipe, but {run_dir} was made by "
                         f"another recipe or other linked files (recipe_hash {str(facts.get('recipe_hash'))[:16]}..., "
                         f"{recipe} now has {digest[:16]}...). Restore the recipe it ran, or run without --resume "
                         "to start this recipe afresh (that replaces the directory).")
    return facts


def checkpoint_for(run_dir: Path, stage: str, key: str) -> EpochCheckpoint:
    """The epoch checkpoint of ``stage`` (``teacher`` or ``student``) in ``run_dir``, valid for ``key``."""
    from compress_gate.models.checkpoint import EpochCheckpoint

    return EpochCheckpoint(run_dir / _DIRECTORY / f"{stage}.pt", key)


def student_checkpoint_key(digest: str, teacher: torch.nn.Module, data: EvalData) -> str:
    """SHA-256 over the recipe hash, the teacher's weights and the training rows' ids, labels and splits.

    A student checkpoint continues only the training it was made for: the same recipe, the
    same dense teacher (a checkpoint file or data changed since would give another) and the
    same rows.
    """
    hasher = hashlib.sha256(digest.encode())
    for name, tensor in teacher.state_dict().items():
        hasher.update(name.encode())
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for array in (np.asarray(data.ids, dtype=str), np.asarray(data.labels), np.asarray(data.split, dtype=str)):
        hasher.update(np.ascontiguousarray(array).tobytes())
    return hasher.hexdigest()


def remove_checkpoints(run_dir: Path) -> None:
    """Delete ``run_dir``'s checkpoints (a finished run needs none)."""
    shutil.rmtree(run_dir / _DIRECTORY, ignore_errors=True)


def check_sweep_resumable(sweep_dir: Path, recipe: Path) -> None:
    """Refuse (InputError) ``--resume`` of a sweep directory compress-gate did not start, or whose
    sweep finished (``sweep.json`` written)."""
    from compress_gate._outdir import MARKER

    if not (sweep_dir / MARKER).is_file():
        raise InputError(f"{sweep_dir}: --resume found no sweep to continue (no sweep directory made by "
                         f"compress-gate). Run `compress-gate sweep {recipe} ...` without --resume to start it.")
    if (sweep_dir / "sweep.json").is_file():
        raise InputError(f"{sweep_dir / 'sweep.json'}: --resume continues an interrupted sweep, but this one "
                         "finished. Its results stand; run without --resume to start the sweep again (that "
                         "replaces the directory).")


def continue_student(path: Path, *, console: Any = None) -> Any:
    """One student of ``sweep --resume``: its finished run read back, or its run resumed, or started.

    A run directory whose run.json says ``released`` or ``refused`` with this recipe's hash
    gives its :class:`~compress_gate.pipeline.run.RunOutcome` from disk; one with a resumable
    status (or a finished run of another recipe, which :func:`check_resumable` then refuses)
    is resumed; an absent one runs from the start.
    """
    from compress_gate.config.run import load_run_config, recipe_hash
    from compress_gate.pipeline.run import RunOutcome, run_recipe
    from compress_gate.report.rerender import load_report_json

    config = load_run_config(path)
    record = config.output / "run.json"
    if not record.is_file():
        return run_recipe(path, console=console)
    facts = json.loads(record.read_text(encoding="utf-8"))
    if facts.get("status") in ("released", "refused") and facts.get("recipe_hash") == recipe_hash(path, config):
        return RunOutcome(passed=facts["status"] == "released", run_dir=config.output, bundle_dir=Path(facts["bundle"]),
                          report=load_report_json(config.output / "gate" / "report.json"),
                          summary=facts.get("summary", {}), stage_seconds=facts.get("stage_seconds", {}))
    return run_recipe(path, console=console, resume=True)
