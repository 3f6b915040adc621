"""Tiny HTML builders: every piece of text goes through :func:`html.escape` exactly once."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Cell", "Footnotes", "Html", "esc", "table", "section", "figure", "paragraph", "definition_list",
           "details"]


@dataclass(frozen=True)
class Cell:
    """A table cell: plain ``text`` (escaped on output) and an optional CSS class.

    ``note`` is why the value is undefined: a table given :class:`Footnotes` shows the cell as
    a short mark linked to one footnote per distinct reason instead of the whole sentence.
    """

    text: str
    css: str = ""
    note: str | None = None


@dataclass(frozen=True)
class Html:
    """Markup already built from escaped pieces (e.g. :func:`details`); a table puts it in as is."""

    markup: str


class Footnotes:
    """The page's numbered notes: one per distinct reason, numbered in order of first use."""

    def __init__(self, prefix: str = "note") -> None:
        self._numbers: dict[str, int] = {}
        self._prefix = prefix

    def mark(self, reason: str) -> str:
        """``<sup>`` linking to the note for ``reason`` (added on first use)."""
        number = self._numbers.setdefault(reason, len(self._numbers) + 1)
        return f'<sup><a href="#{self._prefix}-{number}">{number}</a></sup>'

    def __len__(self) -> int:
        return len(self._numbers)

    def html(self) -> str:
        """An ``<ol>`` of every reason used, each once; empty text when none was."""
        if not self._numbers:
            return ""
        items = "".join(f'<li id="{self._prefix}-{n}">{esc(reason)}</li>' for reason, n in self._numbers.items())
        return f'<ol class="footnotes">{items}</ol>'


def esc(text: object) -> str:
    """Escape ``text`` for HTML text and attribute values (quotes included)."""
    return html.escape(str(text), quote=True)


#: What an undefined cell reads when its reason is a footnote.
UNDEFINED_MARK = "n/a"


def _cell(tag: str, value: object, notes: Footnotes | None = None) -> str:
    if isinstance(value, Html):
        return f"<{tag}>{value.markup}</{tag}>"
    if isinstance(value, Cell):
        cls = f' class="{esc(value.css)}"' if value.css else ""
        if value.note is not None and notes is not None:
            return f"<{tag}{cls}>{UNDEFINED_MARK}{notes.mark(value.note)}</{tag}>"
        return f"<{tag}{cls}>{esc(value.text)}</{tag}>"
    return f"<{tag}>{esc(value)}</{tag}>"


def table(headers: Sequence[object], rows: Iterable[Sequence[object]], *, caption: str = "",
          css: str = "", notes: Footnotes | None = None) -> str:
    """A ``<table>`` with one header row; every cell is escaped (an :class:`Html` cell is put in as is).

    With ``notes``, a cell with a ``note`` reads ``n/a`` and a footnote number instead of its text.
    """
    cls = f' class="{esc(css)}"' if css else ""
    head = "".join(_cell("th", h) for h in headers)
    body = "\n".join("<tr>" + "".join(_cell("td", v, notes) for v in row) + "</tr>" for row in rows)
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


def details(summary: str, *parts: str) -> Html:
    """A closed ``<details>`` block: ``summary`` (escaped) and already-built ``parts``."""
    return Html(f"<details><summary>{esc(summary)}</summary>{''.join(parts)}</details>")


def definition_list(items: Iterable[tuple[object, object]]) -> str:
    """A ``<dl>`` of escaped (term, description) pairs."""
    return "<dl>" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items) + "</dl>"
