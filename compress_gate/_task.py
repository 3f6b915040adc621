"""The prediction task, named once for every stage.

A leaf module like :mod:`compress_gate.errors` (it imports nothing from the project), so
the metrics, which import only these two, the data contract and the training loop share it.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["Task", "TASKS"]

#: ``"multilabel"``: one sigmoid per attribute; ``"multiclass"``: one softmax over the classes.
Task = Literal["multilabel", "multiclass"]
TASKS: tuple[str, ...] = get_args(Task)
