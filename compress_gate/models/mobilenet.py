"""MobileNetV1 (Howard et al., 2017, Table 1), defined here because torchvision is unusable.

A 3×3/2 conv stem, 13 depthwise-separable blocks (3×3 depthwise conv-BN-ReLU,
then 1×1 pointwise conv-BN-ReLU), global average pool and a linear head. At
width multiplier 1.0 and 1000 classes it has the published 4,231,976 parameters.

Module names: ``conv1``/``bn1`` (stem), ``layer{i}.conv_dw``/``bn_dw``
(depthwise) and ``layer{i}.conv_pw``/``bn_pw`` (pointwise), ``fc`` (head), so one
SparseML regex can address the pointwise convs of every block.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DepthwiseSeparable", "MobileNetV1", "MOBILENET_V1_BLOCKS"]

#: (output channels at width 1.0, stride) of the 13 depthwise-separable blocks.
MOBILENET_V1_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


class DepthwiseSeparable(nn.Module):
    """3×3 depthwise conv-BN-ReLU followed by 1×1 pointwise conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False)
        self.bn_dw = nn.BatchNorm2d(in_channels)
        self.relu_dw = nn.ReLU(inplace=True)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn_pw = nn.BatchNorm2d(out_channels)
        self.relu_pw = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_dw(self.bn_dw(self.conv_dw(x)))
        return self.relu_pw(self.bn_pw(self.conv_pw(x)))


class MobileNetV1(nn.Module):
    """MobileNetV1 with width multiplier ``alpha``; outputs logits of shape (B, num_outputs).

    Channel counts are ``round(c · alpha)`` (at least 1) for every layer.
    """

    def __init__(self, *, num_outputs: int, in_channels: int = 3, alpha: float = 1.0) -> None:
        super().__init__()
        stem = max(1, round(32 * alpha))
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        channels = stem
        for index, (out_channels, stride) in enumerate(MOBILENET_V1_BLOCKS, start=1):
            out_channels = max(1, round(out_channels * alpha))
            self.add_module(f"layer{index}", DepthwiseSeparable(channels, out_channels, stride))
            channels = out_channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_outputs)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        for index in range(1, len(MOBILENET_V1_BLOCKS) + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))
