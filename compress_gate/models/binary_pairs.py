"""Multilabel logits in the form SparseML's softmax-KL distillation expects."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BinaryPairTeacher", "binary_pairs"]


def binary_pairs(logits: torch.Tensor) -> torch.Tensor:
    """(B, K) logits ``z`` -> (B, K, 2) pairs ``(z, 0)``.

    ``softmax((z, 0)) = (sigmoid(z), 1 - sigmoid(z))``, so SparseML's KL over the
    last axis becomes the mean per-attribute binary KL between teacher and student.
    """
    return torch.stack((logits, torch.zeros_like(logits)), dim=-1)


class BinaryPairTeacher(nn.Module):
    """Wraps a multilabel teacher so that its outputs are :func:`binary_pairs` of its logits."""

    def __init__(self, teacher: nn.Module) -> None:
        super().__init__()
        self.teacher = teacher

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binary_pairs(self.teacher(x))
