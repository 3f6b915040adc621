"""The sweep's similarity columns: each student's similarity.json, and its correlation with bias."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compress_gate.pipeline._correlation import correlation, is_defined

__all__ = ["SIMILARITY_KEYS", "BIAS_KEYS", "student_similarity", "similarity_correlations"]

#: The pairs sweep.json's ``correlations`` relate: similarity (x) against bias (y).
SIMILARITY_KEYS = ("cka", "svcca")
BIAS_KEYS = ("cev", "sde", "ba_increase")


def _finite(value: Any) -> float | None:
    return float(value) if is_defined(value) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def student_similarity(run_dir: Path) -> dict[str, Any]:
    """A student's similarity to its teacher from ``run_dir/similarity.json``, read defensively.

    Returns ``cka`` and ``svcca`` (means over layers) and ``similarity_layers``
    (``{layer: {"cka", "svcca"}}``); ``None`` / ``{}`` when the file or a value is missing.
    """
    path = run_dir / "similarity.json"
    found = _mapping(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
    mean = _mapping(found.get("mean"))
    return {"cka": _finite(mean.get("cka")), "svcca": _finite(mean.get("svcca")),
            "similarity_layers": {str(name): {k: _finite(_mapping(row).get(k)) for k in SIMILARITY_KEYS}
                                  for name, row in _mapping(found.get("layers")).items()}}


def similarity_correlations(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{"<similarity> vs <bias>": correlation}`` across the students, for CKA and SVCCA against CEV, SDE
    and the worst BA increase (raw); see :func:`compress_gate.pipeline._correlation.correlation`."""
    return {f"{x} vs {y}": correlation([row.get(x) for row in rows], [row.get(y) for row in rows])
            for x in SIMILARITY_KEYS for y in BIAS_KEYS}
