"""64-bit hashes of sample id strings, and the SplitMix64 mixer they are built from.

Shared by the Poisson bootstrap (:mod:`compress_gate.metrics.poisson_bootstrap`, whose
docstring gives the formula) and the shard join (:mod:`compress_gate.data.shards`), so
both key a sample by the same hash. Pure NumPy, vectorised over samples.
"""

from __future__ import annotations

import numpy as np

from compress_gate.errors import InputError

__all__ = ["GAMMA", "M1", "M2", "MAX_ID_LENGTH", "mix", "hash_ids", "id_length_problem"]

GAMMA = np.uint64(0x9E3779B97F4A7C15)          # SplitMix64's increment
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
_H0 = np.uint64(0x6A09E667F3BCC908)            # the hash's starting state (SHA-512's first IV word)

#: The longest sample id, in characters. NumPy holds ids at the width of the longest one, so a
#: single long id costs every row that width (a 200,000-character id in a 2,200-row shard: 1.8 GB
#: of text, and the hash a pass per character). A SHA-256 hex digest is 64; a file path fits.
MAX_ID_LENGTH = 256


def id_length_problem(source: str, longest: int, example: str | None = None) -> str | None:
    """The message for ids longer than :data:`MAX_ID_LENGTH` characters, or ``None`` when they fit."""
    if longest <= MAX_ID_LENGTH:
        return None
    shown = "" if example is None else f" (it begins {example[:40]!r})"
    return (f"{source}: `ids` holds an id of {longest:,} characters{shown}; ids may have at most "
            f"{MAX_ID_LENGTH} characters (docs/data.md). Shorten the long ids, e.g. to the SHA-256 hex "
            "digest of their text (hashlib.sha256(id.encode()).hexdigest(), 64 characters), the same way "
            "in the data and the predictions.")


def mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 values (wrapping arithmetic; a bijection)."""
    x = (x ^ (x >> np.uint64(30))) * M1
    x = (x ^ (x >> np.uint64(27))) * M2
    return x ^ (x >> np.uint64(31))


def hash_ids(ids: np.ndarray) -> np.ndarray:
    r"""64-bit hash of each sample id string, vectorised over samples.

    Formula: the docstring of :mod:`compress_gate.metrics.poisson_bootstrap`.

    The hash depends on the id's code points only, not on the array's string width,
    so ``"ab"`` hashes the same in a ``<U2`` and a ``<U40`` array.

    Parameters
    ----------
    ids : array-like of shape (n_samples,), str (integers and bytes are read as their text)

    Returns
    -------
    ndarray of shape (n_samples,), uint64

    Raises
    ------
    InputError
        ``ids`` is not 1-D, holds an empty string, or an id longer than :data:`MAX_ID_LENGTH`
        (checked before any per-character work).
    """
    values = np.asarray(ids)
    if values.dtype.kind == "S":
        values = np.char.decode(values, "utf-8")
    values = values.astype(str)
    if values.ndim != 1:
        raise InputError(f"sample ids must be 1-D (n_samples,); got shape {values.shape}. Flatten them.")
    lengths = np.char.str_len(values).astype(np.uint64) if values.size else np.zeros(0, np.uint64)
    longest = int(lengths.max()) if values.size else 0
    problem = id_length_problem("sample ids", longest, str(values[np.argmax(lengths)]) if values.size else None)
    if problem is not None:
        raise InputError(problem)
    values = values.astype(f"<U{max(longest, 1)}")     # as wide as the longest id, no wider
    if (lengths == 0).any():
        raise InputError(f"sample ids hold an empty string at row {int(np.argmax(lengths == 0))}; every "
                         "sample needs a non-empty, stable id.")
    width = values.dtype.itemsize // 4
    codes = values.view(np.uint32).reshape(values.size, width).astype(np.uint64)
    state = np.full(values.size, _H0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):                 # a loop over character positions, not samples
            state = np.where(np.uint64(j) < lengths, mix(state ^ codes[:, j]), state)
        return mix(state ^ lengths)
