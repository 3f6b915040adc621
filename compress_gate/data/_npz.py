"""Reading named columns of an ``.npz``: only what is asked for, sizes checked before decompression.

An npz is a zip archive of ``<column>.npy`` members. :func:`read_npz_columns` lists the
members from the zip directory, lets the caller refuse unknown columns by name, and
reads only the selected ones. Before a column is decompressed:

- its ``.npy`` header (the first bytes of the member) gives shape and dtype; object
  arrays are refused (pickles never load: ``allow_pickle=False``);
- the data size it declares, ``prod(shape) * itemsize``, must fit in the member's
  uncompressed size from the zip directory, and the directory may not promise more
  than that plus 64 KiB of header (a member larger than its header says is corrupt
  or crafted);
- a per-row column (every selected column except those in ``whole``) must have
  ``shape[0] = N``, the row count of the first per-row column read, so a column's
  size is bounded by N and its dtype before any of it is decompressed;
- no column may exceed :data:`MAX_COLUMN_BYTES` (16 GiB); a column that still does
  not fit in memory is an :class:`InputError` naming the file and the column;
- a string ``ids`` column may be at most :data:`~compress_gate._id_hash.MAX_ID_LENGTH`
  characters wide (NumPy's width is that of the longest id).

So a small npz holding a huge unused column is neither loaded nor decompressed.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np

from compress_gate._id_hash import id_length_problem
from compress_gate._paths import require_regular_file
from compress_gate.errors import InputError

__all__ = ["MAX_COLUMN_BYTES", "read_npz_columns"]

MAX_COLUMN_BYTES = 16 * 2**30
_HEADER_SLACK = 64 * 2**10
_NPY_MAGIC = b"\x93NUMPY"


def read_npz_columns(path: str | Path, what: str, *, select: Callable[[list[str]], list[str]],
                     whole: Collection[str] = (), save_hint: str = "numpy.savez(path, ids=..., ...)"
                     ) -> dict[str, np.ndarray]:
    """The columns of the npz at ``path`` that ``select`` picks, in the order it returns them.

    Parameters
    ----------
    path : the ``.npz`` file
    what : what the file holds, for messages (``"eval data"``)
    select : gets the column names in the archive and returns those to read; it raises
        :class:`InputError` for a column it refuses. Columns it leaves out are never read.
    whole : selected columns that are not one row per sample (``task``, ``attribute_names``)
    save_hint : how to write the file, for messages

    Raises
    ------
    InputError
        Missing file (or a directory, FIFO, device), 0 bytes, a single ``.npy`` array,
        not a zip archive, a corrupt member, an object (pickled) column, a per-row
        column whose row count differs from the first one read, a column over
        :data:`MAX_COLUMN_BYTES` or too big for memory (file and column named).
    """
    path = require_regular_file(path, f"{what} file", missing_hint="Check the path (it is relative to the "
                                "current directory) or write the file first.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise InputError(_not_npz(path, what, save_hint, err)) from err
    with archive:
        members = {(info.filename[:-4] if info.filename.endswith(".npy") else info.filename): info
                   for info in archive.infolist()}
        columns: dict[str, np.ndarray] = {}
        rows: tuple[str, int] | None = None
        for name in select(list(members)):
            info = members[name]
            shape, dtype = _header(archive, info, path, name, what, save_hint)
            if name == "ids" and dtype.kind in "US":   # its width: the longest id's (UTF-8 bytes: >= chars / 4)
                problem = id_length_problem(str(path), dtype.itemsize // 4)
                if problem is not None:
                    raise InputError(problem + " The column was not loaded.")
            if name not in whole:
                if not shape:
                    raise InputError(f"{path}: column `{name}` is a scalar; it must hold one entry per "
                                     "sample (N, ...).")
                if rows is None:
                    rows = (name, shape[0])
                elif shape[0] != rows[1]:
                    raise InputError(f"{path}: `{name}` has shape {shape} but `{rows[0]}` has {rows[1]} rows; "
                                     "every column must have one row per id, in the same order. Fix the "
                                     "column (it was not loaded).")
            columns[name] = _read_member(archive, info, path, name, what, save_hint)
    return columns


def _not_npz(path: Path, what: str, save_hint: str, err: object) -> str:
    with open(path, "rb") as handle:
        head = handle.read(len(_NPY_MAGIC))
    if not head:
        return f"{path}: the file is empty (0 bytes). Write the {what} with {save_hint}."
    if head == _NPY_MAGIC:
        return (f"{path}: not an .npz archive (a single .npy array). Save the {what} with {save_hint} so "
                "every column has a name.")
    return f"{path}: not a readable .npz archive ({err}). Save the {what} with {save_hint}."


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str, what: str,
            save_hint: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the member's ``.npy`` header; every size check made before its data is read."""
    try:
        with archive.open(info) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError) as err:
        raise InputError(f"{path}: column `{name}` is not a readable array ({err}). Save the {what} "
                         f"with {save_hint}.") from err
    if dtype.hasobject:
        raise InputError(f"{path}: column `{name}` holds Python objects (dtype=object), which the {what} "
                         "format does not load. Store strings as a fixed-width array: "
                         "numpy.asarray(values, dtype=str).")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize   # prod(()) = 1: a scalar
    if nbytes > MAX_COLUMN_BYTES or info.file_size > MAX_COLUMN_BYTES:
        raise InputError(f"{path}: column `{name}` holds {max(nbytes, info.file_size)} bytes (shape {shape}, "
                         f"dtype {dtype}), more than the {MAX_COLUMN_BYTES // 2**30} GiB a column may hold; it "
                         "was not loaded. Split the data into smaller files, or drop the column.")
    if not nbytes <= info.file_size <= nbytes + _HEADER_SLACK:
        raise InputError(f"{path}: column `{name}` is corrupt: its header declares {nbytes} bytes of data "
                         f"(shape {shape}, dtype {dtype}) but the archive stores {info.file_size}. Write the "
                         f"{what} again with {save_hint}.")
    return shape, dtype


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str, what: str,
                 save_hint: str) -> np.ndarray:
    try:
        with archive.open(info) as handle:
            return np.lib.format.read_array(handle, allow_pickle=False)
    except MemoryError as err:
        raise InputError(f"{path}: column `{name}` ({info.file_size} bytes) is too big to load into this "
                         "machine's memory. Split the data into smaller files, or run with more memory.") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError) as err:
        raise InputError(f"{path}: column `{name}` is not a readable array ({err}). Save the {what} "
                         f"with {save_hint}.") from err
