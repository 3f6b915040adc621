"""The per-layer representation-similarity section of ``report.html``, from the report's ``run.similarity``.

The run's similarity step (:mod:`compress_gate.pipeline.similarity`) measures it, and the run
puts it in the typed report (:class:`~compress_gate.report.schema.SimilaritySection`) before
anything is rendered; this renderer only reads it. An undefined value (``null``: the layer's
output is constant over the rows; a mean over no defined layer) is a cell with its reason,
which the page shows as ``n/a`` and one footnote per reason.
"""

from __future__ import annotations

from compress_gate.report.markup import Cell, Footnotes, paragraph, section, table
from compress_gate.report.schema import Number, SimilaritySection

__all__ = ["similarity_section"]


_CONSTANT = "the layer's output is constant over the rows"
_NO_LAYER = "no layer has a defined value"


def _value(value: Number, reason: str) -> Cell | str:
    """``value`` to 4 decimals; an undefined one (null, or not finite) as a cell with ``reason``."""
    if isinstance(value, (int, float)) and value == value:
        return f"{value:.4f}"
    return Cell("undefined", "undefined", note=reason)


def similarity_section(similarity: SimilaritySection, notes: Footnotes | None = None) -> str:
    """A ``<section id="similarity">``: one row per layer (linear CKA, SVCCA) and the mean over layers.

    With the page's ``notes``, an undefined value reads ``n/a`` with a footnote giving its reason;
    without, it reads ``undefined``.
    """
    rows = [[name, _value(row.cka, _CONSTANT), _value(row.svcca, _CONSTANT)] for name, row in similarity.layers.items()]
    rows.append([Cell("mean over layers"), _value(similarity.mean.cka, _NO_LAYER),
                 _value(similarity.mean.svcca, _NO_LAYER)])
    note = (f"Teacher vs student activations on {similarity.n_rows} fixed {similarity.split} rows "
            f"(seed {similarity.seed}); each stage's output averaged over space to per-channel means (the "
            "last stage's are the penultimate features, the classifier's input). "
            f"SVCCA keeps {similarity.keep:.0%} of each representation's variance. 1 = the same "
            "representation up to rotation and scale; lower = the student represents the inputs differently.")
    return section("similarity", "Representation similarity (teacher vs student)", paragraph(note, css="note"),
                   table(["layer", "linear CKA", "SVCCA"], rows, notes=notes))
