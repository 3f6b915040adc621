"""A network defined outside compress-gate: depthwise-separable blocks with squeeze-excitation.

This file is what a user brings. The recipe names it as ``factory: "net.py:build"``;
compress-gate imports it, calls ``build(**kwargs)`` and gets an ``nn.Module`` that maps
(batch, in_channels, S, S) images to (batch, num_classes) logits. Nothing here imports
compress-gate.
"""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al. 2018): x * sigmoid(W2 relu(W1 avgpool(x)))."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.expand(torch.relu(self.reduce(self.pool(x)))))
        return x * scale


class SeparableBlock(nn.Module):
    """Depthwise 3x3 conv (stride), pointwise 1x1 conv, each with BatchNorm and ReLU, then SE."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.bn_depthwise = nn.BatchNorm2d(in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn_pointwise = nn.BatchNorm2d(out_channels)
        self.excite = SqueezeExcite(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn_depthwise(self.depthwise(x)))
        return self.excite(torch.relu(self.bn_pointwise(self.pointwise(x))))


class SeparableSENet(nn.Module):
    """Stem (3x3 conv, stride 2), three separable SE stages (stride 2 each), pooling, a linear classifier."""

    def __init__(self, num_classes: int = 5, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.stage1 = SeparableBlock(width, 2 * width, 2)
        self.stage2 = SeparableBlock(2 * width, 4 * width, 2)
        self.stage3 = SeparableBlock(4 * width, 4 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build(num_classes: int = 5, in_channels: int = 3, width: int = 16) -> SeparableSENet:
    """The factory the recipe names."""
    return SeparableSENet(num_classes=num_classes, in_channels=in_channels, width=width)
