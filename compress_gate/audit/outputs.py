"""The audit's files: ``audit.csv`` (every audited sample, ranked), ``audit.html`` (the top-k
as images with their labels, and the summary tables) and ``audit.json`` (the summary).

All three are written atomically; all text in the HTML is escaped.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from compress_gate._atomic import write_json, write_text
from compress_gate._json import json_safe
from compress_gate.audit.analysis import AuditFindings, label_text
from compress_gate._format import fmt
from compress_gate.report.markup import Cell, esc, paragraph, section, table

__all__ = ["write_audit_csv", "render_audit_html", "write_audit_json", "image_data_uri"]


def write_audit_csv(findings: AuditFindings, path: str | os.PathLike[str]) -> Path:
    """One row per audited sample in rank order (highest Taxicab score first).

    Columns: ``rank, id, score, modal_cie, label``, one ``group__<name>`` per identity
    category, ``dense_modal, compressed_modal``, then ``dense_<i>`` and
    ``compressed_<i>`` per model. Labels are class names (multi-class) or the
    ``;``-joined names of the positive attributes (multi-label, empty for none).
    """
    f = findings
    names = f.attribute_names
    header = (["rank", "id", "score", "modal_cie", "label"] + [f"group__{g}" for g in f.group_names]
              + ["dense_modal", "compressed_modal"] + [f"dense_{i}" for i in range(len(f.dense_pred))]
              + [f"compressed_{i}" for i in range(len(f.compressed_pred))])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for rank, row in enumerate(f.rank_order, start=1):
        writer.writerow([rank, f.ids[row], f"{f.score[row]:.6g}", int(f.is_cie[row]),
                         label_text(f.y_true[row], names, f.task)]
                        + [int(v) for v in f.groups[row]]
                        + [label_text(f.dense_modal[row], names, f.task),
                           label_text(f.compressed_modal[row], names, f.task)]
                        + [label_text(p[row], names, f.task) for p in f.dense_pred]
                        + [label_text(p[row], names, f.task) for p in f.compressed_pred])
    return write_text(path, buffer.getvalue())


def image_data_uri(image: np.ndarray) -> str:
    """A PNG data URI of one (C, H, W) input tensor, min-max scaled; C = 1 grey, C = 3 RGB."""
    from matplotlib.image import imsave

    array = np.asarray(image, dtype=np.float64)
    array = array[0] if array.shape[0] == 1 else np.moveaxis(array[:3], 0, -1)
    low, high = float(array.min()), float(array.max())
    array = (array - low) / (high - low) if high > low else np.zeros_like(array)
    buffer = io.BytesIO()
    imsave(buffer, array, format="png", cmap="gray", vmin=0.0, vmax=1.0)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#1f2328}
h2{border-bottom:1px solid #d0d7de;margin-top:2rem}table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left}th{background:#f6f8fa}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3rem 0}
td.undefined{color:#57606a;font-style:italic}.note{color:#57606a;font-style:italic}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.8rem}
.card{border:1px solid #d0d7de;border-radius:6px;padding:.4rem;font-size:.78rem}
.card.cie{border-color:#cf222e}.card img{width:100%;image-rendering:pixelated;background:#000}
.card dl{margin:.3rem 0 0;display:grid;grid-template-columns:max-content auto;gap:0 .4rem}
.card dt{font-weight:600}.card dd{margin:0;overflow-wrap:anywhere}"""


def _card(findings: AuditFindings, row: int, rank: int, inputs: np.ndarray | None) -> str:
    f = findings
    names, task = f.attribute_names, f.task
    groups = ", ".join(g for g, v in zip(f.group_names, f.groups[row]) if v) or "none"
    image = (f'<img src="{esc(image_data_uri(inputs[row]))}" alt="sample {esc(f.ids[row])}">'
             if inputs is not None else '<p class="note">no image in the data</p>')
    items = [("rank", rank), ("id", f.ids[row]), ("score", fmt(float(f.score[row]), digits=3)),
             ("modal CIE", "yes" if f.is_cie[row] else "no"), ("label", label_text(f.y_true[row], names, task)),
             ("dense", label_text(f.dense_modal[row], names, task)),
             ("compressed", label_text(f.compressed_modal[row], names, task)), ("groups", groups)]
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v if v != '' else '(none)')}</dd>" for k, v in items)
    return f'<div class="card{" cie" if f.is_cie[row] else ""}">{image}<dl>{body}</dl></div>'


def _accuracy_table(accuracy: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for population, values in accuracy.items():
        rows.append([population] + [Cell(fmt(values.get(k), reason=reason, percent=True),
                                         "" if np.isfinite(values.get(k, np.nan)) else "undefined")
                                    for k, reason in (("cie", "no CIEs"), ("non_cie", "every sample is a CIE"),
                                                      ("all", "no samples"))])
    return table(["population", "accuracy on CIEs", "accuracy on non-CIEs", "accuracy on all"], rows,
                 caption="How much harder CIEs are (Hooker et al., Table 2), mean over each population's models")


def _representation_table(rows: list[Mapping[str, Any]]) -> str:
    body = [[r["kind"], r["name"], fmt(r["n_all"]), fmt(r["n_cie"]), fmt(r["share_all"], percent=True),
             Cell(fmt(r["share_cie"], percent=True, reason="no CIEs"), ""),
             Cell(fmt(r["ratio"], digits=3, reason="no CIEs or empty group"),
                  "" if np.isfinite(r["ratio"]) else "undefined")] for r in rows]
    return table(["kind", "group or class", "samples", "CIEs", "share of samples", "share of CIEs",
                  "over-representation (share of CIEs / share of samples)"], body,
                 caption="Who the CIEs are (Hooker et al., Fig. 2): above 1, compression's changes concentrate there")


def render_audit_html(findings: AuditFindings, summary: Mapping[str, Any], path: str | os.PathLike[str], *,
                      inputs: np.ndarray | None, top_k: int) -> Path:
    """Write ``audit.html``: summary, the two tables, and the ``top_k`` exemplars as image cards."""
    f = findings
    top = f.rank_order[:top_k]
    cards = "".join(_card(f, int(row), rank, inputs) for rank, row in enumerate(top, start=1))
    meta = (f"{summary['n_samples']} samples audited ({', '.join(summary['splits'])}); "
            f"{summary['n_dense']} dense and {summary['n_compressed']} compressed models; "
            f"{summary['n_cie']} modal CIEs ({fmt(summary['cie_share'], percent=True)}); "
            f"runtime {summary['seconds']:.0f} s.")
    parts = [section("summary", "Summary", paragraph(meta), _accuracy_table(f.accuracy),
                     _representation_table(f.representation)),
             section("exemplars", f"Top {len(top)} exemplars by Taxicab score",
                     paragraph("Ranked by Σ_c |p_dense(c) − p_compressed(c)| over the populations' label "
                               "frequencies (ties broken at random, seeded). Red border: modal CIE. 'dense' and "
                               "'compressed' are the modal predictions of each population."),
                     f'<div class="grid">{cards}</div>')]
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n<title>compress-gate CIE audit</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>compress-gate CIE audit</h1>\n"
            + "\n".join(parts) + "\n</body>\n</html>\n")
    return write_text(path, page)


def write_audit_json(summary: Mapping[str, Any], findings: AuditFindings, path: str | os.PathLike[str]) -> Path:
    """Write the summary, accuracy table and representation rows as JSON (:func:`compress_gate._json.json_safe`)."""
    return write_json(path, json_safe({**summary, "accuracy": findings.accuracy,
                                       "representation": findings.representation}))
