"""The doctests of compress_gate run with the tests (pyproject.toml: ``--doctest-modules`` over
``tests`` and ``compress_gate``). A module that imports an extra's package at its top (torch,
SparseML, ...) is not collected in a world without that extra: each world's suite checks the
doctests it can import."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

#: Not test modules: Ray workers import it as their ``sitecustomize`` (tests/_ray_fixtures.py).
collect_ignore = ["tests/_hold_task"]

_EXTRAS = {"torch", "torchvision", "torch_pruning", "torchao", "sparseml", "deepsparse", "openvino", "timm"}


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    """Skip a compress_gate module whose top-level imports need an extra this world lacks."""
    package = Path(config.rootpath) / "compress_gate"
    if collection_path.suffix != ".py" or package not in collection_path.parents:
        return None
    needed = _top_level_imports(collection_path) & _EXTRAS
    return True if any(importlib.util.find_spec(name) is None for name in needed) else None
