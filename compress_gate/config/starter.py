"""``compress-gate init``: a commented starter recipe that validates and runs as written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from compress_gate._outdir import check_output_file, output_file
from compress_gate.errors import InputError

__all__ = ["starter_recipe", "write_starter_recipe"]


def starter_recipe(name: str) -> str:
    """The starter recipe text, its run directory named ``runs/<name>``."""
    template = resources.files("compress_gate.config").joinpath("starter_recipe.yaml").read_text("utf-8")
    return template.replace("{name}", name)


def write_starter_recipe(path: str | Path, *, force: bool = False) -> Path:
    """Write the starter recipe to ``path`` (atomically) and return it.

    Only a regular file is ever replaced (with ``force``): a directory, a symbolic
    link, a device such as ``/dev/null`` or a FIFO is refused even with ``force``
    (:mod:`compress_gate._outdir`). A failed write leaves an existing recipe as it was.

    Raises
    ------
    InputError
        ``path`` exists and ``force`` is false, is not a regular file, or its directory
        is not writable.
    """
    path = Path(path)
    check_output_file(path, what="recipe file", example="recipe.yaml")
    if path.exists() and not force:
        raise InputError(f"{path}: already exists; not overwriting it. Pass --force to replace it, or choose "
                         "another file name.")
    with output_file(path, what="recipe file", example="recipe.yaml", keep_on_failure=True) as tmp:
        tmp.write_text(starter_recipe(path.stem), encoding="utf-8")
    return path
