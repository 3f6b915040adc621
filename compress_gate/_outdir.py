"""Where compress-gate may write: one policy for every command's outputs.

**Directories** (``gate --out``, ``run``'s run directory, ``audit``'s output, the run's
``gate/``) are built in a fresh temporary directory beside the target and renamed into
place. Every directory the tool makes holds a marker file, :data:`MARKER`
(``.compress-gate``); the tool replaces only a directory that holds it, or an empty
one, and refuses anything else (a non-empty foreign directory, a regular file, a
symbolic link, a device or FIFO) with :class:`InputError` (exit 2) before any work.
Because the whole directory is replaced, no file of an earlier call survives a
successful one; when a call fails (exit 2 or 3) or is interrupted, the earlier
directory is removed as well, so its ``report.json`` can never pass for the result of
the call that failed. On a full disk nothing half-written is left: the temporary
directory is removed and the failure is a :class:`RuntimeFailure` (exit 3) naming the
target.

**Single files** (``predict --out``, ``bench --out``, ``init PATH``) are written to a
temporary sibling and renamed into place (:func:`compress_gate._atomic.atomic_path`).
Only an absent path or a regular file is ever replaced: a directory, a symbolic link,
a device such as ``/dev/null`` or a FIFO is refused with exit 2. A call that fails
removes a stale output it was asked to replace (unless the caller keeps it, as
``init`` does for a recipe a person may have edited).

**Inputs are never outputs.** Every command passes its inputs (data, predictions, models,
limits, recipe, bundle...) to these checks: an output that is, contains, or lies inside one
of them (symbolic links resolved, hard links compared by inode) is refused with exit 2
before anything is written (:func:`check_apart`), so no call can replace, write into or
delete what it reads. And one call writes an output at a time (:mod:`compress_gate._lock`).

Every check runs before the work, including a probe that the target's directory can
take a new file (read-only file system, missing permission, a parent that is a file),
so a benchmark's minutes of results are never lost to a bad ``--out``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Union

from compress_gate._atomic import atomic_path, dir_mode, file_mode
from compress_gate._lock import output_lock
from compress_gate.errors import InputError, RuntimeFailure

__all__ = ["MARKER", "Inputs", "check_apart", "check_output_dir", "check_output_file", "output_directory",
           "output_file", "fresh_directory", "discard_output_dir", "output_lock"]

_PathLike = Union[str, "os.PathLike[str]"]
#: A command's inputs by what they are (``{"eval data (--data)": path, "students": [p1, p2]}``); None skipped.
Inputs = Mapping[str, Union[_PathLike, Iterable[_PathLike], None]]

#: The file that marks a directory compress-gate made (and may therefore replace).
MARKER = ".compress-gate"

_MARKER_TEXT = ("This directory was made by compress-gate. The next call that writes here replaces the "
                "whole directory; keep your own files elsewhere.\n")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "a special file"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # absent; the probe names a parent that is a file
        return None
    except OSError as err:
        raise InputError(f"{path}: cannot inspect the output path ({err.strerror}). Choose another "
                         "output path.") from err


def _probe_parent(path: Path, what: str) -> None:
    """InputError unless a new file can be made in ``path``'s directory (or its nearest existing ancestor).

    Nothing is created: the probe file is removed at once and missing parents are left
    for the writer to create.
    """
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    try:
        if not ancestor.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(ancestor))
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise InputError(f"{path}: cannot write the {what} in {ancestor} ({err.strerror}). "
                         "Choose a writable location (a directory you own, not on a read-only file "
                         "system).") from err


def _flat_inputs(inputs: Inputs) -> Iterator[tuple[str, Path]]:
    for label, value in inputs.items():
        if value is None:
            continue
        for one in ([value] if isinstance(value, (str, os.PathLike)) else value):
            yield label, Path(one)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:     # one of them does not exist (yet)
        return False


def check_apart(path: _PathLike, inputs: Inputs, *, what: str = "output") -> None:
    """Refuse (InputError) an output ``path`` that is, contains, or lies inside one of ``inputs``.

    Both sides are compared with symbolic links resolved (:meth:`Path.resolve`; a missing
    tail is kept as written) and, where both exist, by device and inode, so a link or a
    hard link to an input is the input. The message names the output, the input and what
    it is, and the fix.
    """
    out = Path(path)
    real_out = out.resolve()
    for label, given in _flat_inputs(inputs):
        real = given.resolve()
        if real == real_out or _same_file(real, real_out):
            relation = "is"
        elif real in real_out.parents:
            relation = "lies inside"
        elif real_out in real.parents:
            relation = "contains"
        else:
            continue
        shown = f"{given}" + (f" (= {real})" if real != given.absolute() else "")
        raise InputError(f"{out}: the {what} {relation} the {label}, {shown}. compress-gate never writes into, "
                         "replaces or deletes one of its inputs, so nothing was written. Choose an output "
                         "path outside every input (e.g. a new directory beside them).")


def _is_tool_made(path: Path) -> bool:
    """``path`` is a real directory (no symlink) holding :data:`MARKER`."""
    st = _lstat(path)
    return st is not None and stat.S_ISDIR(st.st_mode) and (path / MARKER).is_file()


def check_output_dir(path: str | os.PathLike[str], *, what: str = "output directory",
                     inputs: Inputs | None = None) -> Path:
    """Refuse (InputError) an output directory the tool may not replace; return it as a Path.

    Allowed: an absent path (its parents are created when written), an empty directory, or a
    directory holding :data:`MARKER`; never the current directory or one holding it (the
    whole directory is replaced), nor one that is, holds or lies inside one of ``inputs``
    (:func:`check_apart`). The message names ``path`` and the fix.
    """
    path = Path(path)
    st = _lstat(path)
    if st is not None:
        if not stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: the {what} is {_kind(st.st_mode)}, not a directory. Give a new "
                             "directory name (compress-gate creates it).")
        cwd = Path.cwd().resolve()
        if cwd == path.resolve() or path.resolve() in cwd.parents:
            raise InputError(f"{path}: the {what} is (or holds) the current directory, and writing there "
                             "replaces the whole directory. Give a new directory name, e.g. out/.")
        if not (path / MARKER).is_file() and any(path.iterdir()):
            raise InputError(f"{path}: the {what} is a non-empty directory, not a compress-gate {what} (it has "
                             f"no {MARKER} marker), and writing there replaces the whole directory. Choose a "
                             "new or empty directory.")
    check_apart(path, inputs or {}, what=what)
    _probe_parent(path, what)
    return path


def check_output_file(path: str | os.PathLike[str], *, what: str = "output file", example: str = "out.json",
                      inputs: Inputs | None = None) -> Path:
    """Refuse (InputError) a file target that is not absent or a regular file, or not writable, or that is,
    or lies inside, one of ``inputs`` (:func:`check_apart`).

    ``example`` is the file name the message suggests inside a directory given by mistake.
    """
    path = Path(path)
    check_apart(path, inputs or {}, what=what)
    st = _lstat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        hint = (f"Give a file name, e.g. {path / example}" if stat.S_ISDIR(st.st_mode)
                else "Give the path of a regular file (compress-gate only ever replaces regular files)")
        raise InputError(f"{path}: the {what} is {_kind(st.st_mode)}, not a regular file; compress-gate "
                         f"will not replace it. {hint}.")
    _probe_parent(path, what)
    return path


def discard_output_dir(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` if it is a directory the tool made (a stale result); anything else stays."""
    path = Path(path)
    if _is_tool_made(path):
        shutil.rmtree(path, ignore_errors=True)


