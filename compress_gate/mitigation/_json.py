"""Reading the versioned JSON files the gate ships (thresholds.json, overrides.json)."""

from __future__ import annotations

import json
from pathlib import Path

from compress_gate._task import TASKS
from compress_gate.errors import InputError

SCHEMA_VERSION = 1


def read_versioned_json(path: str | Path, what: str) -> dict:
    """A JSON object with ``schema_version`` 1 and a known ``task``; InputError otherwise."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputError(f"{path}: no such {what} file. Check the path.") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not a readable {what} JSON file ({err}). Rewrite it with the "
                         "gate (compress-gate gate ... --out DIR).") from err
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{path}: expected a JSON object with \"schema_version\": {SCHEMA_VERSION}. "
                         "Rewrite it with this version of compress-gate.")
    if doc.get("task") not in TASKS:
        raise InputError(f"{path}: `task` = {doc.get('task')!r}; it must be 'multilabel' or 'multiclass'.")
    return doc


def read_names(doc: dict, path: str | Path) -> tuple[str, ...]:
    """The ``attribute_names`` list of ``doc``; InputError when it is not a list of strings."""
    names = doc.get("attribute_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InputError(f"{path}: `attribute_names` must be a non-empty list of strings.")
    return tuple(names)
