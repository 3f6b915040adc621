"""The model's input normalisation: applied to the run's images, recorded with the exported model.

Image sources (demo, synthetic, csv, celeba) give pixels u in [0, 1] normalised as
x = (u - 0.5) / 0.5; with ``model.mean``/``model.std`` the run re-expresses them as
x = (u - mean_c) / std_c (:func:`compress_gate.data.renormalize_` for in-memory images; streamed
image files are decoded with the model's ``mean``/``std`` directly,
:meth:`compress_gate.data.ImageTransform.normalized`). An ``npz``
source holds preprocessed arrays, taken as given; its ``mean``/``std``, when the recipe
states them, are only recorded.

The record, JSON in the ONNX metadata key :data:`PREPROCESS_KEY` of every exported graph
and of the released ``model.onnx`` (and in the bundle manifest's ``model``), is::

    {"input_size": 64, "channels": 3, "pixel_range": [0, 1], "mean": [0.5, 0.5, 0.5],
     "std": [0.5, 0.5, 0.5]}

with ``mean``/``std`` null when the inputs were given preprocessed (``npz`` without them).
The release bundle's runtime applies it: :meth:`compress_gate.bundle.GatedModel.predict_pixels`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from compress_gate.config.data import NpzDataConfig
from compress_gate.config.run import RunConfig
from compress_gate.data.contract import EvalData

__all__ = ["PREPROCESS_KEY", "preprocessing", "normalize_for_model", "record_preprocessing"]

#: The ONNX metadata key holding the preprocessing record (JSON) in every exported graph.
PREPROCESS_KEY = "compress_gate.preprocess"


def preprocessing(config: RunConfig, data: EvalData) -> dict[str, Any]:
    """The preprocessing record of ``data`` (loaded) under ``config``: ``input_size``, ``channels``,
    ``pixel_range`` [0, 1], and ``mean``/``std`` per channel: the recipe's ``model.mean``/``model.std``,
    else 0.5 each for image sources, else (an ``npz`` source without them) null."""
    channels, size = int(data.inputs.shape[1]), int(data.inputs.shape[2])
    mean, std = config.model.mean, config.model.std
    if mean is None and not isinstance(config.data, NpzDataConfig):
        mean, std = (0.5,) * channels, (0.5,) * channels
    return {"input_size": size, "channels": channels, "pixel_range": [0, 1],
            "mean": None if mean is None else list(mean), "std": None if std is None else list(std)}


def normalize_for_model(config: RunConfig, data: EvalData) -> EvalData:
    """``data`` with its images normalised by ``model.mean``/``model.std`` (image sources only)."""
    from compress_gate.data import ImageFiles, renormalize_

    if config.model.mean is None or isinstance(config.data, NpzDataConfig):
        return data
    if isinstance(data.inputs, ImageFiles):
        transform = data.inputs.transform.normalized(config.model.mean, config.model.std)  # type: ignore[arg-type]
        return dataclasses.replace(data, inputs=data.inputs.with_transform(transform))
    inputs = renormalize_(data.inputs, mean=config.model.mean, std=config.model.std)  # type: ignore[arg-type]
    return dataclasses.replace(data, inputs=inputs)


def record_preprocessing(paths: list[Path], record: dict[str, Any]) -> None:
    """Write ``record`` into each ONNX file's metadata under :data:`PREPROCESS_KEY` (in place)."""
    from compress_gate.compress.export import annotate_onnx

    for path in paths:
        annotate_onnx(path, {PREPROCESS_KEY: json.dumps(record, sort_keys=True)})
