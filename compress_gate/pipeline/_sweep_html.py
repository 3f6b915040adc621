"""``sweep.html``: the sweep's numbers against sparsity, drawn from ``sweep.json``'s rows only.

Panels (x: requested sparsity; the chosen student, the most compressed that passes, is the
vertical green line): accuracy (student raw and mitigated, teacher dashed); uncertainty and
TCB (means over attributes, teacher dashed); worst BA increase (raw, calibrated where
reported, mitigated); CEV and SDE, each with its bootstrap interval; speed-up per engine
(teacher time / student time); then one panel per gate limit: the gated number with its
interval (error bars) and the limit (dotted). A table repeats every number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compress_gate._atomic import write_text
from compress_gate.report._markup import Cell, esc, figure, paragraph, section, table
from compress_gate.report.figures import figure_data_uri

__all__ = ["sweep_figure", "write_sweep_html"]

_STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 6px}"
          ".pass{color:#1a7f37;font-weight:bold}.fail{color:#b42318;font-weight:bold}img{max-width:100%}")


def _series(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(row["requested_sparsity"], row.get(key)) for row in rows]
    kept = [(x, y) for x, y in points if isinstance(y, (int, float))]
    return [x for x, _ in kept], [float(y) for _, y in kept]


def _errorbar(ax: Any, xs: Sequence[float], ys: Sequence[float], cis: Sequence[Any], **style: Any) -> None:
    """``ys`` with asymmetric error bars to each interval (``None``: no bar)."""
    low = [y - ci[0] if ci else 0.0 for y, ci in zip(ys, cis)]
    high = [ci[1] - y if ci else 0.0 for y, ci in zip(ys, cis)]
    ax.errorbar(xs, ys, yerr=[[max(v, 0.0) for v in low], [max(v, 0.0) for v in high]], marker="o",
                capsize=3, **style)


def _plain(ax: Any, rows: Sequence[Mapping[str, Any]], keys: Sequence[tuple[str, str, str]]) -> None:
    for key, label, style in keys:
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, style, marker="o" if style == "-" else None, label=label)


def _limit_panels(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for entry in row.get("limits", []):
            if entry.get("name") and entry["name"] not in names:
                names.append(entry["name"])
    return names


def sweep_figure(summary: Mapping[str, Any]) -> Any:
    """The matplotlib Figure of the module docstring (Agg, no pyplot)."""
    from matplotlib.figure import Figure

    rows, chosen = summary["students"], summary.get("chosen")
    limits = _limit_panels(rows)
    n_panels = 7 + len(limits)
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
        xs, ys = _series(rows, key)
        cis = [row.get(f"{key}_ci") for row in rows if isinstance(row.get(key), (int, float))]
        if xs:
            _errorbar(ax, xs, ys, cis, label=key.upper())
        ax.set_title(f"{key.upper()} (bootstrap interval)")
    engines = sorted({name for row in rows for name in row.get("speedup", {})})
    for engine in engines:
        points = [(row["requested_sparsity"], row["speedup"][engine]) for row in rows
                  if engine in row.get("speedup", {})]
        axes[6].plot([p[0] for p in points], [p[1] for p in points], "-", marker="o", label=engine)
    axes[6].axhline(1.0, color="grey", linestyle=":")
    axes[6].set_title("speed-up (teacher time / student time)")
    for ax, name in zip(axes[7:], limits):
        entries = [(row["requested_sparsity"], e) for row in rows for e in row.get("limits", [])
                   if e.get("name") == name and isinstance(e.get("observed"), (int, float))]
        if entries:
            _errorbar(ax, [x for x, _ in entries], [e["observed"] for _, e in entries],
                      [e.get("ci") for _, e in entries], label="gated number")
            value = next((e["limit"] for _, e in entries if isinstance(e.get("limit"), (int, float))), None)
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


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "—"


def _fmt_ci(value: Any, ci: Any, digits: int = 4) -> str:
    return _fmt(value, digits) + (f" [{_fmt(ci[0], digits)}, {_fmt(ci[1], digits)}]" if ci else "")


def _rows(summary: Mapping[str, Any]) -> list[list[Any]]:
    out = []
    for row in summary["students"]:
        mark = " (chosen)" if row["requested_sparsity"] == summary.get("chosen") else ""
        verdict = Cell(f"{row.get('verdict')}{mark}", "pass" if row.get("verdict") == "pass" else "fail")
        out.append([f"{row['requested_sparsity']:g}", _fmt(row.get("sparsity"), 3), verdict,
                     _fmt(row.get("accuracy")), _fmt(row.get("accuracy_mitigated")),
                     _fmt(row.get("uncertainty")), _fmt(row.get("tcb")), _fmt(row.get("ba_increase")),
                     _fmt(row.get("ba_increase_calibrated")), _fmt(row.get("ba_increase_mitigated")),
                     _fmt_ci(row.get("cev"), row.get("cev_ci"), 1), _fmt_ci(row.get("sde"), row.get("sde_ci"), 1),
                     " · ".join(f"{k} {v:.2f}x" for k, v in row.get("speedup", {}).items()) or "—",
                     "; ".join(f"{e['name']}: {e['outcome']} ({_fmt_ci(e.get('observed'), e.get('ci'))})"
                               for e in row.get("limits", []))])
    return out


def write_sweep_html(summary: Mapping[str, Any], path: Path) -> Path:
    """Render ``summary`` (the content of sweep.json) to a self-contained HTML page at ``path``."""
    chosen = summary.get("chosen")
    verdict = (f"The most compressed student that passes the gate: sparsity {chosen:g}." if chosen is not None
               else "No student passes the gate.")
    headers = ["sparsity", "achieved", "verdict", "accuracy", "mitigated", "uncertainty", "TCB",
               "worst BA +", "calibrated", "mitigated", "CEV [CI]", "SDE [CI]", "speed-up", "limits"]
    links = "".join(f'<li><a href="{esc(Path(row["bundle"]).relative_to(path.parent))}/report.html">'
                    f'sparsity {row["requested_sparsity"]:g}</a></li>' for row in summary["students"]
                    if Path(row["bundle"]).is_relative_to(path.parent))
    body = "\n".join([
        f"<h1>compress-gate sweep: {esc(Path(summary['recipe']).name)}</h1>",
        paragraph(verdict, css="pass" if chosen is not None else "fail"),
        section("curves", "Against sparsity", figure(figure_data_uri(sweep_figure(summary)), "sweep curves",
                                                      "Each point is one student; the green band marks the chosen "
                                                      "one; error bars are the gate's bootstrap intervals.",
                                                      missing="no student")),
        section("table", "Per student", table(headers, _rows(summary))),
        section("reports", "Student reports", f"<ul>{links}</ul>"),
    ])
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>compress-gate sweep</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
    return write_text(path, html)
