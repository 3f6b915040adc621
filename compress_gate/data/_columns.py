"""Which columns of an eval-data or predictions file are read, and the refusal of all others.

A column the tool does not know is an error, not ignored: a misspelled identity column
(``group_male``, ``Group__male``) would otherwise drop a group, and the BA limits it
would have failed, without a word. A column is kept unread only when the caller names
it in ``extra_columns`` (the recipe's ``data.extra_columns``; see docs/data.md).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Sequence

from compress_gate.errors import InputError

__all__ = ["GROUP_PREFIX", "EVAL_COLUMNS", "PREDICTION_COLUMNS", "INPUT_COLUMNS", "WHOLE_COLUMNS",
           "check_extra_columns", "select_columns", "suggest_column"]

GROUP_PREFIX = "group__"
EVAL_COLUMNS = ("ids", "inputs", "labels", "split", "attribute_names", "task", "image_paths", "image_transform")
PREDICTION_COLUMNS = ("ids", "scores")
INPUT_COLUMNS = ("ids", "inputs")
WHOLE_COLUMNS = ("attribute_names", "task", "image_transform")    # not one row per sample
_GROUP_LIKE = re.compile(r"^(?:groups?|grp)[^a-z0-9]*(?P<name>[a-z0-9].*)$", re.IGNORECASE)


def suggest_column(name: str, known: Collection[str], *, groups: bool) -> str | None:
    """The column ``name`` was probably meant to be, or ``None``.

    With ``groups``, a name that starts like an identity column but is not spelled
    ``group__<name>`` (``group_male``, ``Group__male``, ``groups-male``) suggests
    ``group__<name>``; otherwise a known column equal up to case, or a close spelling
    (difflib ratio >= 0.75), is suggested.
    """
    match = _GROUP_LIKE.match(name)
    if groups and match and not name.startswith(GROUP_PREFIX):
        return GROUP_PREFIX + match.group("name")
    lowered = {k.lower(): k for k in known}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else None


def check_extra_columns(extra_columns: Sequence[str], known: Collection[str], *, source: str,
                        key: str = "extra_columns", groups: bool = True) -> tuple[str, ...]:
    """The allow-list, checked: a column the tool reads (or an identity column) cannot be extra."""
    extra = tuple(extra_columns)
    for name in extra:
        if not isinstance(name, str) or not name:
            raise InputError(f"{source}: `{key}` holds {name!r}; list column names (non-empty strings).")
        if name in known or (groups and name.startswith(GROUP_PREFIX)):
            raise InputError(f"{source}: `{key}` lists `{name}`, a column the tool reads (an identity "
                             f"column `{GROUP_PREFIX}<name>` is always judged); only columns the tool "
                             "does not read can be kept as extra. Remove it from the list.")
    return extra


def select_columns(names: Sequence[str], *, known: Sequence[str], extra_columns: Collection[str], source: str,
                   what: str, groups: bool = False, ignore_others: bool = False) -> list[str]:
    """The columns to read, ``ids`` first; raise for a column neither known nor allowed.

    ``groups`` adds every ``group__<name>`` column to the known ones. With
    ``ignore_others`` (the inputs of ``predict``, which judge nothing) an unknown
    column is refused only when it looks like a misspelled known one.
    """
    wanted = [n for n in names if n in known or (groups and n.startswith(GROUP_PREFIX))]
    unknown = [n for n in names if n not in wanted and n not in extra_columns]
    problems = []
    for name in unknown:
        guess = suggest_column(name, known, groups=groups)
        if guess is not None:
            problems.append(f"`{name}` (did you mean `{guess}`?)")
        elif not ignore_others:
            problems.append(f"`{name}`")
    if problems:
        reads = ", ".join(f"`{k}`" for k in known) + (f", `{GROUP_PREFIX}<name>`" if groups else "")
        raise InputError(
            f"{source}: unknown column(s) {', '.join(problems)} in the {what}; the tool reads {reads}. An "
            "unread column may be a misspelled one whose absence changes the verdict (a dropped identity "
            "group is never judged), so it is refused. Rename it, or keep it unread by naming it as an "
            "extra column (the recipe's `data.extra_columns: [...]`; docs/data.md, 'Extra columns').")
    return sorted(wanted, key=lambda n: (n != "ids", n != "inputs", n))
