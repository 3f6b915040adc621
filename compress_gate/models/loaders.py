"""Shuffled training batches of one split, from in-memory inputs or from streamed image files.

Every training loop (teacher training and fine-tuning, the compression backends, FairGRAPE's
group batches) takes its batches from :func:`rows_loader`:

- in-memory inputs (demo, synthetic, npz): a ``DataLoader`` over a ``TensorDataset`` in this
  process, as before streaming existed;
- :class:`~compress_gate.data.ImageFiles` (csv, celeba): a ``DataLoader`` whose ``workers``
  worker processes decode the images of each batch (the deterministic transform), so only
  the batches in flight are in memory, never the split.

Both shuffle with a ``torch.Generator`` seeded by ``seed``, so the row order does not depend
on the number of workers. Augmentation (:class:`~compress_gate.models.augment.AugmentBatch`)
is applied to each assembled batch in this process, its draws seeded by ``seed``: the same
augmented batches whatever the worker count. A bad image met while decoding is an
:class:`InputError` naming the file, raised here (not a worker's traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.data import EvalData, training_arrays
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.config.run import AugmentConfig
    from compress_gate.data import ImageFiles

__all__ = ["rows_loader", "StreamedBatches"]


def rows_loader(data: EvalData, *, batch_size: int, seed: int, split: str = "train",
                augment: AugmentConfig | None = None, extra: np.ndarray | None = None) -> Any:
    """Shuffled ``(inputs, targets)`` batches of ``split`` (``(inputs, targets, extra)`` with ``extra``,
    one row per row of the split). Targets: class indices (multi-class) or float 0/1 rows
    (multi-label), as :func:`compress_gate.data.training_arrays` gives them.

    Raises
    ------
    InputError
        No inputs, no rows in ``split`` (from ``training_arrays``).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from compress_gate.data import ImageFiles

    inputs, targets = training_arrays(data, split=split)
    columns = (targets,) if extra is None else (targets, np.ascontiguousarray(extra))
    generator = torch.Generator().manual_seed(seed)
    augmenter = None
    if augment is not None and (augment.hflip or augment.crop_scale is not None):
        from compress_gate.models.augment import AugmentBatch

        augmenter = AugmentBatch(hflip=augment.hflip, crop_scale=augment.crop_scale, seed=seed)
    if not isinstance(inputs, ImageFiles):
        tensors = (torch.from_numpy(inputs), *(torch.from_numpy(column) for column in columns))
        return DataLoader(TensorDataset(*tensors), batch_size=batch_size, shuffle=True, generator=generator,
                          drop_last=False, collate_fn=augmenter)
    # workers start afresh each epoch (not persistent): each epoch's iterator then draws its base seed from
    # ``generator`` as the in-memory loader's does, so every epoch's order is the in-memory order
    loader = DataLoader(_ImageRows(inputs, columns), batch_size=batch_size, shuffle=True, generator=generator,
                        drop_last=False, num_workers=inputs.workers)
    return StreamedBatches(loader, augmenter)


class _ImageRows:
    """A map-style dataset: row i -> (decoded image, its columns..., the refusal's message or "")."""

    def __init__(self, files: ImageFiles, columns: tuple[np.ndarray, ...]) -> None:
        self.files, self.columns = files, columns

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, row: int) -> tuple[Any, ...]:
        import torch

        try:
            image, problem = torch.from_numpy(self.files.decode(row)), ""
        except InputError as err:   # raised in the main process by StreamedBatches, with its message only
            image, problem = torch.zeros(self.files.shape[1:]), str(err)
        return (image, *(torch.from_numpy(np.asarray(column[row])) for column in self.columns), problem)


class StreamedBatches:
    """A ``DataLoader`` over :class:`_ImageRows` seen as ``(inputs, targets[, extra])`` batches.

    ``len()`` is the loader's batch count. A batch holding a bad image raises its
    :class:`InputError`; ``augment`` (an ``AugmentBatch``) is applied to each batch's inputs.
    """

    def __init__(self, loader: Any, augment: Any = None) -> None:
        self.loader, self.augment = loader, augment

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for *items, problems in self.loader:
            problem = next((p for p in problems if p), None)
            if problem is not None:
                raise InputError(problem)
            inputs = items[0] if self.augment is None else self.augment.augment(items[0])
            yield (inputs, *items[1:])
