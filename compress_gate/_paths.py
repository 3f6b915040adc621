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

__all__ = ["require_regular_file"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


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
    kind = next((name for test, name in _KINDS if test(mode)), "something other than a regular file")
    raise InputError(f"{path}: is {kind}, not a {what}; nothing was read from it. Pass the path of a "
                     f"regular {what}.")
