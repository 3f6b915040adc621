"""The compression-backend registry: one entry per backend, naming its config model and its code.

A recipe's ``compression.backend`` picks an entry of :data:`BACKENDS`. Each :class:`Backend`
names, by import path, the backend's config model (what the config layer validates the
``compression:`` section with) and its compressor factory (what
:func:`compress_gate.compress.backend.get_compressor` builds), with the packages and the pip
extra it needs. Both are imported lazily, only when asked for: this module imports no backend
code, so the config layer never imports the compress layer, and ``compress_gate.config``
imports neither torch nor a backend package. :data:`COMPRESSION_BACKENDS` is the config side
of the same entries (``backend`` -> config model), so adding a backend is its own module(s)
plus one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Backend", "BACKENDS", "COMPRESSION_BACKENDS"]


@dataclass(frozen=True)
class Backend:
    """One registry entry: where the backend's config model and code live, and what it needs installed.

    ``config`` is the config model, or its import path ``"package.module:Class"``: a frozen
    pydantic model with ``backend: Literal[name]``, ``batch_size`` and ``resolved(base, source)``
    (its paths made absolute against the recipe's directory, checked). ``module``/``factory``
    name a callable ``factory(compression_config, export_config) -> Compressor``, imported only
    by :func:`~compress_gate.compress.backend.get_compressor`; ``requires`` are the top-level
    packages that must be importable; ``extra`` is the pip extra that installs them, ``python``
    the Python versions that extra installs on, and ``make_target`` the checkout's Makefile
    target that builds its environment (None: none, e.g. a backend registered from outside the
    package).
    """

    config: str | type
    module: str
    factory: str
    requires: tuple[str, ...]
    extra: str
    python: str
    make_target: str | None = None

    def config_model(self) -> Any:
        """The config model class (``config`` imported from its path on first use, when a path)."""
        if not isinstance(self.config, str):
            return self.config
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)


BACKENDS: dict[str, Backend] = {
    "sparseml": Backend("compress_gate.config.compression:SparseMLCompressionConfig",
                        "compress_gate.compress.sparseml_backend", "SparseMLCompressor",
                        ("torch", "sparseml"), "sparseml", "3.11", "install"),
    "torch": Backend("compress_gate.config.torch_backend:TorchCompressionConfig",
                     "compress_gate.compress.torch_backend.compressor", "make_torch_compressor",
                     ("torch", "torch_pruning"), "torch", "3.11", "install-torch"),
}


class _ConfigModels(Mapping[str, Any]):
    """``backend`` -> config model, read from :data:`BACKENDS` on every access (so an entry added
    there is here too)."""

    def __getitem__(self, name: str) -> Any:
        return BACKENDS[name].config_model()

    def __iter__(self) -> Iterator[str]:
        return iter(BACKENDS)

    def __len__(self) -> int:
        return len(BACKENDS)

    def __repr__(self) -> str:
        return f"COMPRESSION_BACKENDS({', '.join(BACKENDS)})"


#: ``backend`` value -> its config model: the config side of :data:`BACKENDS`, a read-only view.
COMPRESSION_BACKENDS: Mapping[str, Any] = _ConfigModels()
