"""Your own data -> :class:`EvalData`: a CSV of image paths, or an ``.npz`` of arrays.

CSV: one row per image; the column names come from :class:`CsvDataConfig`::

    path,split,label,male
    imgs/0001.png,train,cat,1
    imgs/0002.png,test,dog,0

npz: the eval-data contract (DESIGN.md, "Eval data and predictions") plus ``inputs``
(N, C, H, W) float32. ``ids`` may be left out: each row's id is then the SHA-256 of
its input tensor (:func:`compress_gate.data.sample_id`), which the runtime recomputes.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from compress_gate.config.data import CsvDataConfig, NpzDataConfig
from compress_gate.data._build import build_eval_data
from compress_gate.data._images import Progress
from compress_gate.data.image_files import ImageTransform, open_image_files
from compress_gate._paths import require_regular_file
from compress_gate.data._columns import suggest_column
from compress_gate.data.contract import SPLITS, EvalData, _check_eval_columns, read_eval_columns
from compress_gate.data.identity import sample_id
from compress_gate.errors import InputError

__all__ = ["load_csv_data", "load_npz_data"]

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def load_csv_data(config: CsvDataConfig, *, base_dir: Path = Path("."),
                  progress: Progress | None = None) -> EvalData:
    """Read a CSV of image paths, splits, labels and groups; the images stay files, decoded on access.

    Cell values: ``split`` in {train, calib, test}; multi-label and group cells 0/1
    (also ``true``/``false``, ``yes``/``no``); a multi-class label is a class name
    (from ``classes`` when given). Image paths are relative to the CSV's folder.

    Returns
    -------
    EvalData
        Rows in CSV order; ``attribute_names`` = the classes (multi-class) or the label
        columns (multi-label); one group per ``group_columns`` entry; ``inputs``
        (N, channels, image_size, image_size) float32 in [-1, 1].

    Raises
    ------
    InputError
        Missing file or column, an empty CSV, a bad split/label/group cell, a repeated
        id, or a missing, unreadable or wrong-mode image (``on_bad_image: fail``); the
        message names the file, line and column.
    """
    path = _resolve(config.path, base_dir)
    header, rows = _read_csv(path)
    needed = [config.path_column, config.split_column, *config.label_columns,
              *config.group_columns, *([config.id_column] if config.id_column else [])]
    missing = [name for name in dict.fromkeys(needed) if name not in header]
    if missing:
        raise InputError(f"{path}: column(s) {missing} not found; the header has {header}. Fix the "
                         "column names in the recipe's data section (path_column, split_column, "
                         "label_columns, group_columns, id_column) or in the CSV header.")
    _check_unread_columns(header, needed, config.extra_columns, path)
    lines = [line for line, _ in rows]
    cells = {name: [row.get(name) or "" for _, row in rows] for name in dict.fromkeys(needed)}
    del rows                                    # one copy of the cells at a time (memory grows with N)
    split = np.array([_split_value(v, path, line, config.split_column)
                      for v, line in zip(cells[config.split_column], lines)], dtype="<U5")
    if config.task == "multiclass":
        labels, names = _class_labels(cells[config.label_columns[0]], config.classes, path, lines,
                                      config.label_columns[0])
    else:
        labels = np.stack([_binary_column(cells[c], path, lines, c) for c in config.label_columns], 1)
        names = tuple(config.label_columns)
    groups = {c: _binary_column(cells[c], path, lines, c) for c in config.group_columns}
    blank = next((i for i, p in enumerate(cells[config.path_column]) if not p.strip()), None)
    if blank is not None:
        raise InputError(f"{path}: line {lines[blank]}, column {config.path_column} is empty. Give the "
                         "image path of every row (relative to the CSV's folder).")
    id_column = config.id_column or config.path_column
    ids = np.array([v.strip() for v in cells[id_column]], dtype=str)
    _check_unique_ids(ids, path, lines, id_column)
    image_paths = [str(_resolve(Path(p.strip()), path.parent)) for p in cells[config.path_column]]
    transform = ImageTransform(config.image_size, channels=config.channels, crop_size=config.crop_size)
    inputs, keep, skipped = open_image_files(
        image_paths, ids, transform=transform, workers=config.workers, on_bad_image=config.on_bad_image,
        where=[f"{path.name} line {line}, column {config.path_column}" for line in lines], progress=progress)
    return build_eval_data(ids=ids[keep], labels=labels[keep], split=split[keep],
                           groups={name: column[keep] for name, column in groups.items()}, attribute_names=names,
                           task=config.task, inputs=inputs, source=str(path), skipped=skipped)


def _check_unread_columns(header: list[str], needed: list[str], extra: tuple[str, ...], path: Path) -> None:
    """A header column the recipe neither reads nor lists in ``data.extra_columns`` is an error."""
    unknown = [name for name in header if name not in needed and name not in extra]
    if unknown:
        hints = [f"`{n}`" + (f" (did you mean `{g}`?)" if (g := suggest_column(n, needed, groups=False)) else "")
                 for n in unknown]
        raise InputError(f"{path}: the CSV has column(s) {', '.join(hints)} that the recipe does not read "
                         f"(it reads {needed}). An unread column may be a group or label column left out "
                         "by mistake, so it is refused: add it to `data.group_columns` or "
                         "`data.label_columns`, or keep it unread with `data.extra_columns: [...]` "
                         "(docs/data.md, 'Extra columns').")


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line number, row)]) of a CSV with a header line; blank lines skipped."""
    require_regular_file(path, "CSV file", missing_hint="Check `data.path` (relative paths start at the "
                         "recipe's folder).")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader if any((v or "").strip() for v in row.values())]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{path}: cannot read the CSV ({err}). Save it as UTF-8 text with a header "
                         "line.") from err
    if not header or not rows:
        raise InputError(f"{path}: the CSV has {'no header line' if not header else 'no data rows'}. "
                         "Write a header line (e.g. `path,split,label`) and one row per image.")
    return header, rows


