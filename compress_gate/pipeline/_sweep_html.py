"""``sweep.html``: the sweep's numbers against sparsity, drawn from ``sweep.json``'s rows only.

Panels (x: requested sparsity; the chosen student, the most compressed that passes, is the
vertical green line): accuracy (student raw and mitigated, teacher dashed); uncertainty and
TCB (means over attributes, teacher dashed); worst BA increase (raw, calibrated where
reported, mitigated); CEV and SDE, each with its bootstrap interval; speed-up per engine
(teacher time / student time); representation similarity to the teacher (mean CKA and
SVCCA over layers); then one panel per gate limit: the gated number with its interval
(error bars) and the limit (dotted). N:M students (``mask`` set) are drawn as separate
square markers at their sparsity 1 - N/M, beside the unstructured curve. A second figure
plots similarity (x) against CEV, SDE and the worst BA increase (y), one point per student,
with the Pearson and Spearman correlations and n from sweep.json's ``correlations``. A
table repeats every number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_text
from compress_gate.pipeline._sweep_seeds import spread_section
from compress_gate.report.markup import Cell, Html, esc, figure, paragraph, section, table
from compress_gate.report.figures import figure_data_uri

__all__ = ["similarity_figure", "sweep_figure", "write_sweep_html"]

_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px}"
          ".pass{color:#1a7f37;font-weight:bold}.fail{color:#b42318;font-weight:bold}img{max-width:100%}"
          ".not_enough_evidence{color:#9a6700;font-weight:bold}table.grid td{white-space:nowrap}"
          ".value{color:#57606a;font-size:0.9em}.note{color:#57606a;font-style:italic}")


def _families(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    """("", unstructured rows) and (" N:M", the N:M rows), each only when it has a row."""
    out = [("", [row for row in rows if not row.get("mask")]), (" N:M", [row for row in rows if row.get("mask")])]
    return [(suffix, members) for suffix, members in out if members]


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(row["requested_sparsity"], row.get(key)) for row in rows]
    kept = [(x, y) for x, y in points if isinstance(y, (int, float))]
    return [x for x, _ in kept], [float(y) for _, y in kept]


def _errorbar(ax: Any, xs: Sequence[float], ys: Sequence[float], cis: Sequence[Any], **style: Any) -> None:
    """``ys`` with asymmetric error bars to each interval (``None``: no bar)."""
    low = [y - ci[0] if ci else 0.0 for y, ci in zip(ys, cis)]
    high = [ci[1] - y if ci else 0.0 for y, ci in zip(ys, cis)]
    ax.errorbar(xs, ys, yerr=[[max(v, 0.0) for v in low], [max(v, 0.0) for v in high]],
                **{"marker": "o", "capsize": 3, **style})


def _plain(ax: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[tuple[str, str, str]]) -> None:
    """Each ``"-"`` series per family (unstructured: a line, N:M: squares); any other style (the teacher's
    dashed reference) once over all rows."""
    for suffix, members in _families(rows):
        for key, label, style in keys:
            xs, ys = _series(members, key)
            if xs and style == "-":
                ax.plot(xs, ys, "s" if suffix else "o-", label=label + suffix)
    for key, label, style in keys:
        points = sorted(zip(*_series(rows, key)))
        if points and style != "-":
            ax.plot([x for x, _ in points], [y for _, y in points], style, label=label)


def _limit_panels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for entry in row.get("limits", []):
            if entry.get("name") and entry["name"] not in names:
                names.append(entry["name"])
    return names


def sweep_figure(summary: Mapping[str, Any]) -> Any:
    """The sweep's figure (a matplotlib Figure on Agg, no pyplot), against requested sparsity: accuracy,
    uncertainty, TCB, worst BA increase (raw, calibrated, mitigated), CEV and SDE with intervals,
    speed-up per engine, similarity, then one panel per gate limit; N:M students as separate
    square markers and the chosen student as a vertical line."""
    from matplotlib.figure import Figure

    rows, chosen = summary["students"], summary.get("chosen")
    limits = _limit_panels(rows)
    n_panels = 8 + len(limits)
    ncols = 3
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n_panels)]
    _plain(axes[0], rows, [("accuracy", "student", "-"), ("accuracy_mitigated", "mitigated", "-"),
                           ("teacher_accuracy", "teacher", "--")])
    axes[0].set_title("accuracy (mean over attributes)")
    _plain(axes[1], rows, [("uncertainty", "student", "-"), ("teacher_uncertainty", "teacher", "--")])
    axes[1].set_title("uncertainty: share of scores in (0.1, 0.9)")
    _plain(axes[2], rows, [("tcb", "student", "-"), ("teacher_tcb", "teacher", "--")])
    axes[2].set_title("TCB (mean over attributes)")
    _plain(axes[3], rows, [("ba_increase", "raw", "-"), ("ba_increase_calibrated", "calibrated", "-"),
                           ("ba_increase_mitigated", "mitigated", "-")])
    axes[3].set_title("worst BA increase")
    for ax, key in ((axes[4], "cev"), (axes[5], "sde")):
        for suffix, members in _families(rows):
            xs, ys = _series(members, key)
            cis = [row.get(f"{key}_ci") for row in members if isinstance(row.get(key), (int, float))]
            if xs:
                _errorbar(ax, xs, ys, cis, label=key.upper() + suffix,
                          **({"linestyle": "none", "marker": "s"} if suffix else {}))
        ax.set_title(f"{key.upper()} (bootstrap interval)")
    engines = sorted({name for row in rows for name in row.get("speedup", {})})
    for suffix, members in _families(rows):
        for engine in engines:
            points = [(row["requested_sparsity"], row["speedup"][engine]) for row in members
                      if engine in row.get("speedup", {})]
            axes[6].plot([p[0] for p in points], [p[1] for p in points], "s" if suffix else "o-",
                         label=engine + suffix)
    axes[6].axhline(1.0, color="grey", linestyle=":")
    axes[6].set_title("speed-up (teacher time / student time)")
    _plain(axes[7], rows, [("cka", "CKA", "-"), ("svcca", "SVCCA", "-")])
    axes[7].set_title("similarity to the teacher (mean over layers)")
    for ax, name in zip(axes[8:], limits):
        value = None
        for suffix, members in _families(rows):
            entries = [(row["requested_sparsity"], e) for row in members for e in row.get("limits", [])
                       if e.get("name") == name and isinstance(e.get("observed"), (int, float))]
            if entries:
                _errorbar(ax, [x for x, _ in entries], [e["observed"] for _, e in entries],
                          [e.get("ci") for _, e in entries], label="gated number" + suffix,
                          **({"linestyle": "none", "marker": "s"} if suffix else {}))
                value = next((e["limit"] for _, e in entries if isinstance(e.get("limit"), (int, float))), value)
        if value is not None:
            ax.axhline(value, color="#b42318", linestyle=":", label="limit")
        ax.set_title(f"limit: {name}", fontsize=9)
    for ax in axes:
        if chosen is not None:
            ax.axvline(chosen, color="#1a7f37", alpha=0.5, linewidth=6)
        ax.set_xlabel("sparsity")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def similarity_figure(summary: Mapping[str, Any]) -> Any:
    """Similarity (x: CKA, SVCCA) against CEV, SDE and the worst BA increase (y), one panel per bias
    number, each titled with its correlations; None when no student has a similarity."""
    from matplotlib.figure import Figure

    rows, correlations = summary["students"], summary.get("correlations") or {}
    if not any(isinstance(row.get(x), (int, float)) for row in rows for x in ("cka", "svcca")):
        return None
    fig = Figure(figsize=(4.4 * 3, 3.6))
    for index, (key, title) in enumerate((("cev", "CEV"), ("sde", "SDE"), ("ba_increase", "worst BA increase"))):
        ax = fig.add_subplot(1, 3, index + 1)
        lines = []
        for x, marker in (("cka", "o"), ("svcca", "^")):
            points = [(row[x], row[key]) for row in rows
                      if isinstance(row.get(x), (int, float)) and isinstance(row.get(key), (int, float))]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker, linestyle="none", label=x.upper())
            lines.append(f"{x.upper()}: {_correlation_text(correlations.get(f'{x} vs {key}'), short=True)}")
        ax.set_title(f"{title}\n" + "\n".join(lines), fontsize=8)
        ax.set_xlabel("similarity to the teacher (mean over layers)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _correlation_text(found: Any, *, short: bool = False) -> str:
    if not isinstance(found, Mapping):
        return "not computed"
    if found.get("reason"):
        return f"undefined (n = {found.get('n')})" if short else f"undefined (n = {found.get('n')}: {found['reason']})"
    if short:
        return (f"r = {found['pearson']:.2f} (p {found['pearson_p']:.2g}), ρ = {found['spearman']:.2f} "
                f"(p {found['spearman_p']:.2g}), n = {found['n']}")
    return (f"Pearson r = {found['pearson']:.2f} (p = {found['pearson_p']:.2g}), "
            f"Spearman ρ = {found['spearman']:.2f} (p = {found['spearman_p']:.2g}), n = {found['n']}")


def _correlation_section(summary: Mapping[str, Any]) -> str:
    correlations = summary.get("correlations") or {}
    n = max((found.get("n", 0) for found in correlations.values() if isinstance(found, Mapping)), default=0)
    warning = (f"Each correlation is across the sweep's students: n = {n} points at most. With so few students "
               "a correlation means little (at n = 3, Pearson's |r| must exceed 0.997 for p < 0.05 and Spearman's ρ "
               "can only be ±1 or ±0.5), and the students share one teacher and one data set; read it as a "
               "description of this sweep, not as evidence that similarity predicts bias.")
    fig = similarity_figure(summary) if summary.get("students") else None
    uri = None if fig is None else figure_data_uri(fig)
    rows = [[pair, _correlation_text(found)] for pair, found in correlations.items()]
    return section("similarity", "Similarity against bias",
                   paragraph(warning, css="note"),
                   figure(uri, "similarity against bias", "One point per student; x: mean linear CKA or SVCCA "
                          "over layers (teacher vs student on the fixed calib rows).", missing="no student has a "
                          "similarity.json"),
                   table(["similarity vs bias", "correlation"], rows))


def _label(row: Mapping[str, Any]) -> str:
    """``0.5`` for an unstructured student, ``0.5 (2:4)`` for an N:M one."""
    return f"{row['requested_sparsity']!r}" + (f" ({row['mask']})" if row.get("mask") else "")


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def _fmt_ci(value: Any, ci: Any, digits: int = 4) -> str:
    return _fmt(value, digits) + (f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci else "")


def _rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    out = []
    chosen = summary.get("chosen_student")
    for row in summary["students"]:
        is_chosen = row.get("student") == chosen if chosen else row["requested_sparsity"] == summary.get("chosen")
        mark = " (chosen)" if is_chosen else ""
        verdict = Cell(f"{row.get('verdict')}{mark}", "pass" if row.get("verdict") == "pass" else "fail")
        out.append([_label(row), _fmt(row.get("sparsity"), 3), verdict,
                     _fmt(row.get("accuracy")), _fmt(row.get("accuracy_mitigated")),
                     _fmt(row.get("uncertainty")), _fmt(row.get("tcb")), _fmt(row.get("ba_increase")),
                     _fmt(row.get("ba_increase_calibrated")), _fmt(row.get("ba_increase_mitigated")),
                     _fmt_ci(row.get("cev"), row.get("cev_ci"), 1), _fmt_ci(row.get("sde"), row.get("sde_ci"), 1),
                     _fmt(row.get("cka")), _fmt(row.get("svcca")),
                     " · ".join(f"{k} {v:.2f}x" for k, v in row.get("speedup", {}).items()) or "—"])
    return out


#: A grid cell's text per limit outcome (its CSS class is the outcome).
_GRID_TEXT = {"pass": "pass", "fail": "FAIL", "not_enough_evidence": "undecided"}


def _limit_grid(summary: Mapping[str, Any]) -> str:
    """Students × limits: each cell the limit's outcome and observed value; the interval on hover."""
    students = summary["students"]
    names = list(dict.fromkeys(e["name"] for row in students for e in row.get("limits", [])))
    if not names:
        return paragraph("No limits were configured.", css="note")
    rows = []
    for row in students:
        found = {e["name"]: e for e in row.get("limits", [])}
        cells: list[Any] = [_label(row)]
        for name in names:
            entry = found.get(name)
            if entry is None:
                cells.append("—")
                continue
            outcome = entry.get("outcome")
            cells.append(Html(f'<span class="{esc(outcome)}" title="{esc(_fmt_ci(entry.get("observed"), entry.get("ci")))}">'
                              f'{esc(_GRID_TEXT.get(outcome, str(outcome)))}</span> '
                              f'<span class="value">{esc(_fmt(entry.get("observed")))}</span>'))
        rows.append(cells)
    return table(["sparsity", *names], rows, css="grid")


