"""``TorchCompressor``: the maintained torch backend behind the ``Compressor`` seam.

``compress`` (on a deep copy of the teacher, in this order): structured channel
pruning with Torch-Pruning (``structured``), then fine-tuning with
:func:`.finetune.fine_tune`, during which gradual magnitude pruning (``pruning``)
follows its schedule with unstructured or N:M masks and distillation
(``distillation``) mixes the teacher in. ``export`` writes the artefact each engine
runs and checks each one's parity:

==========================  ==============================================  =============================
file                        what                                            engines
==========================  ==============================================  =============================
``student.onnx``            the student, FP32 (pruned channels removed)     deepsparse, onnxruntime-cuda,
                                                                            onnxruntime-tensorrt; and
                                                                            onnxruntime without quantization
``student.ort.onnx``        ``quantization: static``: QDQ INT8 (calibrated  onnxruntime
                            on ``calib``); ``dynamic``: dynamic-range INT8;
                            ``qat``: the QAT student converted to QDQ INT8
==========================  ==============================================  =============================

``static`` and ``dynamic`` are post-training (Hooker et al.'s two ways) and leave
``CompressionResult.quantized`` ``False``; ``qat`` (:mod:`.qat`, torchao) trains with
fake quantization, sets it ``True`` and returns a :class:`.qat.QATStudent`, whose FP32
artefact is its float weights and whose INT8 graph is held to ``quantized_parity_atol``
against the fake-quantized torch model.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from compress_gate.compress.backend import CompressionResult
from compress_gate.compress.export import PARITY_ATOL_QUANTIZED
from compress_gate.errors import InputError

if TYPE_CHECKING:
    import torch

    from compress_gate.compress.torch_backend.masks import MaskSet
    from compress_gate.compress.torch_backend.schedule import GMPSchedule
    from compress_gate.compress.torch_backend.structured import ChannelPruning
    from compress_gate.config.run import ExportConfig
    from compress_gate.config.torch_backend import GMPConfig, TorchCompressionConfig
    from compress_gate.models.checkpoint import EpochCheckpoint
    from compress_gate.models.device import Placement
    from compress_gate.models.training import ProgressCallback, Task

__all__ = ["TorchCompressor", "PARITY_ATOL_REQUANTIZED", "make_torch_compressor"]

#: Largest |score difference| accepted between a post-training INT8 graph and the FP32 torch
#: student (``export.requantized_parity_atol``: post-training quantization moves scores). The QAT
#: graph against the fake-quantized model is held to ``export.quantized_parity_atol``
#: (:data:`compress_gate.compress.export.PARITY_ATOL_QUANTIZED`), the same names as SparseML's.
PARITY_ATOL_REQUANTIZED = 0.25


class TorchCompressor:
    """Compress with the ``compression: {backend: torch, ...}`` section ``config``.

    After ``compress``, ``channel_pruning`` holds the parameter/MAC counts before and
    after structured pruning (``None`` without it); after ``export``, ``parity`` maps
    each written file name to ``{"max_score_difference", "tolerance", "reference"}``.
    """

    name = "torch"

    def __init__(self, config: TorchCompressionConfig, *, parity_atol: float = 1e-4,
                 requantized_parity_atol: float = PARITY_ATOL_REQUANTIZED,
                 quantized_parity_atol: float = PARITY_ATOL_QUANTIZED) -> None:
        self.config = config
        self.parity_atol, self.requantized_parity_atol = parity_atol, requantized_parity_atol
        self.quantized_parity_atol = quantized_parity_atol
        self.channel_pruning: ChannelPruning | None = None
        self.parity: dict[str, dict[str, Any]] = {}

    @property
    def needs_groups(self) -> bool:
        """Whether ``compress`` needs ``(inputs, targets, groups)`` batches (FairGRAPE's joint groups)."""
        return self.config.saliency is not None and self.config.saliency.method == "fairgrape"

    def check_recipe(self) -> None:
        """Nothing beyond the config model's validation: the section is checked when the recipe loads."""

    def run_files(self) -> dict[str, str]:
        """None: the recipe's ``compression:`` section is all the backend runs."""
        return {}

    def check_students(self, sparsities: Sequence[float], masks: Sequence[str], *, source: str | Path) -> None:
        """Students set ``pruning.final_sparsity`` (and ``mask``): a section without ``pruning``, or
        sparsities asked of a recipe whose own mask is N:M (its sparsity is fixed), are refused."""
        from compress_gate.config.torch_backend import parse_nm

        pruning = self.config.pruning
        if pruning is None:
            raise InputError(f"{source}: a sweep sets `compression.pruning.final_sparsity` (and `mask`), but the "
                             "recipe has no `compression.pruning` section. Add one (docs/recipe.md, the torch "
                             "backend).")
        if sparsities and parse_nm(pruning.mask) is not None:
            raise InputError(f"{source}: --sparsity sets `compression.pruning.final_sparsity`, but the recipe's "
                             f"`compression.pruning.mask` is {pruning.mask!r}, whose sparsity is fixed at 1 - N/M. "
                             "Set `mask: unstructured` in the recipe (the N:M students then come from --mask), or "
                             "drop --sparsity.")

    def student_compression(self, sparsity: float, *, mask: str | None = None,
                            source: str | Path) -> dict[str, Any]:
        """The section with ``pruning.final_sparsity`` (and ``pruning.mask``) set."""
        raw = self.config.model_dump(mode="json", exclude_none=True, by_alias=True)
        raw["pruning"]["final_sparsity"] = sparsity
        if mask is not None:
            raw["pruning"]["mask"] = mask
        return raw

    def compress(self, teacher: torch.nn.Module, loader: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
                 task: Task, seed: int, progress: ProgressCallback | None = None,
                 checkpoint: EpochCheckpoint | None = None, placement: Placement | None = None) -> CompressionResult:
        """Compress a copy of ``teacher`` (not modified) and report the sparsity it reached.

        ``sparsity`` is keyed by the pruned weights' names (the ``pruning.params`` or
        ``saliency.params`` matches), ``overall_sparsity`` pools them, ``target_sparsity`` is
        ``pruning.final_sparsity`` or ``saliency.sparsity``; without either they are ``{}``,
        ``nan``, ``nan``. With ``saliency: {method: fairgrape}`` the loader's batches must be
        ``(inputs, targets, groups)`` (:attr:`needs_groups`); the group column is dropped for
        fine-tuning. ``epochs`` of the result counts every epoch the student trained: the
        final fine-tuning and FairGRAPE's ``finetune_epochs`` between its steps. With
        ``quantization: qat`` the model is a :class:`.qat.QATStudent` and ``quantized`` is ``True``.
        ``checkpoint``: the final fine-tuning saves and resumes there
        (:func:`.finetune.fine_tune`); everything before it (structured pruning, saliency
        pruning with FairGRAPE's fine-tuning between its steps) is deterministic and is redone.
        ``placement`` (default the CPU): the student, the distillation teacher and the batches
        live on its device from the start (masks are made there); the final fine-tuning runs
        under its autocast. The result's model stays on that device.

        Raises
        ------
        InputError
            A bad loader, params that match nothing, N:M on weights whose input
            channels are not a multiple of M, a missing Torch-Pruning install,
            QAT without torchao/onnxscript or with a ``qat.start_epoch`` no step reaches.
        RuntimeFailure
            Training diverged.
        """
        import torch
        import yaml

        from compress_gate.compress.torch_backend.finetune import fine_tune
        from compress_gate.compress.torch_backend.qat import FakeQuantization
        from compress_gate.compress.torch_backend.structured import prune_channels
        from compress_gate.config.torch_backend import QATConfig
        from compress_gate.models.device import cpu_placement

        cfg, gmp = self.config, self.config.pruning
        placement = placement or cpu_placement()
        loader = placement.batches(loader)
        torch.manual_seed(seed)
        student = copy.deepcopy(teacher).to(placement.device).eval()
        frozen_teacher = None
        if cfg.distillation is not None:
            frozen_teacher = copy.deepcopy(teacher).to(placement.device).eval()
            for parameter in frozen_teacher.parameters():
                parameter.requires_grad_(False)
        self.channel_pruning = None
        if cfg.structured is not None:
            example = _first_inputs(loader)[:1]
            self.channel_pruning = prune_channels(student, example, ratio=cfg.structured.ratio,
                                                  importance=cfg.structured.importance,
                                                  round_to=cfg.structured.round_to)
        masks, schedule = _gmp_masks(student, gmp, cfg.epochs, len(loader)) if gmp is not None else (None, None)
        between_steps = 0.0
        if cfg.saliency is not None:
            masks, between_steps = _saliency_masks(student, loader, cfg, task=task, seed=seed)
            loader = _TwoItems(loader)
        qat = None
        if cfg.quantization == "qat":
            qat_config = cfg.qat or QATConfig()
            qat = FakeQuantization(qat_config, input_shape=tuple(_first_inputs(loader).shape[1:]))
            _check_qat_starts(qat_config.start_epoch, cfg.epochs, len(loader))  # type: ignore[arg-type]
        if cfg.epochs is not None:  # set exactly when something is trained (the config checks it)
            fine_tune(student, loader, task=task, epochs=cfg.epochs, lr=cfg.lr, seed=seed, optimizer=cfg.optimizer,
                      teacher=frozen_teacher, distillation=cfg.distillation, schedule=schedule, masks=masks,
                      qat=qat, progress=progress, checkpoint=checkpoint, placement=placement)
        with torch.no_grad():
            counts = {name: (int((p == 0).sum()), p.numel()) for name, p in (masks.params if masks else {}).items()}
        total = sum(size for _, size in counts.values())
        return CompressionResult(
            model=qat.finish() if qat is not None else student.eval(),
            sparsity={name: zeros / size for name, (zeros, size) in counts.items()},
            overall_sparsity=sum(z for z, _ in counts.values()) / total if total else math.nan,
            target_sparsity=(gmp.final_sparsity if gmp is not None
                             else cfg.saliency.sparsity if cfg.saliency is not None else math.nan),
            quantized=qat is not None, distilled=cfg.distillation is not None, epochs=float(cfg.epochs or 0.0) + between_steps,
            recipe=yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))

    def export(self, result: CompressionResult, directory: Path, *, sample: np.ndarray, task: Task,
               calib: np.ndarray | None) -> dict[str, Path]:
        """Write the student's artefacts into ``directory``; returns engine kind -> artefact.

        ``student.onnx`` (FP32, pruned channels removed) for DeepSparse, ONNX Runtime's CUDA and
        TensorRT providers, and ONNX Runtime when there is no quantization; with
        ``quantization``, ``student.ort.onnx`` (QDQ INT8: static, dynamic, or the QAT student)
        for ONNX Runtime.

        Parity is checked on ``sample`` (N, C, H, W): the FP32 graph within
        ``parity_atol`` of the torch student, a post-training INT8 graph within
        ``requantized_parity_atol``, the QAT INT8 graph within ``quantized_parity_atol`` of the
        fake-quantized model. ``calib`` calibrates static quantization.

        Raises
        ------
        InputError
            ``sample`` is not a finite (N, C, H, W) batch; static quantization without ``calib``.
        RuntimeFailure
            An exporter or quantizer failed, or an artefact's parity exceeds its tolerance.
        """
        from compress_gate.compress.backend import write_parity
        from compress_gate.compress.export import check_parity
        from compress_gate.compress.torch_backend.export import export_fp32
        from compress_gate.compress.torch_backend.qat import export_qat_int8
        from compress_gate.compress.torch_backend.quantize import quantize_dynamic_int8, quantize_static_int8

        probe = np.asarray(sample)
        if probe.ndim != 4 or probe.shape[0] == 0:
            raise InputError(f"export sample has shape {probe.shape}; give a non-empty (N, C, H, W) batch.")
        directory = Path(directory)
        self.parity = {}

        def check(model: torch.nn.Module, path: Path, atol: float, reference: str) -> None:
            difference = check_parity(model, path, probe, task=task, atol=atol)
            self.parity[path.name] = {"max_score_difference": difference, "tolerance": atol, "reference": reference}

        quantization = self.config.quantization
        student = result.model.float_model if quantization == "qat" else result.model
        fp32 = export_fp32(student, directory / "student.onnx", input_shape=probe.shape[1:], task=task)
        check(student, fp32, self.parity_atol,
              "student (torch, FP32" + ("; the QAT weights without fake quantization)" if quantization == "qat"
                                         else ")"))
        artefacts = {"onnxruntime": fp32, "deepsparse": fp32, "onnxruntime-cuda": fp32, "onnxruntime-tensorrt": fp32}
        if quantization == "qat":
            int8 = export_qat_int8(result.model, directory / "student.ort.onnx", input_shape=probe.shape[1:],
                                   task=task)
            check(result.model, int8, self.quantized_parity_atol, "student (torch, fake-quantized QAT model)")
            artefacts["onnxruntime"] = int8
        elif quantization != "none":
            target = directory / "student.ort.onnx"
            int8 = (quantize_static_int8(fp32, target, calib) if quantization == "static"
                    else quantize_dynamic_int8(fp32, target))
            check(student, int8, self.requantized_parity_atol,
                  f"student (torch, FP32; the graph is {quantization} INT8)")
            artefacts["onnxruntime"] = int8
        write_parity(directory, self.parity)
        return artefacts