def _new_marked_dir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(dir_mode())
    (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
    (tmp / MARKER).chmod(file_mode())
    return tmp


def _swap_in(tmp: Path, path: Path) -> None:
    """Rename ``tmp`` onto ``path``, moving an earlier directory aside first and deleting it after."""
    aside = None
    if _lstat(path) is not None:
        aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.replace(path, aside / "old")
    try:
        os.replace(tmp, path)
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def _write_failure(path: Path, err: OSError) -> RuntimeFailure:
    return RuntimeFailure(f"{path}: writing the outputs failed ({err}). Nothing of this call was left "
                          "there, and an earlier result there was removed so that it cannot pass for this "
                          "one. Free disk space or fix the permissions and rerun.")


@contextlib.contextmanager
def output_directory(path: str | os.PathLike[str], *, what: str = "output directory",
                     inputs: Inputs | None = None) -> Iterator[Path]:
    """Yield a fresh marked temporary directory beside ``path``; on success it replaces ``path``.

    ``path`` is checked first (:func:`check_output_dir`, with ``inputs``), then locked for
    the block (:func:`compress_gate._lock.output_lock`: a second writer is refused, exit 2,
    and removes nothing). On any exception the temporary directory and a stale tool-made
    ``path`` are removed; an ``OSError`` (full disk, permissions) becomes :class:`RuntimeFailure`.
    """
    path = check_output_dir(path, what=what, inputs=inputs)
    with output_lock(path, what=what), _replacing(path) as tmp:
        yield tmp


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """:func:`output_directory`'s body, under its lock."""
    tmp: Path | None = None
    try:
        tmp = _new_marked_dir(path)
        yield tmp
        _swap_in(tmp, path)
    except OSError as err:
        discard_output_dir(path)
        raise _write_failure(path, err) from err
    except BaseException:
        discard_output_dir(path)
        raise
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def fresh_directory(path: str | os.PathLike[str], *, what: str = "output directory",
                    inputs: Inputs | None = None) -> Path:
    """Replace ``path`` (checked as :func:`check_output_dir`) by a new, empty, marked directory.

    For outputs written stage by stage in place (``run``, ``sweep``, ``score``): an earlier
    call's files are gone before the first stage starts, and the stages' own writes stay
    atomic. The caller holds :func:`output_lock` around the whole call.
    """
    with output_directory(path, what=what, inputs=inputs):
        pass
    return Path(path)


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str], *, what: str = "output file", example: str = "out.json",
                keep_on_failure: bool = False, inputs: Inputs | None = None) -> Iterator[Path]:
    """Yield a temporary path beside the file ``path``; on success it is renamed onto ``path``.

    ``path`` is checked first (:func:`check_output_file`, with ``inputs``), then locked for
    the block (:func:`output_lock`). On an exception a stale ``path`` is removed unless
    ``keep_on_failure``; an ``OSError`` becomes :class:`RuntimeFailure` naming ``path``.
    """
    path = check_output_file(path, what=what, example=example, inputs=inputs)
    with output_lock(path, what=what), _replacing_file(path, what, keep_on_failure) as tmp:
        yield tmp


@contextlib.contextmanager
def _replacing_file(path: Path, what: str, keep_on_failure: bool) -> Iterator[Path]:
    """:func:`output_file`'s body, under its lock."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except BaseException as err:
        if not keep_on_failure and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise RuntimeFailure(f"{path}: writing the {what} failed ({err}). No partial file was left. Free "
                                 "disk space or fix the permissions and rerun.") from err
        raise
