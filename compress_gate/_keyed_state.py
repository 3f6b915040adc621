"""Files that say what they hold: a state_dict stored with the key it was made for.

A cached teacher (and any checkpoint a later run may pick up by file name) is saved as
``{"key": <hex key>, "state_dict": {...}}``. Its file name carries only a prefix of the
key, and a file can be copied, renamed or left from another recipe, so the loader checks
the stored key against the key of the run that wants it (:func:`keyed_state`) and refuses
a mismatch instead of loading another recipe's weights silently. The key is a string and
the state a dict of tensors, so the file still loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compress_gate.errors import InputError

__all__ = ["with_key", "keyed_state"]


def with_key(state: dict[str, Any], key: str) -> dict[str, Any]:
    """What to save: ``state`` with the ``key`` it was made for."""
    return {"key": key, "state_dict": state}


def keyed_state(stored: Any, key: str, path: str | Path, what: str) -> dict[str, Any]:
    """The state_dict of a loaded keyed file (:func:`with_key`) whose stored key is ``key``.

    Raises
    ------
    InputError
        ``stored`` is not a keyed file (an older format, or not made by this tool), or it
        was made for another key. The message names ``path``, both keys and the fix:
        delete the file, and the next run makes it again.
    """
    fix = f"Delete {path}; the next run makes it again for this recipe."
    if not isinstance(stored, dict) or not isinstance(stored.get("key"), str) \
            or not isinstance(stored.get("state_dict"), dict):
        raise InputError(f"{path}: the {what} holds no key saying what it was made for (an older format, or a "
                         f"file this tool did not write), so it is not loaded. {fix}")
    if stored["key"] != key:
        raise InputError(f"{path}: the {what} was made for another recipe or data (its key {stored['key'][:16]}..., "
                         f"this run's {key[:16]}...), so it is not loaded. {fix}")
    return stored["state_dict"]
