"""ResNets with torchvision's layout (He et al., 2016), defined here because torchvision is unusable.

Two stems share one body:

- ``"imagenet"``: 7×7/2 conv, BN, ReLU, 3×3/2 max-pool (ResNet-18 and friends).
- ``"cifar"``: 3×3/1 conv, BN, ReLU, no pool, for small inputs (32×32).

Module names match torchvision (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``), so SparseML recipes written for torchvision
ResNets address the same parameters, and ResNet-18 at 1000 classes has exactly
torchvision's 11,689,512 parameters. The residual add goes through
``FloatFunctional.add_relu`` (no parameters) so QAT quantizes it and SparseML's
converted export keeps the residual in INT8 for DeepSparse.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.ao.nn.quantized import FloatFunctional

__all__ = ["BasicBlock", "ResNet", "resnet18", "small_resnet"]


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN pairs plus a shortcut (a 1×1 conv-BN projection when the shape changes)."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.add_relu = FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.add_relu.add_relu(out, identity)


class ResNet(nn.Module):
    """A ResNet of :class:`BasicBlock` stages; outputs logits of shape (B, num_outputs).

    Parameters
    ----------
    stage_widths : channels of each stage; stage ``i > 0`` halves the resolution.
    blocks_per_stage : number of blocks in each stage (same length as ``stage_widths``).
    stem : ``"imagenet"`` (7×7/2 conv + 3×3/2 max-pool) or ``"cifar"`` (3×3/1 conv).
    """

    def __init__(
        self,
        stage_widths: Sequence[int],
        blocks_per_stage: Sequence[int],
        *,
        num_outputs: int,
        in_channels: int = 3,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        if len(stage_widths) != len(blocks_per_stage):
            raise ValueError("stage_widths and blocks_per_stage must have the same length")
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"unknown stem {stem!r}")
        width = stage_widths[0]
        # Registration order conv1, bn1, relu lets SparseML's QAT fuse them into one module.
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        channels = width
        for index, (stage_width, blocks) in enumerate(zip(stage_widths, blocks_per_stage), start=1):
            stride = 1 if index == 1 else 2
            layers = []
            for block in range(blocks):
                layers.append(BasicBlock(channels, stage_width, stride if block == 0 else 1))
                channels = stage_width
            self.add_module(f"layer{index}", nn.Sequential(*layers))
        self.num_stages = len(stage_widths)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_outputs)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{index}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18(*, num_outputs: int, in_channels: int = 3) -> ResNet:
    """ResNet-18: ImageNet stem, stages of 64/128/256/512 channels with 2 blocks each."""
    return ResNet((64, 128, 256, 512), (2, 2, 2, 2), num_outputs=num_outputs, in_channels=in_channels)


def small_resnet(*, num_outputs: int, in_channels: int = 3, width: int = 64, depth: int = 2) -> ResNet:
    """Small-input ResNet: CIFAR stem, 3 stages of ``width``, ``2·width``, ``4·width`` channels.

    ``depth`` blocks per stage gives 6·depth + 2 weighted layers (depth=3 is the
    layer count of He et al.'s ResNet-20, with 1×1 projection shortcuts).
    """
    return ResNet(
        (width, 2 * width, 4 * width), (depth,) * 3, num_outputs=num_outputs, in_channels=in_channels,
        stem="cifar",
    )


def _init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: Kaiming-normal convs, BN weight 1 / bias 0."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
