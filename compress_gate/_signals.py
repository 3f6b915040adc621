"""SIGTERM handled like SIGINT: an exception in the main thread, so cleanup runs.

CI systems and container runtimes stop a job with SIGTERM. Its default action ends the
process at once: no ``finally``, no context manager, so a run record stays ``running``
forever and worker processes outlive their parent. Inside :func:`terminate_as_interrupt`
SIGTERM raises :class:`Interrupted` (a ``KeyboardInterrupt``) instead, and the CLI exits
``128 + signum`` (143), as a shell reports a process ended by that signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["Interrupted", "terminate_as_interrupt"]


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or another signal) turned into an exception, so cleanup runs as for Ctrl-C.

    ``signum`` is the signal's number; the CLI exits with ``128 + signum`` (143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`Interrupted` in the main thread (like SIGINT).

    So ``finally`` blocks and context managers run: engines stop their worker processes,
    the run record says ``interrupted``. Outside the main thread this does nothing
    (Python delivers signals to the main thread only). The previous handler is restored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
