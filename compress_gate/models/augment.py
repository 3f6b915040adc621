"""Training-time augmentation of image batches: random resized (square) crop and horizontal flip.

Applied to every batch of teacher training and fine-tuning (:mod:`compress_gate.models.loaders`:
the ``collate_fn`` of an in-memory loader, or in the main process after a streaming loader's
workers decoded the batch); evaluation,
calibration, similarity and scoring always see the deterministic images. For each image
of side S, independently:

- ``crop_scale = (a, b)``: a square of side round(S·sqrt(s)), s ~ U(a, b), at a uniformly
  drawn position, resized back to S×S (bilinear, ``align_corners=False``);
- ``hflip``: mirrored left-right with probability 0.5.

Every draw comes from one ``torch.Generator`` seeded with the run's seed, so two runs with
the same seed see the same augmented batches.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["AugmentBatch"]


class AugmentBatch:
    """``collate_fn`` that stacks ``(input, target, ...)`` samples and augments each input independently.

    With ``crop_scale = (a, b)``: a square crop of side round(S·sqrt(s)), s ~ U(a, b), at a
    uniform position, resized back to S×S (bilinear); with ``hflip``: mirrored left-right with
    probability 0.5. Every draw comes from one ``torch.Generator`` seeded with ``seed``.
    """

    def __init__(self, *, hflip: bool, crop_scale: tuple[float, float] | None, seed: int) -> None:
        import torch

        self.hflip, self.crop_scale = hflip, crop_scale
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, samples: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        import torch

        stacked = [torch.stack([sample[i] for sample in samples]) for i in range(len(samples[0]))]
        return (self.augment(stacked[0]), *stacked[1:])

    def augment(self, inputs: torch.Tensor) -> torch.Tensor:
        """A batch (B, C, S, S) augmented image by image (the random resized crop, then the flip with
        probability 0.5), drawing from this object's generator."""
        import torch

        if self.crop_scale is not None:
            inputs = torch.stack([self._crop(image) for image in inputs])
        if self.hflip:
            flip = torch.rand(len(inputs), generator=self.generator) < 0.5
            inputs = torch.where(flip[:, None, None, None], inputs.flip(-1), inputs)
        return inputs

    def _crop(self, image: torch.Tensor) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        side = image.shape[-1]
        low, high = self.crop_scale  # type: ignore[misc]
        scale = low + (high - low) * float(torch.rand((), generator=self.generator))
        crop = max(1, min(side, round(side * math.sqrt(scale))))
        top, left = (int(torch.randint(0, side - crop + 1, (), generator=self.generator)) for _ in range(2))
        patch = image[:, top:top + crop, left:left + crop]
        return F.interpolate(patch[None], size=(side, side), mode="bilinear", align_corners=False)[0]
