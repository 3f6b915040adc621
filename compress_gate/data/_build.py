"""Assemble loader output into validated :class:`EvalData`, through the contract's own checks."""

from __future__ import annotations

import numpy as np

from compress_gate.data.contract import EvalData, Task, _check_eval_columns

GROUP_PREFIX = "group__"


def build_eval_data(*, ids: np.ndarray, labels: np.ndarray, split: np.ndarray,
                    groups: dict[str, np.ndarray], attribute_names: tuple[str, ...], task: Task,
                    inputs: np.ndarray | None, source: str) -> EvalData:
    """Validate the columns exactly as ``load_eval_data`` validates ``data.npz``.

    ``labels`` are (N,) class indices (multi-class) or (N, K) 0/1 (multi-label);
    ``groups`` maps each identity category to its (N,) 0/1 column. So every loader
    produces data that ``save_eval_data`` writes and ``load_eval_data`` reads back.
    """
    columns = {"ids": np.asarray(ids, dtype=str), "labels": np.asarray(labels),
               "split": np.asarray(split, dtype=str),
               "attribute_names": np.asarray(attribute_names, dtype=str), "task": np.asarray(task)}
    for name, column in groups.items():
        columns[GROUP_PREFIX + name] = np.asarray(column, dtype=np.uint8)
    if inputs is not None:
        columns["inputs"] = np.asarray(inputs, dtype=np.float32)
    return _check_eval_columns(columns, source)
