"""How a sweep's students run: one after another in this process, or as Ray tasks (the teacher first).

With ``execution="ray"`` the teacher is trained first, as one Ray task, into the recipe's teacher
cache; then each student's run is one Ray task (:func:`compress_gate.execution.map_tasks`: one
CPU, retried when its worker dies), each loading the cached teacher.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate.config.run import load_run_config
from compress_gate.execution import Execution

if TYPE_CHECKING:
    from rich.console import Console

    from compress_gate.pipeline.run import RunOutcome

__all__ = ["student_runner"]


def student_runner(execution: Execution, address: str | None, console: Console | None, *,
                   resume: bool = False) -> Any:
    """recipe paths -> their run outcomes: Ray tasks (the teacher first), or one after another (with
    ``resume``: finished students read back, interrupted ones continued; :mod:`._resume`)."""
    from compress_gate.pipeline._resume import continue_student
    from compress_gate.pipeline.run import run_recipe

    if execution == "ray":
        return lambda paths: _students_on_ray(paths, address)
    if resume:
        return lambda paths: (continue_student(path, console=console) for path in paths)
    return lambda paths: (run_recipe(path, console=console) for path in paths)


def _students_on_ray(recipe_paths: list[Path], address: str | None) -> list[RunOutcome]:
    """The teacher as one Ray task (:func:`_train_teacher`), then each student's run as one Ray task
    (:func:`_run_student`), in one Ray session; outcomes in recipe order."""
    from compress_gate.execution import map_tasks, ray_session

    with ray_session(address, what="the sweep's students"):
        map_tasks(_train_teacher, recipe_paths[:1], address=address, what="the sweep's teacher")
        return map_tasks(_run_student, recipe_paths, address=address, what="the sweep's students")


def _train_teacher(recipe_path: Path) -> str:
    """Train (or find) the dense teacher of a student recipe in its teacher cache, as ``compress-gate run``
    would; returns where it came from (``trained``, ``cache`` or ``checkpoint``)."""
    import tempfile

    from compress_gate.data import load_dataset
    from compress_gate.pipeline.teacher import obtain_teacher

    config = load_run_config(recipe_path)
    data = load_dataset(config.data, base_dir=recipe_path.parent)
    with tempfile.TemporaryDirectory() as tmp:
        return obtain_teacher(config, data, save_to=Path(tmp) / "teacher.pt")[1].source


def _run_student(recipe_path: Path) -> RunOutcome:
    """One student's ``compress-gate run`` in a Ray worker (its progress is not shown)."""
    from rich.console import Console

    from compress_gate.pipeline.run import run_recipe

    return run_recipe(recipe_path, console=Console(stderr=True, quiet=True))
