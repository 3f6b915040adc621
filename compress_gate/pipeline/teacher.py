"""The dense teacher: the recipe's network (:mod:`compress_gate.models.registry`) fitted to the data,
loaded from a checkpoint, trained (or fine-tuned from the checkpoint) per the recipe and cached.

A trained teacher is cached under ``<cache_dir>/teacher-<key>.pt`` (a ``state_dict``;
``cache_dir`` defaults to ``<output>/../.cache``, i.e. beside the run directory), where

.. math:: \\mathrm{key} = \\mathrm{sha256}(\\mathrm{json}(\\text{model source}, \\text{head},
          \\mathrm{sha256}(\\text{checkpoint}), \\text{augmentation}, \\text{training spec}, \\text{seed}, \\text{task},
          \\mathrm{sha256}(\\text{train ids} \\| \\text{labels} \\| \\text{inputs})))

(``inputs``: the input array's bytes, or for streamed image files their transform, paths and
file bytes, read one file at a time; the model source: the built-in architecture with its
width and depth, or the factory / torchvision / timm name with its kwargs and, for a file factory, the file's bytes), so a
rerun with the same data, network, checkpoint, training spec and seed loads it instead of
retraining, and any change to one of them trains a new one. The cache file stores its full
key beside the ``state_dict`` (:mod:`compress_gate._keyed_state`); a file whose key
is not this run's (copied or renamed from another recipe) or that cannot be read is exit 2
advising to delete it (the next run retrains). Cached and given checkpoints are
read with ``torch.load(..., weights_only=True)`` (no code runs from the file).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate._atomic import atomic_path
from compress_gate.config.run import AugmentConfig, RunConfig
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError
from compress_gate._keyed_state import with_key

if TYPE_CHECKING:
    import torch

    from compress_gate.models.device import Placement

__all__ = ["TeacherInfo", "teacher_cache_key", "obtain_teacher", "build_teacher_module", "training_loader"]

_CACHE_FORMAT = 3   # bump when the cached file's meaning changes (3: the file stores its key)


@dataclass(frozen=True)
class TeacherInfo:
    """Where the teacher came from: ``source`` is ``checkpoint``, ``cache`` or ``trained``."""

    source: str
    path: Path
    cache_key: str | None


def build_teacher_module(config: RunConfig, data: EvalData, *,
                         state: dict[str, Any] | None = None) -> tuple[torch.nn.Module, bool]:
    """The recipe's network fitted to ``data`` (:func:`compress_gate.models.fit.fit_to_data`).

    ``state`` (the checkpoint's state_dict) is loaded when given. The module gets the
    attributes the later stages read: ``input_shape`` (C, S, S), ``head_path`` (``model.head``,
    else a built-in architecture's ``fc``) and ``feature_layers`` (``model.layers``, else the
    top-level ``layer<k>`` modules). Returns the module and whether its head was replaced.

    Raises
    ------
    InputError
        The source cannot be built, the data's size or channels differ from ``input_size`` /
        ``mean``, the checkpoint or output shape does not fit, or no feature stage is known.
    """
    from compress_gate.models.fit import check_layers, fit_to_data
    from compress_gate.models.registry import BUILTIN_ARCHITECTURES, instantiate_model, model_source

    spec, shape = config.model, _input_shape(data)
    if spec.input_size is not None and shape[1] != spec.input_size:
        raise InputError(f"`model.input_size` = {spec.input_size} but the data's images are {shape[1]}x{shape[2]}. "
                         "Give the data at the model's size, or change `model.input_size`.")
    if spec.mean is not None and len(spec.mean) != shape[0]:
        raise InputError(f"`model.mean`/`model.std` give {len(spec.mean)} values but the images have {shape[0]} "
                         "channel(s). Give one value per channel.")
    key, value = model_source(spec)
    module = instantiate_model(spec, base_dir=Path.cwd(), num_outputs=data.n_attributes, in_channels=shape[0],
                               input_size=shape[1])
    replaced = fit_to_data(module, num_outputs=data.n_attributes, input_shape=shape, head=spec.head, state=state,
                           checkpoint=spec.checkpoint, source=f"`model.{key}` = {value!r}")
    builtin = BUILTIN_ARCHITECTURES.get(spec.arch or "")
    module.input_shape = shape
    module.head_path = spec.head or (builtin.head if builtin else None)
    module.feature_layers = check_layers(module, spec.layers or (builtin.layers if builtin else None))
    if not module.feature_layers:
        raise InputError(f"`model.{key}` = {value!r} has no top-level `layer<k>` modules, so the run does not know "
                         "its feature stages (compared by the similarity stage and feature distillation). List "
                         "them in `model.layers`, e.g. `layers: [features.0, features.3, features.6]`.")
    return module, replaced


def _input_shape(data: EvalData) -> tuple[int, ...]:
    if data.inputs is None or data.inputs.ndim != 4 or data.inputs.shape[2] != data.inputs.shape[3]:
        shape = None if data.inputs is None else data.inputs.shape
        raise InputError(f"the data has inputs of shape {shape}; a run needs square image tensors "
                         "(N, C, H, H). Use a data source that loads images (demo, celeba, csv, npz with "
                         "`inputs`).")
    return tuple(int(s) for s in data.inputs.shape[1:])


def training_loader(data: EvalData, *, batch_size: int, seed: int, augment: AugmentConfig | None = None) -> Any:
    """A shuffling loader over the train split, seeded by ``seed`` (:func:`compress_gate.models.loaders.rows_loader`:
    streamed image files are decoded by DataLoader workers).

    Targets are class indices (multi-class) or float 0/1 rows (multi-label). With ``augment``
    (the recipe's ``augment:``), each batch is augmented (:class:`compress_gate.models.augment.AugmentBatch`,
    its draws seeded by ``seed``).
    """
    from compress_gate.models.loaders import rows_loader

    return rows_loader(data, batch_size=batch_size, seed=seed, augment=augment)


def teacher_cache_key(config: RunConfig, data: EvalData) -> str:
    """The teacher cache key (hex SHA-256): the SHA-256 of the JSON of the model source, head,
    checkpoint's SHA-256, augmentation, training spec, seed, task and the SHA-256 of the training
    rows' ids, inputs and labels; any change to one of them gives another key (a new teacher)."""
    train = data.mask("train")
    digest = hashlib.sha256()
    for array in (np.asarray(data.ids[train], dtype=str), data.labels[train]):
        digest.update(np.ascontiguousarray(array).tobytes())
    if data.streams_images:
        data.inputs[train].update_digest(digest)  # type: ignore[union-attr]
    else:
        digest.update(np.ascontiguousarray(data.inputs[train]).tobytes())  # type: ignore[index]
    from compress_gate.models.registry import model_source, source_digest

    model = config.model
    checkpoint = hashlib.sha256(model.checkpoint.read_bytes()).hexdigest() if model.checkpoint else None
    spec = {"format": _CACHE_FORMAT, model_source(model)[0]: source_digest(model, base_dir=Path.cwd()),
            "augment": config.augment.model_dump(mode="json"),
            "width": model.width, "depth": model.depth, "head": model.head, "checkpoint": checkpoint,
            "train": model.train.model_dump() if model.train else None,
            "seed": config.seed, "task": data.task, "input_shape": list(_input_shape(data)),
            "outputs": data.n_attributes, "data": digest.hexdigest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def obtain_teacher(config: RunConfig, data: EvalData, *, save_to: Path,
                   progress: Callable[[int, int, float], None] | None = None,
                   checkpoint_in: Path | None = None,
                   placement: Placement | None = None) -> tuple[torch.nn.Module, TeacherInfo]:
    """Load or train the dense teacher, save its state_dict to ``save_to``, return it in eval mode.

    With ``checkpoint_in`` (the run directory), a teacher that trains saves an epoch checkpoint
    there and continues from one it finds (:mod:`compress_gate.pipeline._resume`, keyed by the
    cache key); it is removed once the teacher is cached. A teacher trains on ``placement``'s
    device (default the CPU) and is returned on the CPU.

    Raises
    ------
    InputError
        Unreadable checkpoint, or one whose keys do not fit the architecture; no train split.
    """
    import torch

    from compress_gate.models.fit import load_state, read_state_dict

    spec = config.model
    state = read_state_dict(spec.checkpoint, "model.checkpoint") if spec.checkpoint is not None else None
    model, replaced = build_teacher_module(config, data, state=state)
    if spec.train is None:
        if replaced:
            raise InputError(f"`model.head` = {spec.head!r} was replaced by a new layer for the data's "
                             f"{data.n_attributes} outputs, so it is untrained. Add `model.train` (e.g. "
                             "`train: {epochs: 3}`) to fine-tune the checkpoint with it.")
        info = TeacherInfo("checkpoint", spec.checkpoint, None)  # type: ignore[arg-type]
    else:
        key = teacher_cache_key(config, data)
        cached = config.cache_dir / f"teacher-{key[:24]}.pt"
        if cached.is_file():
            load_state(model, read_state_dict(cached, "cached teacher", key=key), path=cached,
                       what="cached teacher", fix=f"Delete {cached} to train the teacher again.")
            info = TeacherInfo("cache", cached, key)
        else:
            from compress_gate.models import train_model
            from compress_gate.pipeline._resume import checkpoint_for

            loader = training_loader(data, batch_size=spec.train.batch_size, seed=config.seed,
                                     augment=config.augment)
            checkpoint = None if checkpoint_in is None else checkpoint_for(checkpoint_in, "teacher", key)
            train_model(model, loader, task=data.task, epochs=spec.train.epochs, lr=spec.train.lr, seed=config.seed,
                        optimizer=spec.train.optimizer, progress=progress, checkpoint=checkpoint,
                        placement=placement)
            model.cpu()
            with atomic_path(cached) as tmp:
                torch.save(with_key(model.state_dict(), key), tmp)
            if checkpoint is not None:
                checkpoint.remove()
            info = TeacherInfo("trained", cached, key)
    with atomic_path(save_to) as tmp:
        torch.save(model.state_dict(), tmp)
    return model.eval(), info
