"""The scores head every exported graph ends with."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ScoresModel"]


class ScoresModel(nn.Module):
    """Wraps a logits model so that it outputs scores.

    ``"multilabel"``: sigmoid of each logit; ``"multiclass"``: softmax over the classes (dim 1).
    """

    def __init__(self, model: nn.Module, task: str) -> None:
        super().__init__()
        self.model = model
        self.task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return torch.sigmoid(logits) if self.task == "multilabel" else torch.softmax(logits, dim=1)
