"""YAML reading and pydantic validation that end in one readable message.

Every configuration file goes through :func:`read_yaml` and :func:`validate`, so a
malformed file, an unknown key or a wrong type always reads the same way:
``recipe.yaml: gate.limits[2].max_increase = -1 must be >= 0 ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from compress_gate.errors import InputError

__all__ = ["read_yaml", "validate", "format_location"]

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises
    ------
    InputError
        The file is missing, unreadable, not YAML, or its top level is not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file. Check the path, or run `compress-gate init {path}` "
                         "to write a starter recipe there.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise InputError(f"{path}: malformed YAML{where}: {problem}. Fix the syntax there "
                         "(indentation with spaces, `key: value` pairs).") from err
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the file ({err}).") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level must be a mapping of `key: value` pairs, "
                         f"got a {type(data).__name__}.")
    return data


def format_location(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a YAML key path: ``gate.limits[2].max_increase``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names valid at ``loc`` (the parent of an unknown key), when resolvable."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        current = _model_in(fields[part].annotation)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``list[Limit] | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def validate(model: type[ModelT], data: dict[str, Any], *, source: str | Path,
             prefix: tuple[Any, ...] = ()) -> ModelT:
    """Validate ``data`` against ``model``; raise one :class:`InputError` listing every problem.

    ``source`` names the file in the message; ``prefix`` is prepended to key paths
    (for a section validated on its own, e.g. ``("gate",)``).
    """
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = tuple(e["loc"])
            key = format_location(prefix + loc)
            if e["type"] == "extra_forbidden":
                allowed = _allowed_keys(model, loc[:-1])
                hint = f" Valid keys here: {', '.join(allowed)}." if allowed else ""
                problems.append(f"unknown key `{key}`.{hint}")
            elif e["type"] == "missing":
                problems.append(f"`{key}` is required but missing.")
            else:
                value = e.get("input")
                problems.append(f"`{key}` = {value!r}: {e['msg']}.")
        raise InputError(f"{source}: " + " ".join(problems)
                         + " Fix these keys (see README.md, 'Recipe reference').") from err
