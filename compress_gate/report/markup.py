"""Tiny HTML builders: every piece of text goes through :func:`html.escape` exactly once."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Cell", "esc", "table", "section", "figure", "paragraph", "definition_list"]


@dataclass(frozen=True)
class Cell:
    """A table cell: plain ``text`` (escaped on output) and an optional CSS class."""

    text: str
    css: str = ""


def esc(text: object) -> str:
    """Escape ``text`` for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


def _cell(tag: str, value: object) -> str:
    if isinstance(value, Cell):
        cls = f' class="{esc(value.css)}"' if value.css else ""
        return f"<{tag}{cls}>{esc(value.text)}</{tag}>"
    return f"<{tag}>{esc(value)}</{tag}>"


def table(headers: Sequence[object], rows: Iterable[Sequence[object]], *, caption: str = "",
          css: str = "") -> str:
    """A ``<table>`` with one header row; every cell is escaped."""
    cls = f' class="{esc(css)}"' if css else ""
    head = "".join(_cell("th", h) for h in headers)
    body = "\n".join("<tr>" + "".join(_cell("td", v) for v in row) + "</tr>" for row in rows)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table{cls}>{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def section(anchor: str, title: str, *parts: str) -> str:
    """A ``<section>`` with an ``<h2>`` title; ``parts`` are already-built markup."""
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def figure(data_uri: str | None, alt: str, caption: str, *, missing: str) -> str:
    """An ``<img>`` with its caption, or a note saying why there is no figure."""
    if data_uri is None:
        return f'<p class="note">No figure: {esc(missing)}</p>'
    return (f'<figure><img src="{esc(data_uri)}" alt="{esc(alt)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def paragraph(text: str, *, css: str = "") -> str:
    """A ``<p>`` of escaped text."""
    cls = f' class="{esc(css)}"' if css else ""
    return f"<p{cls}>{esc(text)}</p>"


def definition_list(items: Iterable[tuple[object, object]]) -> str:
    """A ``<dl>`` of escaped (term, description) pairs."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"