def write_sweep_html(summary: Mapping[str, Any], path: Path) -> Path:
    """Render ``summary`` (the content of sweep.json) to a self-contained HTML page at ``path``."""
    chosen = summary.get("chosen")
    row = next((r for r in summary["students"] if r.get("student") == summary.get("chosen_student")), None)
    label = _label(row) if row is not None else f"{chosen!r}" if chosen is not None else ""
    verdict = (f"The most compressed student that passes the gate: sparsity {label}." if chosen is not None
               else "No student passes the gate.")
    headers = ["sparsity", "achieved", "verdict", "accuracy", "mitigated", "uncertainty", "TCB",
               "worst BA +", "calibrated", "mitigated", "CEV [CI]", "SDE [CI]", "CKA", "SVCCA", "speed-up"]
    links = "".join(f'<li><a href="{esc(Path(row["bundle"]).relative_to(path.parent))}/report.html">'
                    f'sparsity {esc(_label(row))}</a></li>' for row in summary["students"]
                    if Path(row["bundle"]).is_relative_to(path.parent))
    body = "\n".join([
        f"<h1>compress-gate sweep: {esc(Path(summary['recipe']).name)}</h1>",
        paragraph(verdict, css="pass" if chosen is not None else "fail"),
        section("curves", "Against sparsity", figure(figure_data_uri(sweep_figure(summary)), "sweep curves",
                                                      "Each point is one student; the green band marks the chosen "
                                                      "one; error bars are the gate's bootstrap intervals.",
                                                      missing="no student")),
        section("limits", "Limits per student", _limit_grid(summary),
                paragraph("Each cell: the limit's outcome and the observed value (the interval on hover); "
                          "every student's report has the detail.", css="note")),
        section("table", "Per student", table(headers, _rows(summary))),
        _correlation_section(summary),
        spread_section(summary),
        section("reports", "Student reports", f"<ul>{links}</ul>"),
    ])
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>compress-gate sweep</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
    return write_text(path, html)
