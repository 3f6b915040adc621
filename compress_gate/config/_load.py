"""YAML reading and pydantic validation that end in one readable message.

Every YAML file the tool reads goes through :func:`read_yaml` (the recipe loader only
adds SparseML's ``!Tag`` constructors to :class:`StrictLoader`) and :func:`validate`,
so a malformed file, an unknown key or a wrong type always reads the same way:
``recipe.yaml: gate.limits[2].max_increase = -1 must be >= 0 ...``.

Strict reading: a key repeated in one mapping (at any depth) is an error naming the
key and both lines, never "the last copy wins"; an empty document (0 bytes, only
comments, or ``null``) is an error, never an empty configuration; only regular files
are read (a directory, FIFO or device is reported as such).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from compress_gate._paths import require_regular_file
from compress_gate.errors import InputError

__all__ = ["StrictLoader", "read_yaml", "validate", "format_location"]

ModelT = TypeVar("ModelT", bound=BaseModel)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_YAML_BYTES = 16 * 2**20   # a configuration file larger than this is refused unread


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping repeats a key; ``problem`` names it and the lines of both copies."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses a key written twice in one mapping, at any depth.

    Merge keys (``<<: *base``) may still be overridden by keys written beside them:
    only keys written out in the same mapping count as duplicates.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line
                try:
                    first = seen.get(key)
                except TypeError:   # an unhashable key: SafeLoader's own error follows
                    continue
                if first is not None:
                    raise DuplicateKeyError(None, None, f"the key `{key}` appears twice in one mapping "
                                            f"(line {first + 1} and line {line + 1})", key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 reads `1e-3` and `1.5e3` as numbers; PyYAML (YAML 1.1) needs a dot and a signed
# exponent and would hand the strings "1e-3" and "1.5e3" to a strict number field. Resolve
# floats with an exponent as YAML 1.2 does.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def read_yaml(path: str | Path, *, what: str = "configuration file", missing_hint: str = "Check the path.",
              empty_hint: str = "Write its settings as `key: value` lines.",
              loader: type[StrictLoader] = StrictLoader) -> dict[str, Any]:
    """Read the YAML mapping in ``path`` with ``loader`` (strict: see the module doc).

    Parameters
    ----------
    what : what the file is, for messages (``"limits file"``, ``"recipe"``)
    missing_hint : the fix when the file does not exist
    empty_hint : the fix when the document is empty (what to write)
    loader : :class:`StrictLoader` or a subclass with more constructors

    Raises
    ------
    InputError
        Missing file; a directory, FIFO or device; unreadable or larger than 16 MiB;
        not YAML; a duplicated key (named, with both lines); a YAML tag the loader
        does not know (e.g. a SparseML recipe given as a limits file); an empty
        document; a top level that is not a mapping.
    """
    path = require_regular_file(path, what, missing_hint=missing_hint)
    try:
        if path.stat().st_size > _MAX_YAML_BYTES:
            raise InputError(f"{path}: the {what} is {path.stat().st_size} bytes; a configuration file "
                             f"must be under {_MAX_YAML_BYTES // 2**20} MiB. Pass the right file.")
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=loader)  # noqa: S506 (StrictLoader is a SafeLoader)
    except DuplicateKeyError as err:
        raise InputError(f"{path}: {err.problem}. A repeated key would silently replace the first "
                         "copy; keep one of them.") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        if "could not determine a constructor for the tag" in problem:
            raise InputError(f"{path}: the {what} holds a YAML tag{where} ({problem.split('tag', 1)[1].strip()}). "
                             "Tags such as `!GMPruningModifier` belong to SparseML recipes, which go under "
                             f"`compression.recipe` of a run recipe, not in a {what}: check that you passed "
                             "the right file (a limits file is described in docs/gate.md).") from err
        raise InputError(f"{path}: malformed YAML{where}: {problem}. Fix the syntax there "
                         "(indentation with spaces, `key: value` pairs).") from err
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read the {what} ({err}).") from err
    if data is None:
        raise InputError(f"{path}: the {what} is empty (no settings: 0 bytes, only comments, or `null`); "
                         f"an empty file is refused rather than read as defaults. {empty_hint}")
    if not isinstance(data, dict):
        raise InputError(f"{path}: the top level of the {what} must be a mapping of `key: value` pairs, "
                         f"got a {type(data).__name__}. {empty_hint}")
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


_STRICT_TYPES = {"float_type": "a number", "int_type": "an integer", "bool_type": "true or false"}


def _strict_type_problem(key: str, error_type: str, value: Any) -> str:
    """The message for a value of the wrong YAML type; numbers and booleans are never coerced."""
    wanted = _STRICT_TYPES[error_type]
    whole = isinstance(value, float) and value.is_integer()
    got = ("a boolean" if isinstance(value, bool) else "a string" if isinstance(value, str)
           else "a float (YAML reads 1e3 and 1000.0 as floats)" if whole
           else "a number with a fraction" if isinstance(value, float) else type(value).__name__)
    fix = "Write `true` or `false`." if error_type == "bool_type" else (
        "Write it as a YAML number without quotes (e.g. 0.1 or 1e-3)." if isinstance(value, str)
        else f"Write it in digits, without an exponent or a decimal point: {int(value)}." if whole
        and error_type == "int_type"
        else "Write a whole number." if error_type == "int_type" and isinstance(value, float)
        else "Write the number itself.")
    return f"`{key}` = {value!r} is {got}, but it must be {wanted} (values are not converted). {fix}"


def validate(model: type[ModelT], data: dict[str, Any], *, source: str | Path,
             prefix: tuple[Any, ...] = (), docs: str = "docs/recipe.md") -> ModelT:
    """Validate ``data`` against ``model``; raise one :class:`InputError` listing every problem.

    ``source`` names the file in the message; ``prefix`` is prepended to key paths
    (for a section validated on its own, e.g. ``("gate",)``); ``docs`` is the page that
    documents these keys, cited in the message.
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
            elif e["type"] in _STRICT_TYPES:
                problems.append(_strict_type_problem(key, e["type"], e.get("input")))
            else:
                value = e.get("input")
                problems.append(f"`{key}` = {value!r}: {e['msg']}.")
        raise InputError(f"{source}: " + " ".join(problems)
                         + f" Fix these keys (each is documented in {docs}).") from err
