"""Hinton knowledge distillation, with the loss SparseML's ``DistillationModifier`` computes.

.. math::

    L = (1 - h)\\,L_{\\mathrm{task}} + h\\,L_{\\mathrm{KD}}, \\qquad
    L_{\\mathrm{KD}} = \\frac{T^2}{n} \\sum \\mathrm{KL}\\big(\\mathrm{softmax}(z_t/T) \\,\\|\\,
    \\mathrm{softmax}(z_s/T)\\big)

with hardness h, temperature T, KL summed over the batch and n the number of
distributions compared (SparseML's ``kl_logsoftmax``). Multiclass: one softmax over
the classes per sample (n = B). Multilabel: each logit z becomes the pair (z, 0),
whose softmax is (sigmoid(z), 1 − sigmoid(z)), so the term is the mean binary KL per
attribute (n = B · K), as in the SparseML backend.

The other kinds of ``distillation:`` (attention transfer, similarity-preserving KD, CRD)
add a feature term to the task loss: :class:`FeatureDistiller` says which features.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from compress_gate.config.torch_backend import DistillationConfig
    from compress_gate.models.training import Task

__all__ = ["distillation_loss", "combined_loss", "FeatureDistiller"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float,
                      task: Task) -> torch.Tensor:
    r"""Hinton's distillation term, as SparseML's ``kl_logsoftmax``: the teacher side carries no gradient.

    .. math:: L_{\mathrm{KD}} = \frac{T^2}{n} \sum \mathrm{KL}\big(\mathrm{softmax}(z_t/T) \,\|\,
              \mathrm{softmax}(z_s/T)\big)

    with n the number of distributions compared: one softmax over the classes per sample for
    multi-class (n = B); for multi-label each logit z becomes the pair (z, 0), whose softmax is
    (sigmoid(z), 1 − sigmoid(z)), so the term is the mean binary KL per attribute (n = B · K).
    """
    import torch.nn.functional as F

    from compress_gate.models.binary_pairs import binary_pairs

    student, teacher = student_logits, teacher_logits.detach()
    if task == "multilabel":
        student, teacher = binary_pairs(student), binary_pairs(teacher)
    distributions = student.numel() / student.shape[-1]
    kl = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                  log_target=True, reduction="sum")
    return kl * temperature**2 / distributions


def combined_loss(task_loss: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                  hardness: float, temperature: float, task: Task) -> torch.Tensor:
    """L = (1 − h) · task_loss + h · L_KD, with h = ``hardness`` and L_KD = :func:`distillation_loss`
    (T² · mean KL of the temperature-``T`` softmaxes, teacher to student; per attribute for multi-label)."""
    kd = distillation_loss(student_logits, teacher_logits, temperature=temperature, task=task)
    return (1.0 - hardness) * task_loss + hardness * kd


class FeatureDistiller:
    """The loss term of a ``distillation: {kind: ...}`` section, with its feature hooks.

    Which features (forward hooks on the same module names in teacher and student, so
    a structured-pruned student with fewer channels still pairs up):

    - ``attention``: the output of every feature stage (``model.layers``; default the
      top-level ``layer<k>`` modules: the ResNet's stages, MobileNetV1's blocks), :class:`~compress_gate.models.distill_losses.AttentionTransfer`;
    - ``similarity``: the last ``layer<k>``'s output (Tung & Mori's last group),
      :class:`~compress_gate.models.distill_losses.SimilarityPreserving`;
    - ``crd``: the input of the classifier (``model.head``, default ``fc``: pooled, flattened features),
      :class:`~compress_gate.models.distill_losses.ContrastiveRepresentation`, whose two
      linear heads project each side to ``feat_dim`` (so channel counts may differ);
      train them with the student (:meth:`parameters`). A batch of one sample has no
      negatives, so its CRD term is 0.
    - ``hinton``: no hooks; :func:`combined_loss` on the logits.

    ``loss(task_loss, inputs, student_logits)`` must follow the student's forward on
    ``inputs``: it reads the hooked student features, runs the teacher (no gradient) and
    returns the recipe's total loss. ``close()`` removes the hooks.
    """

    def __init__(self, config: DistillationConfig, student: torch.nn.Module, teacher: torch.nn.Module, *,
                 task: Task) -> None:
        from compress_gate.errors import InputError
        from compress_gate.models import distill_losses as losses

        self.config, self.teacher, self.task = config, teacher, task
        self._seen: dict[str, dict[str, torch.Tensor]] = {"student": {}, "teacher": {}}
        self._hooks: list[Any] = []
        self.layers = _feature_layers(config.kind, student)
        missing = [name for name in self.layers if name not in dict(teacher.named_modules())]
        if missing:
            raise InputError(f"compression.distillation.kind = {config.kind!r}: the teacher has no module "
                             f"{missing}; distil between models of the same architecture.")
        for side, model in (("student", student), ("teacher", teacher)):
            modules = dict(model.named_modules())
            for name in self.layers:
                self._hooks.append(_record(modules[name], self._seen[side], name, before=config.kind == "crd"))
        self.term: torch.nn.Module | None = None
        if config.kind == "attention":
            self.term = losses.AttentionTransfer(weight=config.weight)
        elif config.kind == "similarity":
            self.term = losses.SimilarityPreserving(weight=config.weight)
        elif config.kind == "crd":
            dims = (student.get_submodule(self.layers[0]).in_features,  # type: ignore[union-attr]
                    teacher.get_submodule(self.layers[0]).in_features)
            self.term = losses.ContrastiveRepresentation(*dims, feat_dim=config.feat_dim,
                                                         temperature=config.temperature, weight=config.weight)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable parameters of the term (CRD's heads; none for the other kinds)."""
        return list(self.term.parameters()) if self.term is not None else []

    def loss(self, task_loss: torch.Tensor, inputs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        """The total loss of the class docstring for one batch."""
        import torch

        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        cfg = self.config
        if cfg.kind == "hinton":
            return combined_loss(task_loss, student_logits, teacher_logits,  # the config fills both for hinton
                                 hardness=cfg.hardness, temperature=cfg.temperature,  # type: ignore[arg-type]
                                 task=self.task)
        if cfg.kind == "crd" and inputs.shape[0] < 2:
            return task_loss
        student = [self._seen["student"][name] for name in self.layers]
        teacher = [self._seen["teacher"][name] for name in self.layers]
        if cfg.kind == "crd":
            return task_loss + self.term(student[0], teacher[0])  # type: ignore[misc]
        return task_loss + self.term(student, teacher)  # type: ignore[misc]

    def close(self) -> None:
        """Remove every hook (the student is exported without them)."""
        for hook in self._hooks:
            hook.remove()
        self._hooks = []


def _feature_layers(kind: str, model: torch.nn.Module) -> list[str]:
    """Module paths whose features ``kind`` compares (:class:`FeatureDistiller`).

    The feature stages are ``model.feature_layers`` (the recipe's ``model.layers``) when the
    model carries them, else its top-level ``layer<k>`` modules; CRD's is the head,
    ``model.head_path`` (the recipe's ``model.head``) or ``fc``.
    """
    from torch import nn

    from compress_gate.errors import InputError

    if kind == "hinton":
        return []
    if kind == "crd":
        head = getattr(model, "head_path", None) or "fc"
        if not isinstance(dict(model.named_modules()).get(head), nn.Linear):
            raise InputError(f"compression.distillation.kind = 'crd' needs the classifier to be an nn.Linear at "
                             f"`model.head` (now {head!r}); name it with `model.head`, or use another kind.")
        return [head]
    stages = list(getattr(model, "feature_layers", None) or ())
    if not stages:
        stages = sorted((name for name, _ in model.named_children() if re.fullmatch(r"layer\d+", name)),
                        key=lambda name: int(name[5:]))
    if not stages:
        raise InputError(f"compression.distillation.kind = {kind!r} needs the model's feature stages: list their "
                         "module paths in `model.layers` (default: top-level modules named `layer1`, `layer2`, ...).")
    return stages if kind == "attention" else stages[-1:]


def _record(module: torch.nn.Module, into: dict[str, torch.Tensor], name: str, *, before: bool) -> Any:
    """Hook storing ``module``'s output (or, ``before``, its first input) in ``into[name]``."""
    if before:
        return module.register_forward_pre_hook(lambda _m, args: into.__setitem__(name, args[0]))
    return module.register_forward_hook(lambda _m, _args, out: into.__setitem__(name, out))
