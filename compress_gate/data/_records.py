"""The records the eval-data contract loads into: :class:`EvalData` and :class:`Predictions`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from compress_gate._task import Task
from compress_gate.errors import InputError

if TYPE_CHECKING:
    from compress_gate.data.image_files import ImageFiles

__all__ = ["Task", "SPLITS", "EvalData", "Predictions", "SkippedImage"]

SPLITS = ("train", "calib", "test")


@dataclass(frozen=True)
class SkippedImage:
    """A row left out by ``data.on_bad_image: skip``: its id, its file and why it was refused."""

    id: str
    path: str
    reason: str


@dataclass(frozen=True)
class EvalData:
    """Validated eval data; multi-class labels are held one-hot.

    Attributes
    ----------
    ids : ndarray of shape (n_samples,), str, unique
    labels : ndarray of shape (n_samples, n_attributes), uint8 in {0, 1}
        One-hot rows for ``task == "multiclass"``.
    split : ndarray of shape (n_samples,), str in {"train", "calib", "test"}
    groups : ndarray of shape (n_samples, n_groups), bool
    group_names : tuple of str, one per column of ``groups``
    attribute_names : tuple of str, one per attribute (class names for multi-class)
    task : "multilabel" or "multiclass"
    inputs : ndarray of shape (n_samples, ...), float32, :class:`~compress_gate.data.ImageFiles`
        (image files decoded on access, same shape), or None
    skipped : tuple of SkippedImage
        Rows the source left out (``on_bad_image: skip``); empty otherwise.
    """

    ids: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    groups: np.ndarray
    group_names: tuple[str, ...]
    attribute_names: tuple[str, ...]
    task: Task
    inputs: np.ndarray | ImageFiles | None = field(default=None, repr=False)
    skipped: tuple[SkippedImage, ...] = ()

    @property
    def n_samples(self) -> int:
        """Number of rows N."""
        return int(self.ids.shape[0])

    @property
    def n_attributes(self) -> int:
        """Number of binary attributes K (classes for multi-class)."""
        return int(self.labels.shape[1])

    @property
    def label_index(self) -> np.ndarray:
        """(N,) int class index (multi-class only: the argmax of the one-hot labels)."""
        if self.task != "multiclass":
            raise InputError("label_index is defined for multi-class data only; this data is "
                             f"{self.task!r}. Use `labels` (N, K) 0/1 instead.")
        return self.labels.argmax(axis=1)

    def mask(self, *splits: str) -> np.ndarray:
        """Boolean (N,) mask of the rows whose split is one of ``splits``."""
        unknown = sorted(set(splits) - set(SPLITS))
        if unknown or not splits:
            raise InputError(f"unknown split(s) {unknown or '(none given)'}: use one or more of "
                             f"{list(SPLITS)}.")
        return np.isin(self.split, list(splits))

    def subset(self, mask: np.ndarray) -> EvalData:
        """The rows where ``mask`` is true (a boolean (N,) mask or integer indices)."""
        return EvalData(ids=self.ids[mask], labels=self.labels[mask], split=self.split[mask],
                        groups=self.groups[mask], group_names=self.group_names,
                        attribute_names=self.attribute_names, task=self.task,
                        inputs=None if self.inputs is None else self.inputs[mask], skipped=self.skipped)

    @property
    def streams_images(self) -> bool:
        """Whether ``inputs`` are image files decoded on access (not an in-memory array)."""
        from compress_gate.data.image_files import ImageFiles

        return isinstance(self.inputs, ImageFiles)


@dataclass(frozen=True)
class Predictions:
    """Validated scores of one model: ``ids`` (M,) str, ``scores`` (M, K) float32 (float64 when
    given as float64) in [0, 1]."""

    ids: np.ndarray
    scores: np.ndarray
    source: str
