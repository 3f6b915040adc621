"""The one JSON convention for non-finite numbers, used by every file compress-gate writes.

JSON has no NaN or infinity, so every writer passes its values through :func:`json_safe`:

- NaN (an undefined number) is written as ``null``;
- +inf and -inf (e.g. a relative change from a zero baseline) as the strings ``"inf"``
  and ``"-inf"``, so a reader can tell "undefined" from "infinitely worse";
- NumPy scalars and arrays become plain Python numbers and lists; mapping keys become strings.

docs/gate.md ("Numbers in the JSON files") documents the convention for readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` in plain JSON types: nan -> None, ±inf -> "inf"/"-inf", NumPy unwrapped.

    Examples
    --------
    >>> json_safe({"a": float("nan"), "b": [np.float32(0.5), float("-inf")], 1: np.array([1, 2])})
    {'a': None, 'b': [0.5, '-inf'], '1': [1, 2]}
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_safe(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    return value
