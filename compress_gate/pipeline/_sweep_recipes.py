"""The sweep's student recipes: each student's run recipe, its directory name, and the YAML file written for it.

A student's recipe is the validated sweep recipe (absolute paths) with its own ``output``
(``<sweep>/<student_dir_name>``), the recipe's teacher cache, and the ``compression:`` section
the backend writes for the student's sparsity or N:M mask
(:meth:`~compress_gate.compress.backend.Compressor.student_compression`). It is written to
``<sweep>/recipes/<name>.yaml`` and validated there, so every student recipe is known good
before the first student runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from compress_gate._atomic import write_text
from compress_gate.compress.backend import Compressor, get_compressor
from compress_gate.config.run import RunConfig, load_run_config

__all__ = ["student_recipe", "student_dir_name", "write_student_recipe"]


class _BlockDumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (the inline SparseML recipe) as ``|`` blocks."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def student_recipe(config: RunConfig, sparsity: float, *, sweep_dir: Path, source: str | Path,
                   mask: str | None = None, compressor: Compressor | None = None) -> dict[str, Any]:
    """The run recipe (a YAML-ready mapping) of the student at ``sparsity`` (:mod:`compress_gate.pipeline.sweep`).

    ``config`` is the validated sweep recipe (absolute paths); ``None`` values are left out,
    so every key takes its default as in the original recipe. The ``compression:`` section is
    the backend's :meth:`~compress_gate.compress.backend.Compressor.student_compression` at
    ``sparsity`` (and ``mask``): SparseML's recipe inline with its ``final_sparsity`` set, the
    torch backend's ``pruning.final_sparsity`` (and ``mask``). ``compressor`` defaults to the
    recipe's backend (its packages need not be installed).
    """
    compressor = compressor or get_compressor(config.compression, config.export, installed=False)
    raw = config.model_dump(mode="json", exclude_none=True, by_alias=True)  # tracking.register
    raw["output"] = str(sweep_dir / student_dir_name(sparsity, mask))
    raw["model"]["cache_dir"] = str(config.cache_dir)
    raw["compression"] = compressor.student_compression(sparsity, mask=mask, source=source)
    return raw


def student_dir_name(sparsity: float, mask: str | None = None) -> str:
    """``sparsity-0.8`` (or ``mask-2of4`` for an N:M student): its run directory inside the sweep directory.

    The sparsity is written as Python's shortest round-trip text (``repr``), so two different
    sparsities never share a directory (``0.5`` and ``0.5000001`` are ``sparsity-0.5`` and
    ``sparsity-0.5000001``; six significant digits would have named both ``sparsity-0.5``).
    """
    return f"sparsity-{float(sparsity)!r}" if mask is None else "mask-" + mask.replace(":", "of")


def write_student_recipe(sweep_dir: Path, name: str, recipe: Mapping[str, Any]) -> Path:
    """Write ``<sweep>/recipes/<name>.yaml`` and validate it (InputError on a bad one)."""
    path = write_text(sweep_dir / "recipes" / f"{name}.yaml", yaml.dump(dict(recipe), Dumper=_BlockDumper,
                                                                          sort_keys=False))
    load_run_config(path)
    return path
