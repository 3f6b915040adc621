"""The per-layer representation-similarity table of ``report.html`` (from the run's ``similarity.json``).

Not part of report.json: the run's similarity step (:mod:`compress_gate.pipeline.similarity`)
writes ``similarity.json`` and inserts this section into the run's page. An undefined
value (``null``: the layer's output is constant over the rows) reads ``undefined``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compress_gate.report.markup import Cell, paragraph, section, table

__all__ = ["similarity_section"]


def _value(value: Any) -> Cell | str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else Cell("undefined", "undefined")


def similarity_section(similarity: Mapping[str, Any]) -> str:
    """A ``<section id="similarity">``: one row per layer (linear CKA, SVCCA) and the mean over layers."""
    layers = similarity.get("layers") or {}
    mean = similarity.get("mean") or {}
    rows = [[name, _value(row.get("cka")), _value(row.get("svcca"))] for name, row in layers.items()]
    rows.append([Cell("mean over layers"), _value(mean.get("cka")), _value(mean.get("svcca"))])
    note = (f"Teacher vs student activations on {similarity.get('n_rows')} fixed {similarity.get('split')} rows "
            f"(seed {similarity.get('seed')}); each stage's output averaged over space to per-channel means (the "
            "last stage's are the penultimate features, the classifier's input). "
            f"SVCCA keeps {similarity.get('keep', 0.99):.0%} of each representation's variance. 1 = the same "
            "representation up to rotation and scale; lower = the student represents the inputs differently.")
    return section("similarity", "Representation similarity (teacher vs student)", paragraph(note, css="note"),
                   table(["layer", "linear CKA", "SVCCA"], rows))
