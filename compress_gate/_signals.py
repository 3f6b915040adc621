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

__all__ = ["Interrupted", "terminate_as_interrupt", "signal_of"]

_received: list[int] = []      # the signals turned into Interrupted, in order (see signal_of)


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
    the run record says ``interrupted``. SIGINT raises :class:`Interrupted` too, so each
    signal received is recorded for :func:`signal_of`. Outside the main thread this does
    nothing (Python delivers signals to the main thread only). The previous handlers are restored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        _received.append(signum)
        raise Interrupted(signum)

    _received.clear()
    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def signal_of(err: KeyboardInterrupt) -> int:
    """The number of the signal behind ``err``: its own (:class:`Interrupted`), else the last one that
    :func:`terminate_as_interrupt` turned into an exception, else SIGINT (Ctrl-C).

    A library may catch the :class:`Interrupted` raised inside its blocking call and raise a plain
    ``KeyboardInterrupt`` instead (Ray's ``ray.get`` does: a SIGTERM during a Ray gate otherwise
    read as SIGINT, exit 130), so the exception alone can lose the signal.
    """
    signum = getattr(err, "signum", None)
    if signum is not None:
        return int(signum)
    return _received[-1] if _received else int(signal.SIGINT)