def make_torch_compressor(config: TorchCompressionConfig, export: ExportConfig) -> TorchCompressor:
    """The registry's factory: parity tolerances from the recipe's ``export`` section.

    The FP32 graph is held to ``parity_atol``; an INT8 graph (ONNX Runtime's quantizer on the
    FP32 export, as for the SparseML backend's QDQ graph) to ``requantized_parity_atol``; the
    QAT graph (against the fake-quantized model, as SparseML's converted QAT graph) to
    ``quantized_parity_atol``.
    """
    return TorchCompressor(config, parity_atol=export.parity_atol,
                           requantized_parity_atol=export.requantized_parity_atol,
                           quantized_parity_atol=export.quantized_parity_atol)


def _gmp_masks(student: torch.nn.Module, gmp: GMPConfig, epochs: float | None, steps_per_epoch: int
               ) -> tuple[MaskSet, GMPSchedule]:
    """The masks of the weights ``gmp.params`` matches in ``student`` (unstructured or N:M) and the
    gradual schedule that prunes them; InputError when the schedule cannot end within ``epochs``."""
    from compress_gate.compress.torch_backend.masks import MaskSet, match_params
    from compress_gate.compress.torch_backend.schedule import GMPSchedule
    from compress_gate.config.torch_backend import parse_nm

    def new_schedule() -> GMPSchedule:
        return GMPSchedule(init_sparsity=gmp.init_sparsity, final_sparsity=gmp.final_sparsity,
                           start_epoch=gmp.start_epoch, end_epoch=gmp.end_epoch,
                           update_frequency=gmp.update_frequency, inter_func=gmp.inter_func)

    masks = MaskSet(match_params(student, gmp.params), parse_nm(gmp.mask))
    _check_schedule_ends(new_schedule(), epochs, steps_per_epoch, gmp.end_epoch)  # type: ignore[arg-type]
    return masks, new_schedule()


