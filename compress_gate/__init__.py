"""compress-gate: ship compressed vision models without shipping new bias."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["GatedModel", "__version__"]

if TYPE_CHECKING:
    from compress_gate.bundle import GatedModel


def __getattr__(name: str) -> Any:
    """Import :class:`GatedModel` lazily, so ``import compress_gate`` stays light."""
    if name == "GatedModel":
        from compress_gate.bundle import GatedModel

        return GatedModel
    raise AttributeError(f"module 'compress_gate' has no attribute {name!r}")
