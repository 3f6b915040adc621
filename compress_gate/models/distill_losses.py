"""Distillation losses compared by Blakeney et al. ("Simon Says"), as torch modules.

Each module maps (student, teacher) outputs to one scalar term, already multiplied by
its ``weight`` (the paper's default), to be added to the task loss:
``loss = task_loss + term(student_out, teacher_out)``. The teacher's tensors are
detached: no gradient reaches the teacher. This module imports torch; the package
``compress_gate.models`` does not import it.

- :class:`OutputKD`: Hinton et al. (2015), output (logit) KD.
- :class:`AttentionTransfer`: Zagoruyko & Komodakis (2017), activation-based AT, beta = 1000.
- :class:`SimilarityPreserving`: Tung & Mori (2019), SP, gamma = 3000.
- :class:`ContrastiveRepresentation`: Tian et al. (2020), CRD, weight 0.8; the in-batch
  InfoNCE variant (no memory bank).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from compress_gate.errors import InputError
from compress_gate.models.binary_pairs import binary_pairs

__all__ = ["OutputKD", "AttentionTransfer", "SimilarityPreserving", "ContrastiveRepresentation"]


def _pairs(student: torch.Tensor | Sequence[torch.Tensor], teacher: torch.Tensor | Sequence[torch.Tensor],
           what: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Matched (student, detached teacher) feature maps of the layers compared."""
    s = [student] if isinstance(student, torch.Tensor) else list(student)
    t = [teacher] if isinstance(teacher, torch.Tensor) else list(teacher)
    if len(s) != len(t) or not s:
        raise InputError(f"{what} got {len(s)} student and {len(t)} teacher feature maps; pass one or more, "
                         "paired layer by layer.")
    for j, (a, b) in enumerate(zip(s, t)):
        if a.shape[0] != b.shape[0] or a.dim() < 2:
            raise InputError(f"{what}: layer pair {j} has shapes {tuple(a.shape)} and {tuple(b.shape)}; both must "
                             "be (batch, ...) with the same batch.")
    return [(a, b.detach()) for a, b in zip(s, t)]


class OutputKD(nn.Module):
    r"""Hinton et al. (2015) output distillation, in the form of SparseML's ``DistillationModifier``.

    .. math:: L = w \cdot T^2 \cdot \frac{1}{D}\sum_d \mathrm{KL}\big(\mathrm{softmax}(z^t_d/T)
              \,\Vert\, \mathrm{softmax}(z^s_d/T)\big)

    over the D distributions of a batch: one per sample (multi-class) or, multilabel,
    one per (sample, attribute) through :func:`~compress_gate.models.binary_pairs.binary_pairs`,
    as the training loop feeds SparseML. Defaults: ``temperature=2.0``; ``weight=1.0``,
    which is this project's recipes' ``hardness: 0.5`` (SparseML returns
    :math:`(1-h)\,L_\mathrm{task} + h\,L_\mathrm{KD}
    = (1-h)(L_\mathrm{task} + \frac{h}{1-h} L_\mathrm{KD})`).
    Hinton et al. give no single default weight. Zero when the logits are equal.
    """

    def __init__(self, *, task: str, temperature: float = 2.0, weight: float = 1.0) -> None:
        super().__init__()
        if task not in ("multilabel", "multiclass"):
            raise InputError(f"task={task!r} is not a valid task. It should be one of ['multilabel', 'multiclass'].")
        self.task, self.temperature, self.weight = task, temperature, weight

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        if student_logits.shape != teacher_logits.shape:
            raise InputError(f"OutputKD: student logits {tuple(student_logits.shape)} and teacher logits "
                             f"{tuple(teacher_logits.shape)} must have the same shape.")
        s, t = student_logits, teacher_logits.detach()
        if self.task == "multilabel":
            s, t = binary_pairs(s), binary_pairs(t)
        temp = self.temperature
        kl = F.kl_div(F.log_softmax(s / temp, dim=-1), F.log_softmax(t / temp, dim=-1), log_target=True,
                      reduction="sum")
        return self.weight * temp**2 * kl / (s.numel() / s.shape[-1])


