"""The sweep's command-line values: sparsities and N:M masks told apart and checked, and every N:M mask
checked against the model's weights before the first student trains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compress_gate.config.torch_backend import parse_nm
from compress_gate.errors import InputError

__all__ = ["nm_sparsity", "parse_masks", "split_values", "parse_sparsities", "check_sparsities", "check_masks_fit"]


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


def parse_sparsities(texts: Sequence[str]) -> list[float]:
    """The command line's sparsity values as floats (``--sparsity 0.5 0.8 0.9``).

    Raises
    ------
    InputError
        A value that is not a number.
    """
    values = []
    for text in texts:
        try:
            values.append(float(text))
        except ValueError:
            raise InputError(f"--sparsity {text!r} is not a number; give sparsities between 0 and 1, e.g. "
                             "`--sparsity 0.5 0.8 0.9`.") from None
    return values


def check_sparsities(sparsities: Sequence[float], source: Path, *, allow_none: bool = False) -> list[float]:
    """The sparsities, sorted; refused when none is given (unless masks are), one is outside (0, 1), or one
    is given twice."""
    values = [float(s) for s in sparsities]
    if not values and not allow_none:
        raise InputError(f"{source}: give at least one sparsity, e.g. `--sparsity 0.5 0.8 0.9` (or, for a "
                         "torch-backend recipe, N:M masks: `--mask 2:4 1:4`).")
    bad = [s for s in values if not (0.0 < s < 1.0)]
    if bad:
        raise InputError(f"--sparsity {bad[0]!r} is not a sparsity: each must lie strictly between 0 and 1 (the "
                         "share of pruned weights), e.g. `--sparsity 0.5 0.8 0.9`.")
    if len(set(values)) != len(values):
        raise InputError(f"--sparsity lists a value more than once ({values}); list each sparsity once.")
    return sorted(values)


def check_masks_fit(config: Any, masks: Sequence[str], source: Path) -> None:
    """Refuse, before any student trains, an N:M mask that some pruned weight cannot take.

    An N:M mask groups M consecutive input channels, so every weight that
    ``compression.pruning.params`` selects must have an input-channel count that is a
    multiple of M (:class:`compress_gate.compress.torch_backend.masks.MaskSet`). Checked on
    the recipe's network built for the data (one load of the data, no training). With
    ``compression.structured`` the channel counts are only known after channel pruning, so
    the student's own compression checks them.

    Raises
    ------
    InputError
        ``source``, the mask and the weights whose input channels are not a multiple of M.
    """
    if not masks or getattr(config.compression, "structured", None) is not None:
        return
    from compress_gate.compress.torch_backend.masks import MaskSet, match_params
    from compress_gate.data import load_dataset
    from compress_gate.pipeline.teacher import build_teacher_module

    model, _ = build_teacher_module(config, load_dataset(config.data, base_dir=source.parent))
    params = match_params(model, config.compression.pruning.params)
    for mask in masks:
        try:
            MaskSet(params, parse_nm(mask))
        except InputError as err:
            raise InputError(f"{source}: --mask {mask}: {err} No student was trained.") from err
