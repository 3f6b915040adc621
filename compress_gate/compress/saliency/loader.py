"""A shuffling training loader whose batches carry the identity groups FairGRAPE needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.errors import InputError

if TYPE_CHECKING:
    from compress_gate.data import EvalData

__all__ = ["group_training_loader"]


def group_training_loader(data: EvalData, *, batch_size: int, seed: int, split: str = "train") -> Any:
    """A ``DataLoader`` over ``split`` yielding ``(inputs, targets, groups)``, shuffled by ``seed``.

    ``inputs`` and ``targets`` are those of :func:`compress_gate.data.training_arrays`
    (targets: class indices for multi-class, float 0/1 rows for multi-label); ``groups``
    is (B, G) float32 0/1, one column per ``data.group_names`` entry, in that order.

    Raises
    ------
    InputError
        The data has no identity groups, no inputs, no rows in ``split``, or a bad batch size.
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from compress_gate.data import training_arrays

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"group_training_loader: batch_size = {batch_size!r} must be a positive integer.")
    if not data.group_names:
        raise InputError("group_training_loader: the data has no identity groups (no `group__<name>` "
                         "column); FairGRAPE needs at least one. Add group columns to the data.")
    inputs, targets = training_arrays(data, split=split)
    groups = np.ascontiguousarray(data.groups[data.mask(split)], dtype=np.float32)
    tensors = (torch.from_numpy(inputs), torch.from_numpy(targets), torch.from_numpy(groups))
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed), drop_last=False)
