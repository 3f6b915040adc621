"""The recipe's ``model:`` and ``augment:`` sections: where the dense teacher comes from, how it trains.

Every key is documented in ``docs/recipe.md`` (``model``); the sources are built by
:mod:`compress_gate.models.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["TrainSpec", "AugmentConfig", "ModelConfig"]

_Frozen = ConfigDict(extra="forbid", frozen=True)


class TrainSpec(BaseModel):
    """How to train the dense teacher when no checkpoint is given.

    Example: ``{epochs: 15, lr: 0.05, optimizer: sgd, batch_size: 64}`` (momentum 0.9 for SGD;
    weight decay 5e-4).
    """

    model_config = _Frozen
    epochs: float = Field(gt=0, le=1000, strict=True)
    lr: float = Field(0.05, gt=0, le=10, strict=True)
    optimizer: Literal["sgd", "adam"] = "sgd"
    batch_size: int = Field(64, ge=1, le=65536, strict=True)


class AugmentConfig(BaseModel):
    """Augmentation of the training batches (teacher training and every fine-tune; never evaluation).

    Example: ``{hflip: true, crop_scale: [0.7, 1.0]}``: each image is cropped to a random square of
    a share s ~ U(0.7, 1.0) of its area, resized back, and mirrored with probability 0.5
    (:mod:`compress_gate.models.augment`). Default: none. FairGRAPE's group loader is not augmented.
    """

    model_config = _Frozen
    hflip: bool = Field(False, strict=True)
    crop_scale: tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AugmentConfig:
        if self.crop_scale is not None and self.crop_scale[0] > self.crop_scale[1]:
            raise ValueError(f"crop_scale = {list(self.crop_scale)} must be [low, high] with low <= high, "
                             "e.g. [0.7, 1.0]")
        return self


class ModelConfig(BaseModel):
    """The dense teacher: where the network comes from, and a ``checkpoint`` and/or a ``train`` spec.

    Exactly one source (:mod:`compress_gate.models.registry`): ``arch`` (built-in, with
    ``width``/``depth``), ``factory: "pkg.module:function"`` or ``"path/file.py:function"`` (relative to
    the recipe), ``torchvision: <name>`` or ``timm: <name>``, the last three called with ``kwargs``.
    Examples::

        {arch: resnet, width: 16, depth: 1, train: {epochs: 15}}
        {arch: resnet18, checkpoint: teacher.pt}       # a state_dict saved with torch.save
        {factory: "net.py:build", kwargs: {width: 16}, checkpoint: pretrained.pt, head: classifier,
         layers: [stage1, stage2], input_size: 64, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
         train: {epochs: 3}}

    ``checkpoint`` alone is the teacher; ``train`` alone trains it from scratch; both fine-tune
    the checkpoint. ``head`` is the module path of the final layer, replaced by a new one when
    the checkpoint's (or the factory's) output count differs from the data's (``train`` then
    required). ``layers`` are the module paths of the feature stages that similarity and
    feature distillation compare (default: the top-level ``layer<k>`` modules).
    ``input_size`` is the image side (image sources load at this size). ``mean``/``std``
    (one value per channel) normalise pixels in [0, 1]: x = (p - mean) / std (default 0.5 / 0.5);
    export records them in the ONNX metadata and the release bundle's runtime applies them.
    Trained teachers are cached in ``cache_dir`` (default ``<output>/../.cache``).
    """

    model_config = _Frozen
    arch: Literal["resnet18", "resnet", "mobilenet_v1"] | None = None
    factory: str | None = Field(None, min_length=3)
    torchvision: str | None = Field(None, min_length=1)
    timm: str | None = Field(None, min_length=1)
    kwargs: dict[str, Any] = {}
    width: int | None = Field(None, ge=1, le=1024, strict=True)
    depth: int | None = Field(None, ge=1, le=16, strict=True)
    checkpoint: Path | None = None
    head: str | None = Field(None, min_length=1)
    layers: tuple[Annotated[str, Field(min_length=1)], ...] | None = Field(None, min_length=1)
    input_size: int | None = Field(None, ge=8, le=512, strict=True)
    mean: tuple[float, ...] | None = Field(None, min_length=1, max_length=4)
    std: tuple[Annotated[float, Field(gt=0)], ...] | None = Field(None, min_length=1, max_length=4)
    train: TrainSpec | None = None
    cache_dir: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        sources = [key for key in ("arch", "factory", "torchvision", "timm") if getattr(self, key) is not None]
        if len(sources) != 1:
            raise ValueError(f"name exactly one source of the network, got {sources or 'none'}: `arch` (built-in: "
                             "resnet18, resnet, mobilenet_v1), `factory: \"path/to/net.py:build\"`, "
                             "`torchvision: resnet50` or `timm: <name>`")
        if sources != ["arch"] and (self.width is not None or self.depth is not None):
            raise ValueError(f"`width`/`depth` size the built-in architectures only; with `{sources[0]}` pass "
                             "the network's own arguments in `kwargs`")
        if sources == ["arch"] and self.kwargs:
            raise ValueError("`kwargs` are passed to a `factory`, `torchvision` or `timm` network; a built-in "
                             "`arch` takes `width` and `depth`")
        if self.checkpoint is None and self.train is None:
            raise ValueError("give `checkpoint` (a state_dict file of the dense teacher), `train` (e.g. "
                             "`train: {epochs: 6}`) to train it in the run, or both to fine-tune the checkpoint")
        if (self.mean is None) != (self.std is None) or (self.mean and len(self.mean) != len(self.std or ())):
            raise ValueError("give `mean` and `std` together, one value per image channel each (e.g. "
                             "`mean: [0.485, 0.456, 0.406]`, `std: [0.229, 0.224, 0.225]`)")
        return self
