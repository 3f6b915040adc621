"""A snapshot of a directory tree, to assert that a refused call touched nothing."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tree_state(root: Path) -> dict[str, tuple[int, bytes | None]]:
    """Everything under ``root``: type bits, and the content of regular files."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = os.lstat(path)
        state[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode),
                                              path.read_bytes() if stat.S_ISREG(st.st_mode) else None)
    return state
