"""One check for every input file the tool reads: it must be a regular file.

A directory, FIFO, socket or device given where a file is expected is reported as
what it is (never as "no such file"), and nothing is read from it, so ``/dev/zero``
or a FIFO can neither hang the tool nor fill its memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from compress_gate.errors import InputError

__all__ = ["require_regular_file", "kind_of"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def kind_of(path: str | Path) -> str | None:
    """What ``path`` is when it is not a regular file (symlinks followed): ``"a directory"``,
    ``"a FIFO (named pipe)"``, ``"a dangling symbolic link"``, ``"missing"``...; ``None`` for a
    regular file. Never opens the path."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling symbolic link" if os.path.islink(path) else "missing"
    except OSError as err:
        return f"a path that cannot be examined ({err.strerror or err})"
    return None if stat.S_ISREG(mode) else _kind(mode)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "something other than a regular file")


def require_regular_file(path: str | Path, what: str, *, missing_hint: str) -> Path:
    """Return ``path`` when it names a regular file (symlinks followed), else raise.

    Parameters
    ----------
    path : the file the user named
    what : what the file should be, for the message (``"limits file"``)
    missing_hint : the fix appended when nothing exists at ``path``

    Raises
    ------
    InputError
        ``"<path>: no such <what>. <missing_hint>"`` when nothing is there;
        ``"<path>: is a directory, not a <what>. ..."`` (or a FIFO, device, socket)
        otherwise; ``"cannot be examined"`` when ``stat`` itself fails (permissions).
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}. {missing_hint}") from None
    except OSError as err:
        raise InputError(f"{path}: the {what} cannot be examined ({err.strerror or err}). Check the path "
                         "and its permissions.") from err
    if stat.S_ISREG(mode):
        return path
    raise InputError(f"{path}: is {_kind(mode)}, not a {what}; nothing was read from it. Pass the path of a "
                     f"regular {what}.")
