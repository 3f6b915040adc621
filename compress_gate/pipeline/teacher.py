"""The dense teacher: loaded from a checkpoint, or trained per the recipe and cached.

A trained teacher is cached under ``<cache_dir>/teacher-<key>.pt`` (a ``state_dict``;
``cache_dir`` defaults to ``<output>/../.cache``, i.e. beside the run directory), where

.. math:: \\mathrm{key} = \\mathrm{sha256}(\\mathrm{json}(\\text{architecture}, \\text{training spec},
          \\text{seed}, \\text{task}, \\mathrm{sha256}(\\text{train ids} \\| \\text{inputs} \\| \\text{labels})))

so a rerun with the same data, architecture, training spec and seed loads it instead of
retraining, and any change to one of them trains a new one. Cached and given checkpoints are
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
from compress_gate._paths import require_regular_file
from compress_gate.config.run import RunConfig
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["TeacherInfo", "teacher_cache_key", "obtain_teacher", "build_architecture", "training_loader"]

_CACHE_FORMAT = 1   # bump when the cached file's meaning changes


@dataclass(frozen=True)
class TeacherInfo:
    """Where the teacher came from: ``source`` is ``checkpoint``, ``cache`` or ``trained``."""

    source: str
    path: Path
    cache_key: str | None


def build_architecture(config: RunConfig, data: EvalData) -> torch.nn.Module:
    """A fresh model of the recipe's architecture sized for ``data`` (channels, side, outputs)."""
    from compress_gate.models import build_model

    shape = _input_shape(data)
    return build_model(config.model.arch, num_outputs=data.n_attributes, in_channels=shape[0],
                       input_size=shape[1], width=config.model.width, depth=config.model.depth)


def _input_shape(data: EvalData) -> tuple[int, ...]:
    if data.inputs is None or data.inputs.ndim != 4 or data.inputs.shape[2] != data.inputs.shape[3]:
        shape = None if data.inputs is None else data.inputs.shape
        raise InputError(f"the data has inputs of shape {shape}; a run needs square image tensors "
                         "(N, C, H, H). Use a data source that loads images (demo, celeba, csv, npz with "
                         "`inputs`).")
    return tuple(int(s) for s in data.inputs.shape[1:])


def training_loader(data: EvalData, *, batch_size: int, seed: int) -> Any:
    """A shuffling ``DataLoader`` over the train split, seeded by ``seed``.

    Targets are class indices (multi-class) or float 0/1 rows (multi-label).
    """
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from compress_gate.data import training_arrays

    inputs, targets = (torch.from_numpy(array) for array in training_arrays(data, split="train"))
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(TensorDataset(inputs, targets), batch_size=batch_size, shuffle=True,
                      generator=generator, drop_last=False)


def teacher_cache_key(config: RunConfig, data: EvalData) -> str:
    """The cache key of the module docstring (hex SHA-256)."""
    train = data.mask("train")
    digest = hashlib.sha256()
    for array in (np.asarray(data.ids[train], dtype=str), data.inputs[train], data.labels[train]):
        digest.update(np.ascontiguousarray(array).tobytes())
    spec = {"format": _CACHE_FORMAT, "arch": config.model.arch, "width": config.model.width,
            "depth": config.model.depth, "train": config.model.train.model_dump() if config.model.train else None,
            "seed": config.seed, "task": data.task, "input_shape": list(_input_shape(data)),
            "outputs": data.n_attributes, "data": digest.hexdigest()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _load_state(model: torch.nn.Module, path: Path, what: str) -> None:
    import torch

    require_regular_file(path, what, missing_hint="Check `model.checkpoint` in the recipe.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors differ by file; all mean "unreadable"
        # torch's own message advises weights_only=False, i.e. running the file's code: never relayed.
        raise InputError(f"{path}: not a valid {what}: torch.load(weights_only=True) cannot read it as a "
                         f"state_dict ({type(err).__name__}). The file may be truncated, not a PyTorch "
                         "checkpoint, or a pickle of code, which is never run. Save the teacher's weights "
                         "with torch.save(model.state_dict(), path).") from err
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path}: the {what} holds a {type(state).__name__}, not a state_dict. Save it "
                         "with torch.save(model.state_dict(), path).")
    fix = ("Use the architecture it was trained with (model.arch, width, depth; the data sets the input "
           "channels and outputs).")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        first = next((line.strip() for line in str(err).splitlines() if "size mismatch" in line), str(err))
        raise InputError(f"{path}: the {what} does not fit the recipe's architecture: {first}. {fix}") from err
    if result.missing_keys or result.unexpected_keys:
        raise InputError(f"{path}: the {what} does not fit the recipe's architecture: missing "
                         f"{list(result.missing_keys)[:3]}, unexpected {list(result.unexpected_keys)[:3]}. {fix}")


def obtain_teacher(config: RunConfig, data: EvalData, *, save_to: Path,
                   progress: Callable[[int, int, float], None] | None = None
                   ) -> tuple[torch.nn.Module, TeacherInfo]:
    """Load or train the dense teacher, save its state_dict to ``save_to``, return it in eval mode.

    Raises
    ------
    InputError
        Unreadable checkpoint, or one whose keys do not fit the architecture; no train split.
    """
    import torch

    model = build_architecture(config, data)
    if config.model.checkpoint is not None:
        _load_state(model, config.model.checkpoint, "model.checkpoint")
        info = TeacherInfo("checkpoint", config.model.checkpoint, None)
    else:
        key = teacher_cache_key(config, data)
        cached = config.cache_dir / f"teacher-{key[:24]}.pt"
        if cached.is_file():
            _load_state(model, cached, "cached teacher")
            info = TeacherInfo("cache", cached, key)
        else:
            from compress_gate.models import train_model

            spec = config.model.train
            assert spec is not None  # ModelConfig requires checkpoint or train
            loader = training_loader(data, batch_size=spec.batch_size, seed=config.seed)
            train_model(model, loader, task=data.task, epochs=spec.epochs, lr=spec.lr, seed=config.seed,
                        optimizer=spec.optimizer, progress=progress)
            with atomic_path(cached) as tmp:
                torch.save(model.state_dict(), tmp)
            info = TeacherInfo("trained", cached, key)
    with atomic_path(save_to) as tmp:
        torch.save(model.state_dict(), tmp)
    return model.eval(), info
