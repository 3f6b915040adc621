"""One shard file: listing a shard directory, reading a shard (npz or Parquet), writing one.

A shard directory holds shard files, ``*.npz`` or ``*.parquet`` (both may be mixed), and
optionally ``manifest.json``. With a manifest (what ``compress-gate score`` writes, last),
exactly the files it lists are the shards, in its order; without one, every ``*.npz`` and
``*.parquet`` file is a shard, in name order. Hidden files (temporary files of an atomic
write) are skipped; any other file is refused (fail closed: a stray ``part-3.csv`` would
otherwise drop its rows silently). A directory holding :data:`INCOMPLETE_NAME` is the
output of a ``score`` run that has not finished, and is refused.

A Parquet shard has the npz shard's columns: ``ids`` and ``split`` strings, ``group__<name>``
0/1 integers, ``labels`` an integer column (multi-class) or a list column of K 0/1 values
(multi-label), ``scores`` a list column of K floats, ``inputs`` a list column of the
flattened input with its shape in the metadata. The whole-file values (``attribute_names``,
``task``, ``input_shape``) are JSON in the schema metadata key ``compress_gate``. Reading
Parquet needs pyarrow; a Parquet shard without it is an :class:`InputError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate._id_hash import id_length_problem
from compress_gate._paths import kind_of
from compress_gate.data._columns import EVAL_COLUMNS, PREDICTION_COLUMNS, WHOLE_COLUMNS, select_columns
from compress_gate.errors import InputError

__all__ = ["SHARD_SUFFIXES", "MANIFEST_NAME", "INCOMPLETE_NAME", "list_shards", "check_row_counts",
           "read_shard_columns", "write_shard"]

SHARD_SUFFIXES = (".npz", ".parquet")
MANIFEST_NAME = "manifest.json"
INCOMPLETE_NAME = "_INCOMPLETE"
_META_KEY = b"compress_gate"


def list_shards(directory: str | Path, what: str) -> list[Path]:
    """The shard files of ``directory``, at least one: with a ``manifest.json``, exactly the files it
    lists, in its order; without one, every ``*.npz`` and ``*.parquet`` file, in name order.
    Hidden files (temporaries of an atomic write) are skipped; any other file is refused.

    Raises
    ------
    InputError
        Not a directory, an unfinished ``score`` output, an unreadable or malformed
        manifest, a manifest entry that is missing, not a regular file or not a plain file
        name, a file the manifest does not list, a file that is neither a shard nor the
        manifest, an entry named like a shard that is not a regular file (a directory, a
        FIFO, a dangling symbolic link: named as what it is), no shard at all.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: the {what} shard directory does not exist (or is not a directory). "
                         "Check the path, or pass a single .npz file instead.")
    if (directory / INCOMPLETE_NAME).exists():
        raise InputError(f"{directory}: holds {INCOMPLETE_NAME}, so it is the output of a `compress-gate "
                         "score` run that did not finish (no manifest was written). Run the same `compress-gate "
                         "score` command again: it replaces this directory.")
    manifest = directory / MANIFEST_NAME
    if os.path.lexists(manifest):
        kind = kind_of(manifest)
        if kind is not None:
            raise InputError(f"{manifest}: is {kind}, not a shard manifest file; nothing was read from it. "
                             f"Write the shards again, or remove it to read every shard of {directory}.")
        return [path for path, _ in _manifest_entries(manifest, what)]
    names = [path.name for path in sorted(directory.iterdir()) if not path.name.startswith(".")]
    shards = [name for name in names if Path(name).suffix in SHARD_SUFFIXES]
    _check_regular(directory, shards, what, "")
    strays = [name for name in names if name not in shards]
    if strays:
        raise InputError(f"{directory}: {', '.join(strays[:5])} {'is' if len(strays) == 1 else 'are'} not "
                         f"{what} shards (only {', '.join(SHARD_SUFFIXES)} files and {MANIFEST_NAME} may be "
                         "there). Move them out of the directory.")
    if not shards:
        raise InputError(f"{directory}: no {what} shard (*.npz or *.parquet) in the directory. Write the "
                         "shards there, or pass the directory that holds them.")
    return [directory / name for name in shards]


def _shard_row_counts(directory: str | Path) -> list[int] | None:
    """The row count of each shard that ``directory``'s manifest lists, in its order; ``None``
    without a manifest. Call after :func:`list_shards`, which validated the manifest."""
    manifest = Path(directory) / MANIFEST_NAME
    return [rows for _, rows in _manifest_entries(manifest, "")] if manifest.exists() else None


