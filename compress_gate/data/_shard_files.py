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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate.data._columns import EVAL_COLUMNS, PREDICTION_COLUMNS, WHOLE_COLUMNS, select_columns
from compress_gate.errors import InputError

__all__ = ["SHARD_SUFFIXES", "MANIFEST_NAME", "INCOMPLETE_NAME", "list_shards", "read_shard_columns",
           "write_shard"]

SHARD_SUFFIXES = (".npz", ".parquet")
MANIFEST_NAME = "manifest.json"
INCOMPLETE_NAME = "_INCOMPLETE"
_META_KEY = b"compress_gate"


def list_shards(directory: str | Path, what: str) -> list[Path]:
    """The shard files of ``directory`` (rules in the module docstring); at least one.

    Raises
    ------
    InputError
        Not a directory, an unfinished ``score`` output, an unreadable or malformed
        manifest, a manifest entry that is missing or not a plain file name, a file that
        is neither a shard nor the manifest, no shard at all.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: the {what} shard directory does not exist (or is not a directory). "
                         "Check the path, or pass a single .npz file instead.")
    if (directory / INCOMPLETE_NAME).exists():
        raise InputError(f"{directory}: holds {INCOMPLETE_NAME}, so it is the output of a `compress-gate "
                         "score` run that did not finish (no manifest was written). Run the command again.")
    manifest = directory / MANIFEST_NAME
    if manifest.exists():
        return _manifest_shards(manifest, what)
    shards, strays = [], []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        (shards if path.suffix in SHARD_SUFFIXES and path.is_file() else strays).append(path.name)
    if strays:
        raise InputError(f"{directory}: {', '.join(strays[:5])} {'is' if len(strays) == 1 else 'are'} not "
                         f"{what} shards (only {', '.join(SHARD_SUFFIXES)} files and {MANIFEST_NAME} may be "
                         "there). Move them out of the directory.")
    if not shards:
        raise InputError(f"{directory}: no {what} shard (*.npz or *.parquet) in the directory. Write the "
                         "shards there, or pass the directory that holds them.")
    return [directory / name for name in shards]


def _manifest_shards(manifest: Path, what: str) -> list[Path]:
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["shards"]
        names = [entry["file"] for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{manifest}: not a readable shard manifest ({err!r}); it must be JSON with "
                         "`shards: [{file: ..., rows: ...}, ...]`. Write the shards again.") from err
    paths = []
    for name in names:
        path = manifest.parent / str(name)
        if not isinstance(name, str) or Path(name).name != name or path.suffix not in SHARD_SUFFIXES:
            raise InputError(f"{manifest}: shard entry {name!r} must be the plain name of a .npz or .parquet "
                             "file in the same directory. Write the shards again.")
        if not path.is_file():
            raise InputError(f"{manifest}: lists the {what} shard {name!r}, which is missing. Restore it or "
                             "write the shards again.")
        paths.append(path)
    if not paths:
        raise InputError(f"{manifest}: lists no {what} shard. Write the shards again.")
    return paths


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
    known = PREDICTION_COLUMNS if predictions else EVAL_COLUMNS
    names = select_columns(table.column_names, known=known, extra_columns=extra_columns, source=str(path),
                           what=what, groups=not predictions)
    columns = {name: _to_numpy(pa, table.column(name), path, name) for name in names}
    for key in WHOLE_COLUMNS:
        if key in meta and not predictions:
            columns[key] = np.asarray(meta[key], dtype=str)
    if "inputs" in columns and "input_shape" in meta:
        columns["inputs"] = columns["inputs"].reshape(-1, *meta["input_shape"])
    return columns


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
