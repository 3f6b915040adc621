"""Assemble loader output into validated :class:`EvalData`, through the contract's own checks."""

from __future__ import annotations

import dataclasses

import numpy as np

from compress_gate.data._records import SkippedImage
from compress_gate.data.contract import EvalData, Task, _check_eval_columns
from compress_gate.data.image_files import ImageFiles

GROUP_PREFIX = "group__"


def build_eval_data(*, ids: np.ndarray, labels: np.ndarray, split: np.ndarray,
                    groups: dict[str, np.ndarray], attribute_names: tuple[str, ...], task: Task,
                    inputs: np.ndarray | ImageFiles | None, source: str,
                    skipped: tuple[SkippedImage, ...] = ()) -> EvalData:
    """Validate the columns exactly as ``load_eval_data`` validates ``data.npz``.

    ``labels`` are (N,) class indices (multi-class) or (N, K) 0/1 (multi-label);
    ``groups`` maps each identity category to its (N,) 0/1 column. So every loader
    produces data that ``save_eval_data`` writes and ``load_eval_data`` reads back.
    :class:`ImageFiles` inputs are attached after the checks, undecoded (one per row, so
    only their count is checked); ``skipped`` lists the rows a source left out.
    """
    columns = {"ids": np.asarray(ids, dtype=str), "labels": np.asarray(labels),
               "split": np.asarray(split, dtype=str),
               "attribute_names": np.asarray(attribute_names, dtype=str), "task": np.asarray(task)}
    for name, column in groups.items():
        columns[GROUP_PREFIX + name] = np.asarray(column, dtype=np.uint8)
    if isinstance(inputs, ImageFiles):
        if len(inputs) != len(columns["ids"]):
            raise ValueError(f"build_eval_data: {len(inputs)} image files for {len(columns['ids'])} ids")
        return dataclasses.replace(_check_eval_columns(columns, source), inputs=inputs, skipped=skipped)
    if inputs is not None:
        columns["inputs"] = np.asarray(inputs, dtype=np.float32)
    return dataclasses.replace(_check_eval_columns(columns, source), skipped=skipped)