def check_row_counts(directory: Path, shards: list[Path], rows: list[int], what: str) -> None:
    """Raise when ``directory``'s manifest gives one of its ``shards`` (:func:`list_shards`) another row
    count than ``rows``, the rows it holds; no manifest: nothing to check."""
    listed = _shard_row_counts(directory)
    if listed is None:
        return
    wrong = [f"{path.name} ({expected} listed, {found} held)"
             for path, expected, found in zip(shards, listed, rows) if expected != found]
    if wrong:
        raise InputError(f"{directory / MANIFEST_NAME}: the row counts it lists do not match the {what} "
                         f"shards: {', '.join(wrong[:5])}{' and more' if len(wrong) > 5 else ''}. The manifest "
                         "describes other files than these: write the shards again (or correct the manifest).")


def _check_regular(directory: Path, names: list[str], what: str, listed: str) -> None:
    """Raise for a shard name that is not a regular file, saying what it is."""
    for name in names:
        kind = kind_of(directory / name)
        if kind is not None:
            raise InputError(f"{directory / name}: {listed}is {kind}, not a shard file ({what}); nothing was "
                             "read from it. A shard must be a regular .npz or .parquet file: replace it or "
                             "move it out of the directory.")


def _manifest_entries(manifest: Path, what: str) -> list[tuple[Path, int]]:
    """The ``(shard path, rows)`` entries of a shard manifest, checked against its directory.

    The manifest is JSON ``{"shards": [{"file": NAME, "rows": N}, ...]}``: each NAME the plain
    name of a regular .npz or .parquet file of the same directory, listed once, N an integer
    >= 1; every other file of the directory (hidden files aside) must be listed, so no shard
    is dropped silently. The row counts are checked against the shards by :func:`check_row_counts`,
    once the shards are read.
    """
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["shards"]
        pairs = [(entry["file"], entry["rows"]) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{manifest}: not a readable shard manifest ({err!r}); it must be JSON with "
                         "`shards: [{file: ..., rows: ...}, ...]`. Write the shards again.") from err
    for name, rows in pairs:
        if not isinstance(name, str) or Path(name).name != name or Path(name).suffix not in SHARD_SUFFIXES:
            raise InputError(f"{manifest}: shard entry {name!r} must be the plain name of a .npz or .parquet "
                             "file in the same directory. Write the shards again.")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise InputError(f"{manifest}: shard entry {name!r} has `rows` = {rows!r}; it must be the "
                             "shard's row count, an integer >= 1. Write the shards again.")
    names = [name for name, _ in pairs]
    if not names:
        raise InputError(f"{manifest}: lists no {what} shard. Write the shards again.")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InputError(f"{manifest}: lists {', '.join(repeated[:5])} more than once; each shard must be "
                         "listed once. Write the shards again.")
    directory = manifest.parent
    for name in names:
        if not (directory / name).exists() and not (directory / name).is_symlink():
            raise InputError(f"{manifest}: lists the {what} shard {name!r}, which is missing. Restore it or "
                             "write the shards again.")
    _check_regular(directory, names, what, f"listed in {MANIFEST_NAME}, ")
    unlisted = sorted(path.name for path in directory.iterdir()
                      if not path.name.startswith(".") and path.name != MANIFEST_NAME and path.name not in names)
    if unlisted:
        raise InputError(f"{directory}: {', '.join(unlisted[:5])}{' (and more)' if len(unlisted) > 5 else ''} "
                         f"{'is' if len(unlisted) == 1 else 'are'} in the directory but not listed in "
                         f"{MANIFEST_NAME}, so {'its' if len(unlisted) == 1 else 'their'} rows would be dropped "
                         f"silently. List every {what} shard in the manifest (with its row count), or move "
                         "the other files out of the directory.")
    return [(directory / name, rows) for name, rows in pairs]


