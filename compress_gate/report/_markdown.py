"""Markdown text for the model card and the job summary: escaping and pipe tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["md", "md_table"]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>&#])")


def md(text: object) -> str:
    """Escape ``text`` for a Markdown paragraph or table cell (one line).

    Whitespace runs (newlines included) become one space, and every character
    Markdown or an HTML-accepting renderer would read as markup is backslash-escaped,
    so a reason like ``P(A=1 | I=1) < 10`` stays inside its table cell.
    """
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _cell_text(value: object) -> str:
    return md(getattr(value, "text", value))


def md_table(headers: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured pipe table; cells are escaped (an object with ``.text`` gives its text)."""
    lines = ["| " + " | ".join(_cell_text(h) for h in headers) + " |",
             "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell_text(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