def _split_value(value: str, path: Path, line: int, column: str) -> str:
    value = value.strip()
    if value not in SPLITS:
        raise InputError(f"{path}: line {line}, column {column}: split {value!r} is not one of "
                         f"{list(SPLITS)}. Rename it (e.g. valid/val -> calib).")
    return value


def _binary_column(values: list[str], path: Path, lines: list[int], column: str) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.uint8)
    for i, raw in enumerate(values):
        value = raw.strip().lower()
        if value in _TRUE:
            out[i] = 1
        elif value not in _FALSE:
            raise InputError(f"{path}: line {lines[i]}, column {column}: {raw!r} is not 0 or 1. Write "
                             "1 (yes) or 0 (no) in every cell of this column.")
    return out


def _class_labels(values: list[str], classes: tuple[str, ...] | None, path: Path, lines: list[int],
                  column: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N,) class indices and the class names, in ``classes`` order or sorted."""
    values = [v.strip() for v in values]
    empty = next((i for i, v in enumerate(values) if not v), None)
    if empty is not None:
        raise InputError(f"{path}: line {lines[empty]}, column {column}: the label is empty. Give "
                         "every row a class name.")
    if classes is None:
        distinct = set(values)
        numeric = all(re.fullmatch(r"-?\d+", v) for v in distinct)
        classes = tuple(sorted(distinct, key=int if numeric else str))
        if len(classes) < 2:
            raise InputError(f"{path}: column {column} holds a single class {classes}; multi-class "
                             "data needs at least 2. Check the column, or list the classes in "
                             "`data.classes`.")
    index = {name: i for i, name in enumerate(classes)}
    bad = next((i for i, v in enumerate(values) if v not in index), None)
    if bad is not None:
        raise InputError(f"{path}: line {lines[bad]}, column {column}: label {str(values[bad])!r} is not one "
                         f"of the classes {list(classes)} (`data.classes`). Fix the label or add the "
                         "class to `data.classes`.")
    return np.array([index[v] for v in values], dtype=np.int64), tuple(classes)


def _check_unique_ids(ids: np.ndarray, path: Path, lines: list[int], column: str) -> None:
    empty = np.flatnonzero(ids == "")
    if empty.size:
        raise InputError(f"{path}: line {lines[empty[0]]}, column {column} is empty; every row needs "
                         "an id (the image path, or the `data.id_column` value). Fill in the cell.")
    uniq, counts = np.unique(ids, return_counts=True)
    if uniq.size != ids.size:
        dup = uniq[counts > 1][0]
        where = [lines[i] for i in np.flatnonzero(ids == dup)]
        raise InputError(f"{path}: column {column} must identify each row, but {str(dup)!r} appears on lines "
                         f"{where}. Remove the repeated rows, or name a unique column in "
                         "`data.id_column`.")


def load_npz_data(config: NpzDataConfig, *, base_dir: Path = Path(".")) -> EvalData:
    """Read an ``.npz`` in the eval-data contract that also holds the model ``inputs``.

    Without an ``ids`` array, each row's id is ``sample_id(inputs[i])`` (SHA-256 of
    the preprocessed input tensor, dtype and shape included).

    Raises
    ------
    InputError
        Missing or unreadable file, no ``inputs``, identical inputs without ``ids``, or
        anything ``load_eval_data`` refuses (shapes, labels, splits, groups).
    """
    path = _resolve(config.path, base_dir)
    columns = read_eval_columns(path, extra_columns=config.extra_columns)
    inputs = columns.get("inputs")
    if inputs is None:
        raise InputError(f"{path}: no `inputs` array; training and prediction need the preprocessed "
                         "model inputs. Save them too: numpy.savez(path, inputs=x.astype('float32'), "
                         "labels=..., split=..., group__<name>=...).")
    if "ids" not in columns and inputs.ndim >= 1 and inputs.dtype.kind == "f":
        ids = np.array([sample_id(np.asarray(row, dtype=np.float32)) for row in inputs])
        uniq, counts = np.unique(ids, return_counts=True)
        if uniq.size != ids.size:
            rows = np.flatnonzero(ids == uniq[counts > 1][0]).tolist()
            raise InputError(f"{path}: there is no `ids` array, and the ids made from the inputs' "
                             f"SHA-256 repeat because rows {rows} hold identical inputs. Add an `ids` "
                             "array (N,) str with one unique id per sample, or drop the duplicates.")
        columns["ids"] = ids
    return _check_eval_columns(columns, str(path))
