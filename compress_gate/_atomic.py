"""Atomic file and directory writes: nothing half-written ever looks complete.

Every artefact is written to a temporary sibling and renamed into place
(``os.replace`` is atomic on POSIX within one filesystem). The temporaries get the
modes of a normally created file or directory, ``0o666 & ~umask`` and
``0o777 & ~umask``, not ``mkstemp``'s private 0600 / 0700, so a CI artefact uploader
running as another user can read what the tool wrote. Which targets may be replaced
at all is :mod:`compress_gate._outdir`'s policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["write_bytes", "write_text", "write_json", "atomic_path", "atomic_directory", "file_mode",
           "dir_mode"]


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def file_mode() -> int:
    """The mode of a newly created file under the process umask: ``0o666 & ~umask``."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """The mode of a newly created directory under the process umask: ``0o777 & ~umask``."""
    return 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    For writers that need a file name (``np.savez``, ``onnx.save``, ``torch.save``).
    On an exception the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN is refused: use ``None``) atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; rename it onto ``path`` on success.

    An existing ``path`` is replaced when ``replace`` is true (moved aside first,
    deleted after the rename). On an exception the temporary directory is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp.chmod(dir_mode())
        yield tmp
        old = None
        if path.exists():
            if not replace:
                raise FileExistsError(path)
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
