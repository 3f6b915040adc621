"""Every file or directory a run recipe reads, for the check that no output overlaps one.

Found by walking the validated recipe, not by listing keys, so a path key added later is
covered without touching this module: every ``Path`` value (or tuple of them) is an input,
named by its key path (``data.path``, ``audit.dense_predictions``), except the keys that
name outputs. The teacher cache (``model.cache_dir``, by default ``<output>/../.cache``) is
read as well as written, so it counts as an input: a run directory that held it would
delete it. A file factory (``model.factory: "net.py:build"``, a string) is an input too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

__all__ = ["OUTPUT_KEYS", "recipe_inputs"]

#: Recipe keys that name outputs, never inputs.
OUTPUT_KEYS = frozenset({"output", "audit.output", "model.cache_dir"})


def _paths(value: Any, key: str) -> Iterator[tuple[str, Path]]:
    if isinstance(value, Path):
        yield key, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _paths(getattr(value, name), f"{key}.{name}" if key else name)
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _paths(item, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _paths(item, f"{key}.{name}")


def recipe_inputs(config: Any, recipe: str | Path | None) -> dict[str, list[Path]]:
    """The inputs of a validated ``RunConfig`` read from ``recipe``: ``{what: [paths]}``.

    ``what`` reads ``"recipe file"``, ``"teacher cache (model.cache_dir)"`` or
    ``"file named by the recipe's `data.path`"``; ``recipe`` None leaves the recipe file out.
    """
    found: dict[str, list[Path]] = {"recipe file": [] if recipe is None else [Path(recipe)],
                                    "teacher cache (model.cache_dir)": [Path(config.cache_dir)]}
    for key, path in _paths(config, ""):
        if key not in OUTPUT_KEYS:
            found.setdefault(f"file named by the recipe's `{key}`", []).append(path)
    factory = getattr(config.model, "factory", None) or ""
    target = factory.rpartition(":")[0]
    if target.endswith(".py"):                      # a file factory, "path/net.py:build" (a string, not a Path)
        found["file named by the recipe's `model.factory`"] = [Path(target)]
    return found
