"""Where a recipe's model comes from: one registry of model sources, built-in architectures included.

A ``model:`` section names exactly one source:

=================  ==========================================================================
key                builds
=================  ==========================================================================
``arch``           a built-in architecture (:data:`BUILTIN_ARCHITECTURES`: ``resnet18``, ``resnet``,
                   ``mobilenet_v1``), sized for the data (channels, side, outputs)
``factory``        ``"package.module:function"`` or ``"path/to/file.py:function"`` (relative
                   to the recipe), called with ``kwargs``; it must return an ``nn.Module``
``torchvision``    ``torchvision.models.get_model(name, **kwargs)`` (the ``[torchvision]`` extra)
``timm``           ``timm.create_model(name, **kwargs)`` (the ``[timm]`` extra)
=================  ==========================================================================

Each built-in architecture is an :class:`Architecture` entry: its builder and the module
paths of its head (``fc``) and of its feature stages (``layer1`` ...), so the rest of the
pipeline treats a built-in network and a user's network the same way. A user module's
head and stages come from ``model.head`` and ``model.layers``.

Importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.config.model import ModelConfig

__all__ = ["Architecture", "BUILTIN_ARCHITECTURES", "MODEL_SOURCES", "model_source", "resolve_factory",
           "check_model_source", "instantiate_model", "source_digest"]


@dataclass(frozen=True)
class Architecture:
    """A built-in architecture: ``build(num_outputs, in_channels, input_size, width, depth)``,
    its head's module path and its feature stages' paths (``None``: the top-level ``layer<k>``)."""

    build: Callable[..., torch.nn.Module]
    head: str = "fc"
    layers: tuple[str, ...] | None = None


def _build_builtin(arch: str) -> Callable[..., torch.nn.Module]:
    def build(**sizes: Any) -> torch.nn.Module:
        from compress_gate.models.build import build_model

        return build_model(arch, **sizes)

    return build


#: The built-in architectures: name -> :class:`Architecture`.
BUILTIN_ARCHITECTURES: dict[str, Architecture] = {name: Architecture(_build_builtin(name))
                                          for name in ("resnet18", "resnet", "mobilenet_v1")}

#: The source keys of a ``model:`` section and the extra each needs (``None``: none).
MODEL_SOURCES: dict[str, str | None] = {"arch": None, "factory": None, "torchvision": "torchvision",
                                        "timm": "timm"}


def model_source(spec: ModelConfig) -> tuple[str, str]:
    """``(key, value)`` of the one source ``spec`` names, e.g. ``("factory", "net.py:build")``."""
    for key in MODEL_SOURCES:
        value = getattr(spec, key)
        if value is not None:
            return key, value
    raise InputError("the `model` section names no source; set one of " + ", ".join(MODEL_SOURCES) + ".")


def _split_factory(value: str) -> tuple[str, str]:
    target, sep, function = value.rpartition(":")
    if not sep or not target or not function.isidentifier():
        raise InputError(f"`model.factory` = {value!r} must be \"package.module:function\" or "
                         "\"path/to/file.py:function\", e.g. `factory: \"models/net.py:build\"`.")
    return target, function


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _import_file(path: Path) -> Any:
    """Import the Python file ``path`` as a module of its own (named after its resolved path's hash)."""
    name = "compress_gate_user_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"`model.factory`: {path} is not a Python file Python can import. Name a `.py` file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def resolve_factory(value: str, *, base_dir: Path) -> Callable[..., Any]:
    """The callable ``"package.module:function"`` or ``"path/to/file.py:function"`` names.

    A file path is resolved against ``base_dir`` (the recipe's directory) and imported on
    its own; a dotted name is imported from ``sys.path``.

    Raises
    ------
    InputError
        A malformed value, a missing file, an import that fails (the exception is named),
        no such attribute, or one that is not callable.
    """
    target, function = _split_factory(value)
    if _is_file_target(target):
        path = (base_dir / Path(target).expanduser()).resolve()
        if not path.is_file():
            raise InputError(f"`model.factory` = {value!r}: the file {path} does not exist (relative paths are "
                             f"resolved against the recipe's directory {base_dir}). Fix the path.")
        where, load = str(path), lambda: _import_file(path)
    else:
        where, load = target, lambda: importlib.import_module(target)
    try:
        module = load()
    except Exception as err:  # any error of the user's code at import time
        raise InputError(f"`model.factory` = {value!r}: importing {where} failed ({type(err).__name__}: {err}). "
                         "Fix that file (or install the package it needs), or name another factory.") from err
    factory = getattr(module, function, None)
    if not callable(factory):
        found = "has no attribute" if factory is None else f"has a non-callable {type(factory).__name__}"
        raise InputError(f"`model.factory` = {value!r}: {where} {found} `{function}`. Name a function that "
                         "returns a torch.nn.Module, e.g. `factory: \"net.py:build\"`.")
    return factory


def _import_extra(package: str) -> Any:
    try:
        return importlib.import_module(package)
    except Exception as err:  # ImportError, or a binary mismatch with the installed torch (RuntimeError)
        raise InputError(f"`model.{package}` needs the {package} package, which does not import here "
                         f"({type(err).__name__}: {err}). Install the extra (`pip install "
                         f"'compress-gate[{package}]'`, a build that matches the installed torch), or name the "
                         "network with `factory:` instead.") from err


def check_model_source(spec: ModelConfig) -> None:
    """Import what ``spec`` names without building it: the factory, or the torchvision/timm package.

    Run before any data is loaded, so a factory that does not import, or a missing extra, is
    exit 2 in seconds. Raises InputError as :func:`resolve_factory` and :func:`instantiate_model`.
    """
    key, value = model_source(spec)
    if key == "factory":
        resolve_factory(value, base_dir=Path.cwd())
    elif MODEL_SOURCES[key] is not None:
        _import_extra(key)


def instantiate_model(spec: ModelConfig, *, base_dir: Path, num_outputs: int, in_channels: int,
                      input_size: int) -> torch.nn.Module:
    """The module ``spec`` names, freshly built (no checkpoint loaded, head not yet checked).

    Built-in architectures are sized for the data; the other sources are called with
    ``spec.kwargs`` only (their output count is checked afterwards, see ``models.fit``).

    Raises
    ------
    InputError
        The source cannot be imported or built, or returns something that is not an ``nn.Module``.
    """
    from torch import nn

    key, value = model_source(spec)
    if key == "arch":
        return BUILTIN_ARCHITECTURES[value].build(num_outputs=num_outputs, in_channels=in_channels,
                                          input_size=input_size, width=spec.width, depth=spec.depth)
    if key == "factory":
        build = resolve_factory(value, base_dir=base_dir)
    elif key == "torchvision":
        build = lambda **kw: _import_extra("torchvision").models.get_model(value, **kw)  # noqa: E731
    else:
        build = lambda **kw: _import_extra("timm").create_model(value, **kw)  # noqa: E731
    try:
        module = build(**spec.kwargs)
    except InputError:
        raise
    except Exception as err:  # the user's constructor
        raise InputError(f"`model.{key}` = {value!r} raised {type(err).__name__} when called with "
                         f"`model.kwargs` = {dict(spec.kwargs)}: {err}. Fix `model.kwargs` or the factory.") from err
    if not isinstance(module, nn.Module):
        raise InputError(f"`model.{key}` = {value!r} returned a {type(module).__name__}, not a torch.nn.Module. "
                         "Return the network itself (e.g. `return Net(**kwargs)`).")
    return module


def source_digest(spec: ModelConfig, *, base_dir: Path) -> str:
    """SHA-256 identifying the model's source: the source key and value, its kwargs, and for a file
    factory the file's bytes (a package factory is identified by its name only)."""
    key, value = model_source(spec)
    digest = hashlib.sha256(f"{key}={value};kwargs={sorted(spec.kwargs.items())!r}".encode())
    if key == "factory":
        target, _ = _split_factory(value)
        path = (base_dir / Path(target).expanduser()).resolve()
        if _is_file_target(target) and path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
