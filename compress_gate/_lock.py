"""One writer per output: an advisory lock beside each output path, held for the whole call.

Two calls writing the same ``--out`` at once would interleave: the last rename wins, and a
call that is refused could leave the other call's passing ``report.json`` behind it. So every
output (directory or file) is written under :func:`output_lock`: an exclusive ``flock`` on
the lock file ``<parent>/.<name>.lock``, which also records its holder (pid, host, start time,
command line). A second call is refused at once with :class:`InputError` (exit 2) naming the
output and the holder; it writes and deletes nothing.

The lock is released (its file removed, and any parent directory made for it that is still
empty) when the call ends, however it ends; the kernel
drops a ``flock`` when its process dies, so a killed holder never blocks a later call (a
lock file left by ``kill -9`` is reused). Removing the file is safe against a racing call:
a call that locked a file which was removed meanwhile finds that the path no longer names
the inode it holds, and locks afresh. Within one process the lock is re-entrant (``run``
holds its run directory's lock while a stage rewrites the directory).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from compress_gate.errors import InputError

__all__ = ["output_lock", "lock_path"]

_HELD: dict[Path, list[int]] = {}     # lock file -> [fd, depth] held by this process
_HELD_GUARD = threading.Lock()


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the output ``path``: ``<parent>/.<name>.lock`` (parent resolved, symlinks followed)."""
    path = Path(path)
    return path.parent.resolve() / f".{path.name}.lock"


def _holder_text() -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    command = " ".join(["compress-gate", *sys.argv[1:]]) if sys.argv else "compress-gate"
    return f"pid {os.getpid()} on {socket.gethostname()}, since {now}: {command[:300]}"


def _busy(path: Path, fd: int, what: str) -> InputError:
    try:
        holder = os.pread(fd, 1000, 0).decode("utf-8", "replace").strip()
    except OSError:
        holder = ""
    holder = holder or "a compress-gate process that is just starting"
    return InputError(f"{path}: another compress-gate call is writing this {what} ({holder}). One call "
                      f"writes an output at a time: wait for it to finish, or choose another output path.")


def _acquire(path: Path, lock: Path, what: str) -> int:
    """An fd holding the exclusive, non-blocking ``flock`` on the file ``lock``, with this process as
    its recorded holder; InputError naming the holder when another process holds it. Retries when
    the file was removed by its last holder between the open and the lock (the path no longer
    names the locked inode)."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise InputError(f"{path}: cannot make the lock file {lock} for the {what} ({err.strerror}). "
                             "Choose a writable location.") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise InputError(f"{path}: cannot lock {lock} ({err.strerror}). Choose an output path on a "
                                 "local file system.") from err
            busy = _busy(path, fd, what)
            os.close(fd)
            raise busy from None
        try:
            same = os.stat(lock)
        except FileNotFoundError:
            same = None
        held = os.fstat(fd)
        if same is not None and (same.st_ino, same.st_dev) == (held.st_ino, held.st_dev):
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode("utf-8"), 0)
            return fd
        os.close(fd)    # the file was removed by its last holder between our open and our lock: retry


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str], *, what: str = "output") -> Iterator[None]:
    """Hold the one-writer lock of the output ``path`` (``<parent>/.<name>.lock``) for the block.

    Re-entrant within one process; on exit the lock file is removed, and any parent directory
    made for it that is still empty.

    Raises
    ------
    InputError
        Another call (another process) holds it: the message names ``path`` and the holder.
    """
    made = _make_parents(Path(path), what)
    try:
        lock = lock_path(path)
        with _HELD_GUARD:
            entry = _HELD.get(lock)
            if entry is not None:
                entry[1] += 1
            else:
                _HELD[lock] = entry = [_acquire(Path(path), lock, what), 1]
        try:
            yield
        finally:
            with _HELD_GUARD:
                entry[1] -= 1
                if entry[1] == 0:
                    del _HELD[lock]
                    with contextlib.suppress(OSError):
                        os.unlink(lock)        # while still locked: a racer then finds another inode
                    os.close(entry[0])
    finally:
        for directory in made:                 # deepest first; one that holds anything now stays
            with contextlib.suppress(OSError):
                directory.rmdir()


def _make_parents(path: Path, what: str) -> list[Path]:
    """Create the missing parents of ``path`` (the lock file lives beside it); return them deepest first,
    so a call that ends without writing its output leaves no empty directory behind."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{path}: cannot make the {what}'s parent directory ({err.strerror}). Choose a "
                         "writable location.") from err
    return missing
