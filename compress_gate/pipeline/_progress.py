"""Rich progress bars for the run's stages, handed to the libraries as plain callbacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

__all__ = ["RunProgress"]


class RunProgress:
    """One ``rich.progress.Progress`` for the run; each method returns a callback for one task.

    Use as a context manager (the bars stop on exit). Callbacks create their task on
    first use, so a stage that does not report (e.g. a cached teacher) shows no bar.
    """

    def __init__(self, console: Console) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn)

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=console)
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RunProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _task(self, label: str, total: float | None) -> TaskID:
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(label, total=total)
        return self._tasks[label]

    def counter(self, label: str) -> Callable[[int, int], None]:
        """``progress(done, total)``."""
        def update(done: int, total: int) -> None:
            self._progress.update(self._task(label, total), completed=done, total=total)
        return update

    def trainer(self, label: str) -> Callable[[int, int, float], None]:
        """``progress(step, total_steps, loss)`` for a training loop."""
        def update(done: int, total: int, loss: float) -> None:
            self._progress.update(self._task(label, total), completed=done, total=total,
                                  description=f"{label} · loss {loss:.3f}")
        return update

    def rows(self, per_model: int) -> Callable[[str, int], None]:
        """``progress(label, rows)``: adds ``rows`` scored rows to the bar of ``label``."""
        def update(label: str, rows: int) -> None:
            self._progress.advance(self._task(f"score {label}", per_model), rows)
        return update

    def status(self, label: str) -> Callable[[str], None]:
        """``progress(message)``: a bar without a total whose text follows the messages."""
        def update(message: str) -> None:
            self._progress.update(self._task(label, None), description=f"{label}: {message}")
        return update

    def note(self, message: str) -> None:
        """Print a line above the bars."""
        self._progress.console.print(message, highlight=False)