class AttentionTransfer(nn.Module):
    r"""Activation-based attention transfer (Zagoruyko & Komodakis, 2017).

    The attention map of a (B, C, H, W) activation is :math:`Q = \mathrm{mean}_c |A_c|^p`
    flattened to (B, HW) and L2-normalised per sample; for layer pairs j,

    .. math:: L = \frac{\beta}{2} \sum_j \mathrm{mean}_{b, hw}\big(Q^s_j - Q^t_j\big)^2

    the form of the authors' code (``at_loss``), for which their default
    :math:`\beta = 1000` (``weight``) was set; p = 2. Student and teacher layers of a
    pair need the same spatial size (channels may differ). Zero for equal activations.
    """

    def __init__(self, *, weight: float = 1000.0, p: int = 2) -> None:
        super().__init__()
        self.weight, self.p = weight, p

    def _attention(self, a: torch.Tensor) -> torch.Tensor:
        return F.normalize(a.abs().pow(self.p).mean(dim=1).flatten(1), dim=1)

    def forward(self, student_features: torch.Tensor | Sequence[torch.Tensor],
                teacher_features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for j, (s, t) in enumerate(_pairs(student_features, teacher_features, "AttentionTransfer")):
            if s.dim() != 4 or t.dim() != 4 or s.shape[2:] != t.shape[2:]:
                raise InputError(f"AttentionTransfer: layer pair {j} has shapes {tuple(s.shape)} and "
                                 f"{tuple(t.shape)}; both must be (B, C, H, W) with the same H and W.")
            total = total + (self._attention(s) - self._attention(t)).pow(2).mean()
        return self.weight / 2 * total


class SimilarityPreserving(nn.Module):
    r"""Similarity-preserving KD (Tung & Mori, 2019).

    Per layer pair, :math:`G = Q Q^\top` for the (B, ·) flattened activations Q, each row
    of G L2-normalised (:math:`\tilde G`); with batch size b,

    .. math:: L = \gamma \sum_j \frac{1}{b^2} \lVert \tilde G^t_j - \tilde G^s_j \rVert_F^2

    with the paper's :math:`\gamma = 3000` (``weight``). Widths and shapes may differ
    between student and teacher (only the b × b similarities are compared). Zero for
    equal activations.
    """

    def __init__(self, *, weight: float = 3000.0) -> None:
        super().__init__()
        self.weight = weight

    @staticmethod
    def _similarity(a: torch.Tensor) -> torch.Tensor:
        q = a.flatten(1)
        return F.normalize(q @ q.T, dim=1)

    def forward(self, student_features: torch.Tensor | Sequence[torch.Tensor],
                teacher_features: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for s, t in _pairs(student_features, teacher_features, "SimilarityPreserving"):
            total = total + (self._similarity(t) - self._similarity(s)).pow(2).sum() / s.shape[0] ** 2
        return self.weight * total


class ContrastiveRepresentation(nn.Module):
    r"""Contrastive representation distillation (Tian et al., 2020), in-batch InfoNCE variant.

    Linear heads embed the student's and the teacher's (B, ·) representations into
    ``feat_dim`` (128) dimensions, L2-normalised (CRD's ``Embed``): :math:`z^s_i, z^t_i`.
    The teacher's embedding of the same input is the positive; the other inputs of the
    batch are the negatives (CRD draws 16384 from a memory bank; this variant does not
    keep one). Contrasting both ways, as CRD's two-sided objective,

    .. math:: L = w \cdot \tfrac12 \big(\mathrm{CE}(S / \tau, I) + \mathrm{CE}(S^\top / \tau, I)\big),
              \quad S_{ij} = z^s_i \cdot z^t_j

    with CRD's :math:`\tau = 0.07` and weight :math:`w = \beta = 0.8`. The heads are
    parameters of this module: give them to the optimizer with the student's. It is not
    zero for identical inputs; it is lowest when each student row matches its own
    teacher row. Needs a batch of at least 2.
    """

    def __init__(self, student_dim: int, teacher_dim: int, *, feat_dim: int = 128, temperature: float = 0.07,
                 weight: float = 0.8) -> None:
        super().__init__()
        self.student_head = nn.Linear(student_dim, feat_dim)
        self.teacher_head = nn.Linear(teacher_dim, feat_dim)
        self.temperature, self.weight = temperature, weight

    def forward(self, student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
        pairs = _pairs(student_features, teacher_features, "ContrastiveRepresentation")
        if len(pairs) != 1:
            raise InputError(f"ContrastiveRepresentation compares one representation pair, got {len(pairs)}; pass "
                             "the student's and the teacher's penultimate features as two tensors.")
        s, t = pairs[0]
        if s.shape[0] < 2:
            raise InputError("ContrastiveRepresentation needs a batch of at least 2: the other samples of the "
                             "batch are the negatives.")
        zs = F.normalize(self.student_head(s.flatten(1)), dim=1)
        zt = F.normalize(self.teacher_head(t.flatten(1)), dim=1)
        logits = zs @ zt.T / self.temperature
        target = torch.arange(s.shape[0], device=s.device)
        return self.weight * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
