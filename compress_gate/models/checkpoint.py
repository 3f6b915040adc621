"""Epoch checkpoints: what a training loop needs to continue bit for bit after an interruption.

A loop (:func:`compress_gate.models.train_model` for the teacher,
:func:`compress_gate.compress.torch_backend.finetune.fine_tune` for the torch backend's
student) given an :class:`EpochCheckpoint` saves, after every finished epoch and after its
last step, one file holding the steps done, the model, the optimizer, the loop's own
state (masks, pruning schedule, distillation heads, QAT) and every random state the next
step reads (:func:`random_states`). Given the same file back, the loop restores all of it
and continues at the next epoch: the weights it ends with are those of a run that was
never interrupted (same machine, same thread count, deterministic kernels).

The file is ``{"key": ..., "state": ...}``, written atomically (temporary file, then
``os.replace``), so an interrupt while saving leaves the previous epoch's file whole. The
key says which recipe and data it was made for; a file with another key is refused
(:func:`compress_gate._keyed_state.keyed_state`). Everything in it is a tensor or a plain
Python value, so it loads with ``torch.load(weights_only=True)``.

Random states: Python's :mod:`random`, NumPy's global generator, torch's CPU generator
(and every CUDA device's, when CUDA is initialised), and the ``torch.Generator`` objects of
the loader (:func:`loader_generators`: the DataLoader's shuffling generator, its sampler's
and those of its ``collate_fn`` and dataset, e.g. the augmentation draws of
:class:`compress_gate.models.augment.AugmentBatch`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate._keyed_state import keyed_state
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["EpochCheckpoint", "random_states", "restore_random_states", "loader_generators"]

#: Attributes followed from a loader to find its generators (a wrapper's ``loader``, a DataLoader's parts).
_LOADER_PARTS = ("loader", "sampler", "batch_sampler", "collate_fn", "augment", "dataset", "transform")


class EpochCheckpoint:
    """One training loop's checkpoint file at ``path``, valid for ``key``: ``{"key": key, "state_dict": state}``,
    written atomically, loaded with ``weights_only=True``."""

    def __init__(self, path: str | Path, key: str) -> None:
        self.path, self.key = Path(path), key

    def load(self) -> dict[str, Any] | None:
        """The saved state, or ``None`` when there is no file (the loop starts from step 0).

        Raises
        ------
        InputError
            The file cannot be read, or it was made for another key (the message names the file
            and says to delete it).
        """
        import torch

        if not self.path.is_file():
            return None
        try:
            stored = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises many types on a damaged file
            first_line = (str(err).splitlines() or [""])[0][:200]
            raise InputError(f"{self.path}: the epoch checkpoint cannot be read ({type(err).__name__}: {first_line}). "
                             "Delete it to train this stage from its first epoch.") from err
        return keyed_state(stored, self.key, self.path, "epoch checkpoint")

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` with the key, atomically (the previous file stays whole until the rename)."""
        import torch

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            torch.save({"key": self.key, "state_dict": state}, tmp)

    def remove(self) -> None:
        """Delete the file (a finished run keeps no checkpoint)."""
        self.path.unlink(missing_ok=True)


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The ``torch.Generator`` objects ``loader`` draws from, in a fixed order, each once.

    Found at the attribute ``generator`` of the loader and of the parts it reaches through
    ``loader``, ``sampler``, ``batch_sampler``, ``collate_fn``, ``augment``, ``dataset`` and ``transform``
    (depth-first, in that order). A loader whose random draws come from elsewhere cannot be
    resumed bit for bit; keep its generators on one of these attributes.
    """
    import torch

    found: list[torch.Generator] = []
    seen: set[int] = set()

    def visit(obj: Any, depth: int) -> None:
        if obj is None or id(obj) in seen or depth > 4:
            return
        seen.add(id(obj))
        generator = getattr(obj, "generator", None)
        if isinstance(generator, torch.Generator) and all(generator is not g for g in found):
            found.append(generator)
        for part in _LOADER_PARTS:
            visit(getattr(obj, part, None), depth + 1)

    visit(loader, 0)
    return found


def random_states(loader: Any) -> dict[str, Any]:
    """Every random state the next training step reads, as tensors and plain values: Python's, NumPy's and
    torch's global generators (CUDA's when initialised) and the loader's generators (:func:`loader_generators`)."""
    import torch

    name, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(position), int(has_gauss),
                  float(gauss)],
        "torch": torch.get_rng_state(),
        "loader": [g.get_state() for g in loader_generators(loader)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any], loader: Any) -> None:
    """Set the states :func:`random_states` saved; ``loader`` must have as many generators as then.

    Raises
    ------
    InputError
        The loader's generators differ in number from the saved ones (the loader changed).
    """
    import torch

    generators = loader_generators(loader)
    if len(generators) != len(states["loader"]):
        raise InputError(f"the epoch checkpoint holds {len(states['loader'])} loader random state(s) but the "
                         f"training loader has {len(generators)}: it was made by another version of the loader. "
                         "Delete the run directory's checkpoints/ to train this stage from its first epoch.")
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    for generator, state in zip(generators, states["loader"]):
        generator.set_state(state)
    if _start_persistent_workers(loader):
        for generator, state in zip(generators, states["loader"]):
            generator.set_state(state)
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _start_persistent_workers(loader: Any) -> bool:
    """Start the workers of a ``DataLoader`` with persistent workers (found as ``loader`` or its ``.loader``);
    whether there was one.

    Such a loader draws its workers' base seed from its generator once, when its first pass
    starts, and never again: a resumed loop's new loader would draw it at its first pass and
    shift every later shuffle. Starting the workers here draws it before the saved
    generator states are set again (by the caller), as in the uninterrupted run.
    """
    from torch.utils.data import DataLoader

    for candidate in (loader, getattr(loader, "loader", None)):
        if isinstance(candidate, DataLoader) and candidate.persistent_workers and candidate.num_workers > 0:
            iter(candidate)
            return True
    return False
