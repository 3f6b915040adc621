"""The ``compression:`` section for the maintained torch backend (``backend: torch``).

Same vocabulary as SparseML's ``GMPruningModifier`` where it means the same thing::

    compression:
      backend: torch
      epochs: 6                      # fine-tuning length (the schedule runs inside it); none
                                     # without pruning, structured or distillation
      lr: 0.01
      optimizer: sgd
      batch_size: 64
      pruning:                       # gradual magnitude pruning (Zhu & Gupta), optional
        params: ['re:^layer\\d+\\..*conv\\d+\\.weight$']
        init_sparsity: 0.05
        final_sparsity: 0.8
        start_epoch: 0.0
        end_epoch: 4.0
        update_frequency: 0.5
        inter_func: cubic
        mask: unstructured           # or "2:4" (N:M; final_sparsity must be 1 - N/M)
      structured: {ratio: 0.5, importance: l2, round_to: 8}    # Torch-Pruning, optional
      quantization: static           # none | dynamic | static (calibrated on the calib split) | qat
      qat: {start_epoch: 7.0, disable_quantization_observer_epoch: 9.0}   # with quantization: qat, optional
      distillation: {hardness: 0.5, temperature: 2.0}          # optional; Hinton KD, or
                                     # {kind: attention | similarity | crd, ...} (DistillationConfig)
      saliency: {method: fairgrape, params: [...], sparsity: 0.8}  # instead of `pruning`: one-shot
                                     # SNIP/GraSP or iterative FairGRAPE before fine-tuning (SaliencyConfig)

Every section is optional; a recipe that names none of ``pruning``, ``structured``,
``quantization`` (other than ``none``), ``distillation`` or ``saliency`` is refused, since it would
ship the teacher.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["GMPConfig", "StructuredConfig", "DistillationConfig", "SaliencyConfig", "QATConfig",
           "TorchCompressionConfig", "parse_nm"]

_Frozen = ConfigDict(extra="forbid", frozen=True)
_NM = re.compile(r"^(\d+):(\d+)$")


def parse_nm(mask: str) -> tuple[int, int] | None:
    """``"2:4"`` -> ``(2, 4)`` (keep N of every M); ``"unstructured"`` -> ``None``."""
    match = _NM.match(mask)
    return (int(match.group(1)), int(match.group(2))) if match else None


class GMPConfig(BaseModel):
    """Gradual magnitude pruning, as SparseML's ``!GMPruningModifier`` schedules it.

    Example: ``{params: ['re:conv\\d+\\.weight$'], init_sparsity: 0.05, final_sparsity: 0.8,
    start_epoch: 0, end_epoch: 4, update_frequency: 0.5, inter_func: cubic, mask: unstructured}``.
    ``params`` are exact parameter names or ``re:`` regexes (``re.match``, as SparseML), or
    ``__ALL_PRUNABLE__`` (every conv and linear weight). ``mask: "N:M"`` keeps at most N
    non-zeros in every M consecutive weights along the input-channel axis; its
    ``final_sparsity`` must be ``1 - N/M`` (``0.5`` for ``"2:4"``).
    """

    model_config = _Frozen
    params: tuple[str, ...] = Field(min_length=1)
    init_sparsity: float = Field(0.05, ge=0, lt=1, strict=True)
    final_sparsity: float = Field(gt=0, lt=1, strict=True)
    start_epoch: float = Field(0.0, ge=0, strict=True)
    end_epoch: float = Field(gt=0, strict=True)
    update_frequency: float = Field(gt=0, strict=True)
    inter_func: Literal["cubic", "linear"] = "cubic"
    mask: str = "unstructured"

    @field_validator("mask", mode="before")
    @classmethod
    def _quoted_mask(cls, value: object) -> object:
        if isinstance(value, int):  # YAML 1.1 reads an unquoted 2:4 as the base-60 integer 124
            raise ValueError(f"mask = {value!r} is a number: YAML reads an unquoted 2:4 as base 60. Quote it: "
                             'mask: "2:4"')
        return value

    @field_validator("mask")
    @classmethod
    def _known_mask(cls, value: str) -> str:
        nm = parse_nm(value)
        if value != "unstructured" and (nm is None or not 0 < nm[0] < nm[1]):
            raise ValueError(f"mask = {value!r} must be 'unstructured' or 'N:M' with 0 < N < M, e.g. '2:4'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> GMPConfig:
        if not self.end_epoch > self.start_epoch:
            raise ValueError(f"end_epoch ({self.end_epoch}) must be greater than start_epoch ({self.start_epoch})")
        if self.init_sparsity > self.final_sparsity:
            raise ValueError(f"init_sparsity ({self.init_sparsity}) must be <= final_sparsity "
                             f"({self.final_sparsity})")
        nm = parse_nm(self.mask)
        if nm is not None and abs(self.final_sparsity - (1 - nm[0] / nm[1])) > 1e-9:
            raise ValueError(f"mask {self.mask!r} keeps {nm[0]} of every {nm[1]} weights, so final_sparsity must "
                             f"be {1 - nm[0] / nm[1]:g}, not {self.final_sparsity:g}")
        return self


class StructuredConfig(BaseModel):
    """Structured channel pruning with Torch-Pruning, once, before fine-tuning.

    Example: ``{ratio: 0.5, importance: l2, round_to: 8}``: remove 50 % of the output
    channels of every prunable conv/linear layer (the classifier's outputs are kept),
    ranked by the L1 or L2 norm of their coupled weights; ``round_to`` keeps channel
    counts multiples of it (integer kernels like multiples of 8).
    """

    model_config = _Frozen
    ratio: float = Field(gt=0, lt=1, strict=True)
    importance: Literal["l1", "l2"] = "l2"
    round_to: int | None = Field(None, ge=1, le=1024, strict=True)


class DistillationConfig(BaseModel):
    """Distillation from the dense teacher: Hinton's output KD or one of the feature variants.

    Examples (each paper's default weights are filled in for the keys left out)::

        {kind: hinton, hardness: 0.5, temperature: 2.0}   # the default kind
        {kind: attention, weight: 1000}                   # Zagoruyko & Komodakis, beta = 1000
        {kind: similarity, weight: 3000}                  # Tung & Mori, gamma = 3000
        {kind: crd, weight: 0.8, temperature: 0.07, feat_dim: 128}   # Tian et al.

    ``hinton``: loss = (1 − hardness) · task loss + hardness · T² · KL(teacher_T ‖ student_T),
    as SparseML's ``DistillationModifier`` (``hardness: 1`` trains on the teacher alone).
    The others add their term to the task loss, loss = task loss + term, with the term of
    :mod:`compress_gate.models.distill_losses` on features hooked from the same places in
    teacher and student (:mod:`compress_gate.compress.torch_backend.distill`): attention
    transfer on the output of every top-level ``layer<k>`` stage, similarity-preserving KD
    on the last stage's output, CRD on the pooled features entering the classifier (``fc``),
    each side projected to ``feat_dim`` by a linear head trained with the student.
    ``temperature`` is Hinton's T or CRD's τ; ``hardness`` belongs to ``hinton`` only,
    ``weight`` to the other kinds, ``feat_dim`` to ``crd``.
    """

    model_config = _Frozen
    kind: Literal["hinton", "attention", "similarity", "crd"] = "hinton"
    hardness: float | None = Field(None, ge=0, le=1, strict=True)
    temperature: float | None = Field(None, gt=0, le=100, strict=True)
    weight: float | None = Field(None, gt=0, le=1e6, strict=True)
    feat_dim: int | None = Field(None, ge=1, le=65536, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _paper_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "hinton")
        allowed, defaults = _DISTILLATION_KEYS.get(kind, (None, {}))
        if allowed is not None:
            extra = sorted(key for key in data if key not in allowed and key != "kind" and key in _KIND_KEYS)
            if extra:
                raise ValueError(f"{', '.join(extra)} do(es) not apply to distillation kind {kind!r}; its keys are "
                                 f"{sorted(allowed)}. Delete {', '.join(extra)}.")
        return {**defaults, **data}


#: kind -> (keys it takes besides ``kind``, the paper's defaults for them).
_DISTILLATION_KEYS: dict[str, tuple[set[str], dict[str, float | int]]] = {
    "hinton": ({"hardness", "temperature"}, {"hardness": 0.5, "temperature": 2.0}),
    "attention": ({"weight"}, {"weight": 1000.0}),
    "similarity": ({"weight"}, {"weight": 3000.0}),
    "crd": ({"weight", "temperature", "feat_dim"}, {"weight": 0.8, "temperature": 0.07, "feat_dim": 128}),
}
_KIND_KEYS = {"hardness", "temperature", "weight", "feat_dim"}


class SaliencyConfig(BaseModel):
    """Saliency pruning before fine-tuning (:mod:`compress_gate.compress.saliency`), instead of GMP.

    Example: ``{method: fairgrape, params: ['re:^layer\\d+\\..*conv\\d+\\.weight$'], sparsity: 0.8,
    steps: 5, batches: 8}``. ``snip`` and ``grasp`` prune once, over all ``params`` together,
    from the first ``batches`` training batches (default 4); ``fairgrape`` prunes every
    selected tensor to ``sparsity`` iteratively, importance recomputed on the masked model,
    with per-group importance over the training split's joint identity groups (every
    pattern of the ``group__*`` columns). Then the student is fine-tuned for ``epochs`` with
    the masks held. ``temperature`` (the authors' 200) belongs to ``grasp``.

    FairGRAPE's keys (:func:`~compress_gate.compress.saliency.prune_fairgrape`), with the
    values of ``procedure: project`` (the default) and ``procedure: authors`` (their released
    procedure, Bernardo1998/FairGRAPE b677eb9, with the paper's per-group importance;
    docs/compression.md lists every difference). A key given explicitly wins over the preset.

    ====================  ==============  ===============  =====================================
    key                   project         authors          meaning
    ====================  ==============  ===============  =====================================
    ``steps``             5               --               geometric schedule, T steps
    ``keep_per_iter``     --              0.9              s_t = min(1 − k^t, s), their count
    ``targets``           dense           per_iteration    target shares: once, or every step
    ``visits_per_choice`` 1               2                the authors' ``para_batch`` + 1
    ``scoring``           eval            train            the model's mode while scoring
    ``finetune_epochs``   none            3.0              epochs of fine-tuning between steps
    ``importance_share``  --              1.0              share of the training batches scored
    ``batches``           4               --               training batches scored per step
    ====================  ==============  ===============  =====================================

    Fine-tuning between steps uses ``lr``, ``optimizer`` and ``batch_size`` of the section and
    the task loss alone; its epochs are counted in the student's fine-tuning budget.
    """

    model_config = _Frozen
    method: Literal["fairgrape", "snip", "grasp"]
    params: tuple[str, ...] = Field(min_length=1)
    sparsity: float = Field(gt=0, lt=1, strict=True)
    batches: int | None = Field(None, ge=1, le=100000, strict=True)
    steps: int | None = Field(None, ge=1, le=100, strict=True)
    temperature: float | None = Field(None, gt=0, strict=True)
    procedure: Literal["project", "authors"] | None = None
    keep_per_iter: float | None = Field(None, gt=0, lt=1, strict=True)
    targets: Literal["dense", "per_iteration"] | None = None
    visits_per_choice: int | None = Field(None, ge=1, le=1000, strict=True)
    scoring: Literal["eval", "train"] | None = None
    finetune_epochs: float | None = Field(None, gt=0, le=1000, strict=True)
    importance_share: float | None = Field(None, gt=0, le=1, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _authors_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("procedure") != "authors":
            return data
        preset = dict(_AUTHORS_PROCEDURE)
        if "steps" in data:
            preset.pop("keep_per_iter")
        if "batches" in data:
            preset.pop("importance_share")
        return {**preset, **data}

    @model_validator(mode="after")
    def _method_keys(self) -> SaliencyConfig:
        if self.method != "fairgrape":
            for key in _FAIRGRAPE_KEYS:
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} applies to method 'fairgrape' only, not {self.method!r}; delete `{key}`")
        if self.temperature is not None and self.method != "grasp":
            raise ValueError(f"temperature applies to method 'grasp' only, not {self.method!r}; delete "
                             "`temperature`")
        if self.steps is not None and self.keep_per_iter is not None:
            raise ValueError(f"steps ({self.steps}) and keep_per_iter ({self.keep_per_iter}) are two schedules; "
                             "keep one of them")
        if self.batches is not None and self.importance_share is not None:
            raise ValueError(f"batches ({self.batches}) and importance_share ({self.importance_share}) both say how "
                             "much of the training split is scored; keep one of them")
        return self

    def scored_batches(self, n_batches: int) -> int:
        """Training batches per importance pass: ``ceil(importance_share · n_batches)``, else ``batches`` (4)."""
        if self.importance_share is not None:
            return max(1, math.ceil(self.importance_share * n_batches))
        return 4 if self.batches is None else self.batches


#: ``procedure: authors`` (SaliencyConfig's table); ``procedure`` itself is kept as given.
_AUTHORS_PROCEDURE: dict[str, Any] = {"keep_per_iter": 0.9, "targets": "per_iteration", "visits_per_choice": 2,
                                      "scoring": "train", "finetune_epochs": 3.0, "importance_share": 1.0}
_FAIRGRAPE_KEYS = ("steps", "procedure", "keep_per_iter", "targets", "visits_per_choice", "scoring",
                   "finetune_epochs", "importance_share")


class QATConfig(BaseModel):
    """Quantization-aware training (``quantization: qat``) inside the fine-tuning loop, SparseML's names.

    Example: ``{start_epoch: 7.0, disable_quantization_observer_epoch: 9.0}``. From the first
    step at or past ``start_epoch`` (default 0: the whole fine-tuning) the student's BatchNorms
    are folded into their convolutions (running statistics frozen from then on, as deployed)
    and it trains with torchao's fake quantization (INT8 per-channel symmetric weights, UINT8
    activations, ``X86InductorQuantizer``). From ``disable_quantization_observer_epoch`` on
    (default: never) the observed ranges, hence the scales, stop moving. Start QAT once the
    student has recovered from pruning: with BatchNorm folded it recovers far more slowly.
    """

    model_config = _Frozen
    start_epoch: float = Field(0.0, ge=0, strict=True)
    disable_quantization_observer_epoch: float | None = Field(None, gt=0, strict=True)

    @model_validator(mode="after")
    def _ordered(self) -> QATConfig:
        frozen = self.disable_quantization_observer_epoch
        if frozen is not None and not frozen > self.start_epoch:
            raise ValueError(f"disable_quantization_observer_epoch ({frozen}) must be greater than start_epoch "
                             f"({self.start_epoch})")
        return self


class TorchCompressionConfig(BaseModel):
    """The torch backend's ``compression:`` section: ``backend: torch``, fine-tuning (``epochs``, ``lr``,
    ``optimizer``, ``batch_size``), gradual ``pruning``, ``structured`` channel pruning,
    ``quantization`` (none, dynamic, static, qat) with its ``qat`` settings, ``distillation`` and ``saliency``.

    Example: ``{backend: torch, epochs: 4, pruning: {params: [__ALL_PRUNABLE__], final_sparsity: 0.8,
    end_epoch: 3, update_frequency: 0.5}, quantization: static}``
    """

    model_config = _Frozen
    backend: Literal["torch"]
    epochs: float | None = Field(None, gt=0, le=1000, strict=True)
    lr: float = Field(0.01, gt=0, le=10, strict=True)
    optimizer: Literal["sgd", "adam"] = "sgd"
    batch_size: int = Field(64, ge=1, le=65536, strict=True)
    pruning: GMPConfig | None = None
    structured: StructuredConfig | None = None
    quantization: Literal["none", "dynamic", "static", "qat"] = "none"
    qat: QATConfig | None = None
    distillation: DistillationConfig | None = None
    saliency: SaliencyConfig | None = None

    def resolved(self, base: Path, source: Path) -> TorchCompressionConfig:
        """Itself: the section names no file (the registry's contract,
        :data:`compress_gate.config.backends.Backend`)."""
        return self

    @model_validator(mode="after")
    def _compresses_something(self) -> TorchCompressionConfig:
        if (self.pruning is None and self.structured is None and self.quantization == "none"
                and self.distillation is None and self.saliency is None):
            raise ValueError("the torch backend has nothing to do: add `pruning`, `structured`, "
                             "`quantization: static|dynamic|qat`, `distillation` or `saliency`")
        if self.pruning is not None and self.saliency is not None:
            raise ValueError("`pruning` (GMP) and `saliency` both prune the weights; keep one of them")
        if self.qat is not None and self.quantization != "qat":
            raise ValueError(f"`qat` is set but quantization = {self.quantization!r}; set `quantization: qat`, or "
                             "delete `qat`")
        if (self.quantization == "qat" and self.distillation is not None
                and self.distillation.kind != "hinton"):
            raise ValueError(f"distillation kind {self.distillation.kind!r} hooks the student's layers, which QAT "
                             "replaces by its exported graph when it starts; use `kind: hinton` with "
                             "`quantization: qat`, or `quantization: static`")
        trains = (self.pruning is not None or self.structured is not None or self.distillation is not None
                  or self.saliency is not None or self.quantization == "qat")
        if trains and self.epochs is None:
            raise ValueError("`epochs` is required: pruning, structured pruning, distillation and QAT fine-tune "
                             "the student (e.g. `epochs: 10`)")
        if not trains and self.epochs is not None:
            raise ValueError("`epochs` is set but nothing is trained (post-training quantization only); "
                             "delete `epochs`, or add `pruning`, `structured` or `distillation`")
        if self.pruning is not None and self.epochs is not None and self.pruning.end_epoch >= self.epochs:
            raise ValueError(f"pruning.end_epoch ({self.pruning.end_epoch}) must be before the end of training "
                             f"(epochs = {self.epochs}): the schedule is stepped before each optimizer step, so "
                             "an end at the last epoch is never reached. Raise `epochs` or lower "
                             "`pruning.end_epoch`")
        qat = self.qat
        for key, epoch in (("start_epoch", qat and qat.start_epoch),
                           ("disable_quantization_observer_epoch", qat and qat.disable_quantization_observer_epoch)):
            if epoch is not None and self.epochs is not None and epoch >= self.epochs:
                raise ValueError(f"qat.{key} ({epoch}) must be before the end of training (epochs = {self.epochs}). "
                                 f"Raise `epochs` or lower `qat.{key}`")
        return self
