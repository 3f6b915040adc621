"""The recipe's ``audit:`` section: the CIE audit of ``compress-gate audit`` (Hooker et al. 2020).

Example (every key optional)::

    audit:
      population: 3        # dense and compressed models, seeds seed, seed+1, ...
      top_k: 24            # exemplars shown in audit.html, by Taxicab score
      splits: [test]       # the rows audited
      output: null         # default: <run output>/audit

``dense_predictions`` and ``compressed_predictions`` load populations predicted
elsewhere (``<model>.npz`` files, one per model, DESIGN.md's predictions contract)
instead of training them; give both or neither (``population`` is then the number of
files). Relative paths are resolved against the recipe's folder
(:func:`resolve_audit_paths`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AuditConfig", "resolve_audit_paths"]


class AuditConfig(BaseModel):
    """Population size, how many exemplars to show, and which rows to audit.

    Example: ``{population: 3, top_k: 24, splits: [test]}``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    population: int = Field(3, ge=1, le=100, strict=True)
    top_k: int = Field(24, ge=1, le=10_000, strict=True)
    splits: tuple[Literal["calib", "test"], ...] = Field(("test",), min_length=1)
    output: Path | None = None
    dense_predictions: tuple[Path, ...] | None = None
    compressed_predictions: tuple[Path, ...] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> AuditConfig:
        if (self.dense_predictions is None) != (self.compressed_predictions is None):
            raise ValueError("give both `dense_predictions` and `compressed_predictions` (lists of "
                             "<model>.npz files) to load populations, or neither to train them")
        for key in ("dense_predictions", "compressed_predictions"):
            files = getattr(self, key)
            if files is not None and len(files) == 0:
                raise ValueError(f"`{key}` is empty; list at least one <model>.npz file")
        if len(set(self.splits)) != len(self.splits):
            raise ValueError(f"`splits` = {list(self.splits)} lists a split twice; list each once")
        return self


def resolve_audit_paths(audit: AuditConfig, base: Path) -> AuditConfig:
    """``audit`` with ``output`` and the prediction files made absolute against ``base``."""
    def resolve(path: Path) -> Path:
        return (base / path.expanduser()).resolve()

    def resolve_all(paths: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        return None if paths is None else tuple(resolve(p) for p in paths)

    return audit.model_copy(update={
        "output": None if audit.output is None else resolve(audit.output),
        "dense_predictions": resolve_all(audit.dense_predictions),
        "compressed_predictions": resolve_all(audit.compressed_predictions)})
