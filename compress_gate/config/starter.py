"""``compress-gate init``: a commented starter recipe that validates and runs as written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from compress_gate._atomic import write_text
from compress_gate.errors import InputError

__all__ = ["starter_recipe", "write_starter_recipe"]


def starter_recipe(name: str) -> str:
    """The starter recipe text, its run directory named ``runs/<name>``."""
    template = resources.files("compress_gate.config").joinpath("starter_recipe.yaml").read_text("utf-8")
    return template.replace("{name}", name)


def write_starter_recipe(path: str | Path, *, force: bool = False) -> Path:
    """Write the starter recipe to ``path`` (atomically) and return it.

    Raises
    ------
    InputError
        ``path`` exists and ``force`` is false, or it is a directory.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory. Give a file name, e.g. `compress-gate init {path}/recipe.yaml`.")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; not overwriting it. Pass --force to replace it, or choose "
                         "another file name.")
    return write_text(path, starter_recipe(path.stem))
