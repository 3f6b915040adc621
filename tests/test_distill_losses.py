"""Distillation losses: hand-computed values, zero (or lowest) for matching features, gradients,
and one SGD step that the term changes (it is wired into training)."""

import math

import pytest

pytest.importorskip("torch")  # needs torch: skipped in the core environment (make test-core)
import torch
from torch import nn

from compress_gate.errors import InputError
from compress_gate.models.distill_losses import (AttentionTransfer, ContrastiveRepresentation, OutputKD,
                                                 SimilarityPreserving)


class Tiny(nn.Module):
    """Two conv layers (the feature maps), a pooled embedding and a linear head."""

    def __init__(self, width: int, n_out: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.fc = nn.Linear(width, n_out)

    def forward(self, x):
        a1 = torch.relu(self.conv1(x))
        a2 = torch.relu(self.conv2(a1))
        embedding = a2.mean(dim=(2, 3))
        return [a1, a2], embedding, self.fc(embedding)


def test_output_kd_by_hand():
    # T = 1: p_teacher = softmax(ln 3, 0) = (3/4, 1/4), p_student = (1/2, 1/2)
    # KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.130812; one distribution, weight 1
    kd = OutputKD(task="multiclass", temperature=1.0)
    value = kd(torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3), 0.0]]))
    assert value.item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    # multilabel: logit z -> pair (z, 0), the same two distributions per attribute, mean over 2 attributes
    ml = OutputKD(task="multilabel", temperature=1.0)
    assert ml(torch.zeros(1, 2), torch.tensor([[math.log(3), 0.0]])).item() == pytest.approx(value.item() / 2)


def test_attention_transfer_by_hand():
    # Q_s = normalize(mean_c A^2) = (1, 0), Q_t = (0, 1): mean of squared differences (1 + 1)/2 = 1 -> 1000/2 * 1
    at = AttentionTransfer()
    assert at(torch.tensor([[[[1.0, 0.0]]]]), torch.tensor([[[[0.0, 2.0]]]])).item() == pytest.approx(500.0)


def test_similarity_preserving_by_hand():
    # student rows (1,0), (0,1): G = I. teacher rows (1,0), (1,0): G = all ones, rows -> (1/√2, 1/√2)
    # ||I - G̃||² = 2 (1 - 1/√2)² + 2 (1/√2)² = 4 - 2√2; / b² = 4 -> 1 - √2/2; * 3000
    sp = SimilarityPreserving()
    value = sp(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert value.item() == pytest.approx(3000 * (1 - math.sqrt(2) / 2))


@pytest.mark.parametrize("loss", [OutputKD(task="multiclass"), OutputKD(task="multilabel"), AttentionTransfer(),
                                  SimilarityPreserving()], ids=["kd-mc", "kd-ml", "at", "sp"])
def test_zero_for_identical_outputs(loss):
    torch.manual_seed(0)
    x = torch.randn(5, 3, 4, 4) if not isinstance(loss, OutputKD) else torch.randn(5, 3)
    assert loss(x, x.clone()).item() == pytest.approx(0.0, abs=1e-10)
    assert loss(x, torch.randn_like(x)).item() > 1e-3


def test_contrastive_is_lowest_when_each_row_matches_its_own():
    torch.manual_seed(0)
    crd = ContrastiveRepresentation(6, 6)
    crd.teacher_head.load_state_dict(crd.student_head.state_dict())     # one embedding for both
    x = torch.randn(8, 6)
    matched = crd(x, x).item()
    assert matched < crd(x, x[torch.tensor([1, 0, 3, 2, 5, 4, 7, 6])]).item()
    assert matched < 0.8 * math.log(8)                                  # below chance (uniform logits)


def test_contrastive_needs_two_samples():
    with pytest.raises(InputError, match="batch of at least 2"):
        ContrastiveRepresentation(3, 3)(torch.randn(1, 3), torch.randn(1, 3))


def test_mismatched_inputs_are_input_errors():
    with pytest.raises(InputError, match="same H and W"):
        AttentionTransfer()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2))
    with pytest.raises(InputError, match="2 student and 1 teacher"):
        SimilarityPreserving()([torch.randn(2, 3)] * 2, [torch.randn(2, 3)])
    with pytest.raises(InputError, match="same shape"):
        OutputKD(task="multiclass")(torch.randn(2, 3), torch.randn(2, 4))


VARIANTS = {
    "kd": (lambda: OutputKD(task="multiclass"), lambda s, t: (s[2], t[2])),
    "at": (lambda: AttentionTransfer(), lambda s, t: (s[0], t[0])),
    "sp": (lambda: SimilarityPreserving(), lambda s, t: (s[0], t[0])),
    "crd": (lambda: ContrastiveRepresentation(4, 6), lambda s, t: (s[1], t[1])),
}


def one_step(name: str | None):
    """Student (width 4) after one SGD step on cross-entropy, plus the variant's term when named."""
    torch.manual_seed(0)
    student, teacher = Tiny(4), Tiny(6)
    x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
    loss_fn = VARIANTS[name][0]() if name else None
    params = list(student.parameters()) + (list(loss_fn.parameters()) if loss_fn else [])
    optimizer = torch.optim.SGD(params, lr=0.05)
    out = student(x)
    loss = nn.functional.cross_entropy(out[2], y)
    if loss_fn is not None:
        with torch.no_grad():
            teacher_out = teacher(x)
        loss = loss + loss_fn(*VARIANTS[name][1](out, teacher_out))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return student, teacher


@pytest.mark.parametrize("name", VARIANTS)
def test_term_has_gradients_for_the_student_only(name):
    torch.manual_seed(1)
    student, teacher = Tiny(4), Tiny(6)
    x = torch.randn(8, 1, 6, 6)
    loss_fn = VARIANTS[name][0]()
    loss_fn(*VARIANTS[name][1](student(x), teacher(x))).backward()
    assert student.conv1.weight.grad is not None and student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())             # the teacher's outputs are detached


@pytest.mark.parametrize("name", VARIANTS)
def test_one_sgd_step_with_the_term_moves_the_student_differently(name):
    plain, _ = one_step(None)
    distilled, _ = one_step(name)
    torch.manual_seed(0)
    start = Tiny(4)                                                       # the initial weights of both
    moved = max((a - b).abs().max().item() for a, b in zip(distilled.parameters(), plain.parameters()))
    assert moved > 1e-6
    assert any((a - b).abs().max().item() > 0 for a, b in zip(plain.parameters(), start.parameters()))