def _check_schedule_ends(schedule: GMPSchedule, epochs: float, steps_per_epoch: int, end_epoch: float) -> None:
    """Dry-run ``schedule`` over the training steps; InputError, before any training, if it never ends."""
    from compress_gate.compress.torch_backend.schedule import step_epoch

    for step in range(math.ceil(epochs * steps_per_epoch)):
        schedule.step(step_epoch(step, steps_per_epoch))
    if not schedule.ended:
        raise InputError(f"compression.pruning: the schedule cannot reach end_epoch = {end_epoch} within epochs = "
                         f"{epochs}: with {steps_per_epoch} steps per epoch it is never consulted there. Lower "
                         "`pruning.end_epoch` or raise `epochs`.")


def _saliency_masks(student: torch.nn.Module, loader: Any, cfg: TorchCompressionConfig, *, task: Task,
                    seed: int) -> tuple[Any, float]:
    """Prune ``student`` in place with ``cfg.saliency``; a :class:`.masks.MaskSet` holding its masks
    and the epochs fine-tuned between FairGRAPE's steps.

    SNIP and GraSP see the first ``batches`` batches once; FairGRAPE scores
    ``saliency.scored_batches(len(loader))`` batches per step with the loader's group column
    (its joint groups) and, with ``finetune_epochs``, fine-tunes the student between steps
    (task loss, the section's ``lr`` and ``optimizer``, masks held).
    """
    from compress_gate.compress.saliency import PRUNERS
    from compress_gate.compress.torch_backend.finetune import fine_tune

    saliency = cfg.saliency
    assert saliency is not None
    options: dict[str, Any] = {key: getattr(saliency, key) for key in (
        "steps", "temperature", "keep_per_iter", "targets", "visits_per_choice", "scoring")
        if getattr(saliency, key) is not None}
    trained = [0.0]
    if saliency.finetune_epochs is not None:
        def between_steps(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
            fine_tune(model, _TwoItems(loader), task=task, epochs=saliency.finetune_epochs, lr=cfg.lr,
                      seed=seed, optimizer=cfg.optimizer, masks=_held(model, masks))
            trained[0] += saliency.finetune_epochs
        options["finetune"] = between_steps
    found = PRUNERS[saliency.method](student, loader, sparsity=saliency.sparsity, params=saliency.params,
                                     task=task, seed=seed, batches=saliency.scored_batches(len(loader)), **options)
    return _held(student, found), trained[0]


def _held(model: torch.nn.Module, masks: dict[str, torch.Tensor]) -> Any:
    """A :class:`.masks.MaskSet` holding ``masks`` fixed (no schedule ever calls its ``update``)."""
    from compress_gate.compress.torch_backend.masks import MaskSet

    held = MaskSet({name: param for name, param in model.named_parameters() if name in masks})
    held.masks = masks
    return held


class _TwoItems:
    """A view of a loader yielding ``(inputs, targets)`` whatever extra items its batches carry."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        return (tuple(batch[:2]) for batch in self.loader)


def _check_qat_starts(start_epoch: float, epochs: float, steps_per_epoch: int) -> None:
    """InputError, before any training, when no training step's epoch reaches ``qat.start_epoch``."""
    from compress_gate.compress.torch_backend.schedule import step_epoch

    last = step_epoch(math.ceil(epochs * steps_per_epoch) - 1, steps_per_epoch)
    if last < start_epoch:
        raise InputError(f"compression.qat.start_epoch = {start_epoch} is never reached: with {steps_per_epoch} "
                         f"steps per epoch the last training step starts at epoch {last:g} (epochs = {epochs}). "
                         "Lower `qat.start_epoch` or raise `epochs`.")


def _first_inputs(loader: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    for batch in loader:
        return batch[0]
    raise InputError("the training loader yields no batches: give it at least one sample.")