def read_shard_columns(path: Path, *, predictions: bool, extra_columns: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The contract's columns of one shard file, unvalidated (npz: only those, size-checked)."""
    if path.suffix == ".npz":
        from compress_gate.data.contract import read_eval_columns
        if not predictions:
            return read_eval_columns(path, extra_columns=extra_columns)
        from compress_gate.data._npz import read_npz_columns
        return read_npz_columns(path, "predictions", select=lambda names: select_columns(
            names, known=PREDICTION_COLUMNS, extra_columns=extra_columns, source=str(path), what="predictions"))
    return _read_parquet(path, predictions=predictions, extra_columns=extra_columns)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError as err:
        raise InputError("Parquet shards need pyarrow, which is not installed. Install it (`pip install "
                         "pyarrow`, or the `[ray]` extra) or write the shards as .npz.") from err
    return pyarrow


def _read_parquet(path: Path, *, predictions: bool, extra_columns: Sequence[str]) -> dict[str, np.ndarray]:
    pa = _pyarrow()
    what = "predictions" if predictions else "eval data"
    try:
        table = pa.parquet.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable Parquet {what} shard ({err}). Write the shard again.") from err
    if not isinstance(meta, dict):
        raise InputError(f"{path}: the schema metadata `{_META_KEY.decode()}` is {type(meta).__name__} JSON; it "
                         "must be a JSON object ({\"task\": ..., \"attribute_names\": [...], \"input_shape\": [...]}). "
                         "Write the shard again.")
    known = PREDICTION_COLUMNS if predictions else EVAL_COLUMNS
    names = select_columns(table.column_names, known=known, extra_columns=extra_columns, source=str(path),
                           what=what, groups=not predictions)
    if "ids" in names:
        _check_id_lengths(pa, table.column("ids"), path)
    columns = {name: _to_numpy(pa, table.column(name), path, name) for name in names}
    for key in WHOLE_COLUMNS:
        if key in meta and not predictions:
            columns[key] = np.asarray(meta[key], dtype=str)
    if "inputs" in columns and "input_shape" in meta:
        columns["inputs"] = _shaped_inputs(columns["inputs"], meta["input_shape"], path)
    return columns


def _check_id_lengths(pa: Any, column: Any, path: Path) -> None:
    """Refuse ids longer than MAX_ID_LENGTH before they become a NumPy array as wide as the longest."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return
    longest = pa.compute.max(pa.compute.utf8_length(column)).as_py() or 0
    problem = id_length_problem(str(path), int(longest))
    if problem is not None:
        raise InputError(problem + " The column was not loaded.")


def _shaped_inputs(flat: np.ndarray, shape: Any, path: Path) -> np.ndarray:
    """The ``inputs`` list column (N, width) reshaped to (N, *shape) from the ``input_shape`` metadata."""
    if flat.ndim != 2:
        raise InputError(f"{path}: `inputs` is not a list column (its type gives shape {flat.shape}); it must hold "
                         "each row's flattened input, with its shape in the `input_shape` metadata. Write the "
                         "shard again.")
    valid = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                            for d in shape)
    if not valid or int(np.prod(shape)) != flat.shape[1]:
        raise InputError(f"{path}: the `input_shape` metadata {shape!r} does not fit the `inputs` column, whose "
                         f"rows hold {flat.shape[1]} values each; it must be a list of positive integers whose "
                         f"product is {flat.shape[1]} (e.g. [C, H, W]). Write the shard again (write_shard "
                         "stores the shape of the array it is given).")
    return flat.reshape(flat.shape[0], *shape)


def _to_numpy(pa: Any, column: Any, path: Path, name: str) -> np.ndarray:
    """A Parquet column as an ndarray: list columns of equal lengths become (N, width)."""
    if column.null_count:
        raise InputError(f"{path}: column `{name}` holds {column.null_count} null value(s); every row "
                         "needs a value. Fill or drop those rows.")
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or \
            pa.types.is_fixed_size_list(column.type):
        lengths = pa.compute.list_value_length(column).to_numpy(zero_copy_only=False)
        if lengths.size and (lengths != lengths[0]).any():
            raise InputError(f"{path}: list column `{name}` has rows of different lengths "
                             f"({sorted(set(lengths.tolist()))[:5]}); every row needs the same number of values.")
        flat = pa.compute.list_flatten(column).to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), int(lengths[0]) if lengths.size else 0)
    values = column.to_numpy(zero_copy_only=False)
    return values.astype(str) if values.dtype == object else values


def write_shard(path: str | Path, columns: dict[str, np.ndarray]) -> Path:
    """Write contract columns to ``path`` atomically: npz, or Parquet for a ``.parquet`` path.

    The caller validates the columns first; :func:`read_shard_columns` reads them back equal.
    """
    path = Path(path)
    if path.suffix == ".npz":
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **columns)
        return path
    pa = _pyarrow()
    meta: dict[str, Any] = {k: np.asarray(columns[k]).tolist() for k in WHOLE_COLUMNS if k in columns}
    arrays, names = [], []
    for name, values in columns.items():
        if name in WHOLE_COLUMNS:
            continue
        values = np.asarray(values)
        if name == "inputs":
            meta["input_shape"] = list(values.shape[1:])
        if values.ndim > 1:
            flat = values.reshape(values.shape[0], -1)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1]))
        else:
            arrays.append(pa.array(values))
        names.append(name)
    table = pa.table(arrays, names=names).replace_schema_metadata({_META_KEY: json.dumps(meta)})
    with atomic_path(path) as tmp:
        pa.parquet.write_table(table, tmp)
    return path
