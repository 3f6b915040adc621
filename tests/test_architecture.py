"""The layers of docs/architecture.md, checked on the import graph of compress_gate.

Every ``import`` and ``from ... import`` in the package (lazy ones inside functions and
``TYPE_CHECKING`` ones included) is an arrow from the importing module to the imported one.
A module may import its own layer and the layers below it, never one above; the few arrows
that cross upward are listed in :data:`ALLOWED_UPWARD`, each with its reason, and
:data:`FORBIDDEN` names the arrows between layers that the order alone would allow but the
design does not (the renderers never import the gate). A package never imports another
package's ``_private`` module or name; ``compress_gate._*`` modules are the package's shared
foundation, private to compress_gate as a whole.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "compress_gate"

#: Bottom to top. A module belongs to the first entry whose prefix it starts with (longest
#: prefixes are tried first, so ``report.schema`` is not ``report``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("compress_gate.errors", "compress_gate.execution", "compress_gate._")),
    ("metrics", ("compress_gate.metrics",)),
    ("config", ("compress_gate.config",)),
    ("data", ("compress_gate.data",)),
    ("models", ("compress_gate.models", "compress_gate.mitigation")),
    ("compress", ("compress_gate.compress",)),
    ("engines", ("compress_gate.engines",)),
    ("report.schema", ("compress_gate.report.schema",)),
    ("gate", ("compress_gate.gate",)),
    ("report", ("compress_gate.report",)),
    ("bundle", ("compress_gate.bundle",)),
    ("tracking", ("compress_gate.tracking",)),
    ("pipeline", ("compress_gate.pipeline",)),
    ("audit", ("compress_gate.audit",)),
    ("cli", ("compress_gate.cli",)),
    ("facade", ("compress_gate",)),        # the root: __version__ and the lazy GatedModel
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}

#: (importing layer, imported layer): upward arrows the design keeps, and why.
ALLOWED_UPWARD = {
    ("config", "engines"): "a recipe names engines by the registry's kinds (compress_gate.engines imports "
                           "no engine library)",
    ("compress", "engines"): "a backend maps each engine kind to the artefact the registry declares for it",
}
#: (importing layer, imported layer): arrows the order would allow but the design forbids.
FORBIDDEN = {
    ("report", "gate"): "renderers read the typed report (report.schema); they never import the gate that "
                        "builds it",
}


def layer_of(module: str) -> str:
    """The layer of a dotted module name: the :data:`LAYERS` entry with the longest prefix it starts with
    (``compress_gate.report.schema._run`` is ``report.schema``, ``compress_gate.report.html`` is ``report``);
    KeyError when none matches."""
    best = max(((prefix, name) for name, prefixes in LAYERS for prefix in prefixes
                if module == prefix or module.startswith(prefix + ("" if prefix.endswith("_") else "."))),
               key=lambda found: len(found[0]), default=None)
    if best is None:
        raise KeyError(f"{module} is in no layer of tests/test_architecture.py LAYERS (docs/architecture.md)")
    return best[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.lru_cache(maxsize=1)
def _arrows() -> tuple[tuple[str, str, str], ...]:
    return tuple(import_arrows())


def import_arrows() -> list[tuple[str, str, str]]:
    """(importing module, imported module, imported name or "") for every import of compress_gate."""
    arrows = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                arrows += [(module, alias.name, "") for alias in node.names if alias.name.startswith("compress_gate")]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base]).strip(".")
                if base.startswith("compress_gate"):
                    arrows += [(module, *_target(base, alias.name)) for alias in node.names]
    return arrows


def _target(base: str, name: str) -> tuple[str, str]:
    """(module, name) of ``from base import name``: ``from compress_gate import metrics`` imports
    the module ``compress_gate.metrics``."""
    path = PACKAGE.parent.joinpath(*base.split("."), name)
    return (f"{base}.{name}", "") if path.is_dir() or path.with_suffix(".py").is_file() else (base, name)


def layer_violations(arrows: list[tuple[str, str, str]]) -> list[str]:
    """One line per arrow that crosses the layers: a :data:`FORBIDDEN` pair, or an import of a higher layer
    that :data:`ALLOWED_UPWARD` does not list (``compress_gate.__version__`` is exempt)."""
    found = []
    for source, target, name in arrows:
        if target == "compress_gate" and name == "__version__":   # set before the root imports anything
            continue
        below, above = layer_of(source), layer_of(target)
        if (below, above) in FORBIDDEN:
            found.append(f"{source} -> {target}: {FORBIDDEN[below, above]}")
        elif RANK[above] > RANK[below] and (below, above) not in ALLOWED_UPWARD:
            found.append(f"{source} -> {target}: layer {below!r} may not import layer {above!r} above it")
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("_") else ""


def private_violations(arrows: list[tuple[str, str, str]]) -> list[str]:
    """Arrows into another sub-package's ``_private`` module or name: a target whose path below
    ``compress_gate.<package>`` has a part starting with ``_``, or a ``_name`` imported from it, when the
    importing module is in another sub-package (``compress_gate._*`` modules are shared by all)."""
    found = []
    for source, target, name in arrows:
        into = _package(target)
        if into and into != _package(source) and (
                any(part.startswith("_") for part in target.split(".")[2:]) or name.startswith("_")):
            found.append(f"{source} -> {target}{'.' + name if name else ''}: another package's private name; "
                         "export it without the underscore or move it to where it is used")
    return found


def test_every_module_has_a_layer():
    for source, target, _ in _arrows():
        layer_of(source), layer_of(target)


def test_no_module_imports_across_the_layers():
    assert layer_violations(list(_arrows())) == []


def test_no_package_imports_another_packages_private_names():
    assert private_violations(list(_arrows())) == []


@pytest.mark.parametrize("arrow", [
    ("compress_gate.report.html", "compress_gate.gate.evaluate", "GateResult"),   # a renderer importing the gate
    ("compress_gate.report.junit", "compress_gate.gate", "evaluate"),
    ("compress_gate.gate.evaluate", "compress_gate.report.html", "render_html"),  # the gate calling a renderer
    ("compress_gate.gate._report", "compress_gate.report", "write_junit"),
])
def test_the_gate_and_report_arrows_of_issue_21_would_fail(arrow):
    """The two arrows that made gate and report import each other (renderers -> gate.schema,
    gate.outputs -> renderers): added back, each is a violation."""
    assert layer_violations([arrow]) != []
    assert layer_violations([*_arrows(), arrow]) != []


def test_a_private_import_across_packages_would_fail():
    assert private_violations([("compress_gate.pipeline.sweep", "compress_gate.report._tables", "largest_increase")])
    assert private_violations([("compress_gate.gate.evaluate", "compress_gate.mitigation.overrides", "_budget_count")])
    assert not private_violations([("compress_gate.report.html", "compress_gate.report._tables", "ba_rows")])
    assert not private_violations([("compress_gate.report.html", "compress_gate._atomic", "write_text")])
