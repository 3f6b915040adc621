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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from compress_gate.models.training import Task

__all__ = ["distillation_loss", "combined_loss"]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float,
                      task: Task) -> torch.Tensor:
    """L_KD of the module docstring; the teacher side carries no gradient."""
    import torch.nn.functional as F

    from compress_gate.models._distill import binary_pairs

    student, teacher = student_logits, teacher_logits.detach()
    if task == "multilabel":
        student, teacher = binary_pairs(student), binary_pairs(teacher)
    distributions = student.numel() / student.shape[-1]
    kl = F.kl_div(F.log_softmax(student / temperature, dim=-1), F.log_softmax(teacher / temperature, dim=-1),
                  log_target=True, reduction="sum")
    return kl * temperature**2 / distributions


def combined_loss(task_loss: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor, *,
                  hardness: float, temperature: float, task: Task) -> torch.Tensor:
    """L = (1 − h) · task_loss + h · L_KD (module docstring)."""
    kd = distillation_loss(student_logits, teacher_logits, temperature=temperature, task=task)
    return (1.0 - hardness) * task_loss + hardness * kd
