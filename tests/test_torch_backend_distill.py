"""Hinton distillation in the torch backend's training loop."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.torch_backend.distill import combined_loss, distillation_loss  # noqa: E402
from compress_gate.compress.torch_backend.finetune import fine_tune  # noqa: E402
from compress_gate.config.torch_backend import DistillationConfig  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402


def test_distillation_loss_multiclass_hand_computed():
    # T = 1, one sample: p_t = softmax(0, ln 3) = (1/4, 3/4), p_s = softmax(0, 0) = (1/2, 1/2)
    # KL(p_t || p_s) = 1/4 ln(1/2) + 3/4 ln(3/2)
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[0.0, math.log(3.0)]])
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert float(distillation_loss(student, teacher, temperature=1.0, task="multiclass")) == pytest.approx(expected)
    # T = 2 scales logits by 1/2 and the KL by T^2 = 4: p_t = softmax(0, ln 3 / 2) = (1/(1+√3), √3/(1+√3))
    a = 1 / (1 + math.sqrt(3))
    expected_t2 = 4 * (a * math.log(2 * a) + (1 - a) * math.log(2 * (1 - a)))
    assert float(distillation_loss(student, teacher, temperature=2.0, task="multiclass")) == pytest.approx(
        expected_t2)


def test_distillation_loss_multilabel_is_mean_binary_kl():
    # two attributes, one sample: student logits 0 (p = 1/2); teacher logits ln 3 (p = 3/4) and 0 (p = 1/2)
    # binary KLs: 3/4 ln(3/2) + 1/4 ln(1/2), and 0; mean over n = 2 distributions
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[math.log(3.0), 0.0]])
    expected = (0.75 * math.log(1.5) + 0.25 * math.log(0.5)) / 2
    assert float(distillation_loss(student, teacher, temperature=1.0, task="multilabel")) == pytest.approx(expected)


def test_combined_loss_weights_like_sparseml():
    # (1 - h) * task + h * kd with kd = 0 (equal logits): 0.75 * 2
    logits = torch.tensor([[1.0, 2.0]])
    assert float(combined_loss(torch.tensor(2.0), logits, logits, hardness=0.25, temperature=2.0,
                               task="multiclass")) == pytest.approx(1.5)


def _data():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(32, 6, generator=generator)
    targets = torch.randint(0, 3, (32,), generator=generator)
    return [(inputs[i:i + 8], targets[i:i + 8]) for i in range(0, 32, 8)]


def _train(distillation, teacher):
    torch.manual_seed(1)
    student = torch.nn.Linear(6, 3)
    fine_tune(student, _data(), task="multiclass", epochs=2, lr=0.1, seed=0, teacher=teacher,
              distillation=distillation)
    return student.weight.detach().clone()


def test_distillation_term_changes_training():
    torch.manual_seed(2)
    teacher = torch.nn.Linear(6, 3)
    plain = _train(None, teacher)
    distilled = _train(DistillationConfig(hardness=0.5, temperature=2.0), teacher)
    only_task = _train(DistillationConfig(hardness=0.0, temperature=2.0), teacher)
    assert not torch.allclose(plain, distilled, atol=1e-4)
    assert torch.equal(plain, only_task)  # hardness 0: the KD term has weight 0, training is the plain one


def test_hardness_one_pulls_the_student_to_the_teacher():
    torch.manual_seed(2)
    teacher = torch.nn.Linear(6, 3)
    inputs = torch.cat([x for x, _ in _data()])
    torch.manual_seed(1)
    model = torch.nn.Linear(6, 3)
    with torch.no_grad():
        start = float(distillation_loss(model(inputs), teacher(inputs), temperature=1.0, task="multiclass"))
    fine_tune(model, _data(), task="multiclass", epochs=4, lr=0.1, seed=0, teacher=teacher,
              distillation=DistillationConfig(hardness=1.0, temperature=1.0))
    with torch.no_grad():
        end = float(distillation_loss(model(inputs), teacher(inputs), temperature=1.0, task="multiclass"))
    assert start > 0 and end < start / 2


def test_distillation_without_teacher_is_refused():
    with pytest.raises(InputError, match="needs the dense teacher"):
        fine_tune(torch.nn.Linear(6, 3), _data(), task="multiclass", epochs=1, lr=0.1, seed=0,
                  distillation=DistillationConfig())
