"""The sweep's command-line values: sparsities and N:M masks told apart, masks checked."""

from __future__ import annotations

from collections.abc import Sequence

from compress_gate.config.torch_backend import parse_nm
from compress_gate.errors import InputError

__all__ = ["nm_sparsity", "parse_masks", "split_values"]


def split_values(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """The command line's loose values (after ``--sparsity`` or ``--mask``) told apart by form.

    ``"2:4"`` (a colon) is a mask, anything else a sparsity: ``--sparsity 0.5 0.75 --mask 2:4 1:4``
    leaves ``["0.75", "1:4"]`` over, which gives (``["0.75"]``, ``["1:4"]``).
    """
    return [t for t in texts if ":" not in t], [t for t in texts if ":" in t]


def parse_masks(texts: Sequence[str]) -> list[str]:
    """The command line's N:M masks (``--mask 2:4 1:4 1:8``), each once, with 0 < N < M.

    Raises
    ------
    InputError
        A value that is not ``N:M`` with 0 < N < M, or one given twice.
    """
    for text in texts:
        nm = parse_nm(text)
        if nm is None or not 0 < nm[0] < nm[1]:
            raise InputError(f"--mask {text!r} is not an N:M mask: give N:M with 0 < N < M (keep N of every M "
                             "consecutive weights), e.g. `--mask 2:4 1:4 1:8`.")
    if len(set(texts)) != len(texts):
        raise InputError(f"--mask lists a mask more than once ({list(texts)}); list each mask once.")
    return list(texts)


def nm_sparsity(mask: str) -> float:
    """``1 - N/M``: the sparsity of an N:M mask (``"2:4"`` -> 0.5)."""
    n, m = parse_nm(mask) or (0, 1)
    return 1 - n / m
