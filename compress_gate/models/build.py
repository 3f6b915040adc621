"""One entry point that builds every architecture the project ships."""

from __future__ import annotations

from typing import TYPE_CHECKING

from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["ARCHITECTURES", "build_model"]

#: Architecture names accepted by :func:`build_model`.
ARCHITECTURES: tuple[str, ...] = ("resnet18", "resnet", "mobilenet_v1")

# Smallest input side each architecture can take: every stride-2 stage must keep
# at least one pixel (resnet18 and mobilenet_v1 downsample 32×, the small resnet 4×).
_MIN_INPUT = {"resnet18": 32, "resnet": 4, "mobilenet_v1": 32}


def build_model(
    arch: str,
    *,
    num_outputs: int,
    in_channels: int = 3,
    input_size: int = 224,
    width: int | None = None,
    depth: int | None = None,
) -> torch.nn.Module:
    """Build a freshly initialised model that maps (B, in_channels, input_size, input_size) to logits (B, num_outputs).

    Architectures
    -------------
    ``"resnet18"``
        torchvision's ResNet-18 (ImageNet stem). ``width``/``depth`` must be left
        unset or equal 64/2 (ResNet-18's own); use ``"resnet"`` to scale.
    ``"resnet"``
        small-input ResNet (3×3/1 stem, no max-pool), 3 stages of ``width``,
        ``2·width``, ``4·width`` channels with ``depth`` blocks each (defaults 64, 2).
    ``"mobilenet_v1"``
        MobileNetV1; ``width`` is the stem width (32 at multiplier 1.0, so the
        multiplier is ``width / 32``); ``depth`` must be left unset.

    The returned module has an ``input_shape`` attribute ``(in_channels,
    input_size, input_size)``, used by export and benchmarks.

    Raises
    ------
    InputError
        Unknown ``arch``, a non-positive size, an input too small for the
        architecture's downsampling, or a width/depth the architecture does not take.
    """
    if arch not in ARCHITECTURES:
        raise InputError(f"model architecture {arch!r} is not known. It should be one of {list(ARCHITECTURES)}.")
    for name, value in (("num_outputs", num_outputs), ("in_channels", in_channels), ("input_size", input_size),
                        ("width", width), ("depth", depth)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"model {name} = {value!r} must be a positive integer.")
    if input_size < _MIN_INPUT[arch]:
        raise InputError(f"model input_size = {input_size} is too small for {arch}: it needs at least "
                         f"{_MIN_INPUT[arch]} pixels. Use a larger input or the small-input \"resnet\".")

    if arch == "resnet18":
        if (width, depth) not in {(None, None), (64, 2), (64, None), (None, 2)}:
            raise InputError(f"resnet18 has width 64 and depth 2; got width={width}, depth={depth}. "
                             "Use arch \"resnet\" for a scaled ResNet.")
        from compress_gate.models.resnet import resnet18

        model = resnet18(num_outputs=num_outputs, in_channels=in_channels)
    elif arch == "resnet":
        from compress_gate.models.resnet import small_resnet

        model = small_resnet(num_outputs=num_outputs, in_channels=in_channels,
                             width=64 if width is None else width, depth=2 if depth is None else depth)
    else:
        if depth is not None:
            raise InputError(f"mobilenet_v1 has a fixed depth (13 blocks); got depth={depth}. Leave depth unset.")
        from compress_gate.models.mobilenet import MobileNetV1

        model = MobileNetV1(num_outputs=num_outputs, in_channels=in_channels,
                            alpha=1.0 if width is None else width / 32)
    model.input_shape = (in_channels, input_size, input_size)
    return model
