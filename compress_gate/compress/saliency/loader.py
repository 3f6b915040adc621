"""A shuffling training loader whose batches carry the identity groups FairGRAPE needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.errors import InputError

if TYPE_CHECKING:
    from compress_gate.data import EvalData

__all__ = ["group_training_loader", "joint_groups"]


def joint_groups(groups: np.ndarray, group_names: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """One-hot joint sensitive groups (FairGRAPE's gender × race) from identity categories.

    Each row's joint group is its pattern of 0/1 values over the ``C`` identity columns;
    the result has one column per pattern that occurs (at most ``2^C``), ordered by the
    pattern read as a binary number with the first column as the highest bit, and is
    named ``"name=v,..."`` (e.g. ``"female=1,young=0"``). Every row is in exactly one
    joint group, so the groups partition the rows.

    Returns
    -------
    onehot : ndarray of shape (n_samples, n_joint), float32 0/1
    names : tuple of str, one per column of ``onehot``
    """
    bits = np.asarray(groups, dtype=bool)
    if bits.ndim != 2 or bits.shape[1] != len(group_names) or bits.shape[1] == 0:
        raise InputError(f"joint_groups: groups of shape {bits.shape} must be (n_samples, C) with C = "
                         f"{len(group_names)} >= 1 named identity columns.")
    code = bits.astype(np.int64) @ (1 << np.arange(bits.shape[1] - 1, -1, -1))
    present = np.unique(code)
    onehot = (code[:, None] == present[None, :]).astype(np.float32)
    names = tuple(",".join(f"{name}={int(value >> (len(group_names) - 1 - i) & 1)}"
                           for i, name in enumerate(group_names)) for value in present)
    return onehot, names


def group_training_loader(data: EvalData, *, batch_size: int, seed: int, split: str = "train",
                          joint: bool = True) -> Any:
    """A loader over ``split`` yielding ``(inputs, targets, groups)``, shuffled by ``seed``
    (:func:`compress_gate.models.loaders.rows_loader`: streamed image files are decoded by workers).

    ``inputs`` and ``targets`` are those of :func:`compress_gate.data.training_arrays`
    (targets: class indices for multi-class, float 0/1 rows for multi-label). ``groups``
    is (B, G) float32 0/1: with ``joint`` (default, as FairGRAPE's sensitive groups) the
    columns of :func:`joint_groups` over the split's rows (a single category ``marked``
    gives ``marked=0`` and ``marked=1``); without, the identity columns as stored, in
    ``data.group_names`` order (rows may then be in several groups or in none).

    Raises
    ------
    InputError
        The data has no identity groups, no inputs, no rows in ``split``, or a bad batch size.
    """
    from compress_gate.models.loaders import rows_loader

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"group_training_loader: batch_size = {batch_size!r} must be a positive integer.")
    if not data.group_names:
        raise InputError("group_training_loader: the data has no identity groups (no `group__<name>` "
                         "column); FairGRAPE needs at least one. Add group columns to the data.")
    groups = data.groups[data.mask(split)]
    matrix = joint_groups(groups, data.group_names)[0] if joint else np.asarray(groups, dtype=np.float32)
    return rows_loader(data, batch_size=batch_size, seed=seed, split=split, extra=matrix)
