"""SNIP and GraSP: scores pinned by hand, GraSP's Hg against finite differences, its sign convention."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.saliency import (grasp_scores, hessian_gradient_product, prune_grasp,  # noqa: E402
                                             prune_snip, snip_scores)
from compress_gate.errors import InputError  # noqa: E402


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _linear(weights: list[float], dtype: torch.dtype = torch.float32) -> torch.nn.Linear:
    model = torch.nn.Linear(len(weights), 1, bias=False).to(dtype)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights], dtype=dtype))
    return model


def test_snip_scores_by_hand() -> None:
    # w = [1, -2]. Batch 1: x = [1, 1], y = 1: z = -1, g = (s(-1) - 1)·[1, 1].
    # Batch 2: x = [2, 0], y = 0: z = 2, g = s(2)·[2, 0]. Mean gradient over the 2 batches, then |w g|.
    model = _linear([1.0, -2.0])
    loader = [(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0]])), (torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0]]))]
    g = [((_sigmoid(-1) - 1) + 2 * _sigmoid(2)) / 2, (_sigmoid(-1) - 1) / 2]
    scores = snip_scores(model, loader, dict(model.named_parameters()), task="multilabel", batches=2)
    assert scores["weight"][0].tolist() == pytest.approx([abs(1.0 * g[0]), abs(-2.0 * g[1])], rel=1e-6)
    only_first = snip_scores(model, loader, dict(model.named_parameters()), task="multilabel", batches=1)
    assert only_first["weight"][0].tolist() == pytest.approx([abs(_sigmoid(-1) - 1), abs(2 * (_sigmoid(-1) - 1))])


def test_snip_keeps_the_highest_scores() -> None:
    # |w g| with g = (s(0.1 + 0.2 + 0.3 + 0.4) - 1)·1 for every weight: ordered like |w|; keep the top half.
    model = _linear([0.1, -0.4, 0.2, 0.3])
    loader = [(torch.ones(1, 4), torch.ones(1, 1))]
    masks = prune_snip(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0)
    assert masks["weight"].tolist() == [[0.0, 1.0, 0.0, 1.0]]


def _two_parameter_case() -> tuple[torch.nn.Linear, list[tuple[torch.Tensor, torch.Tensor]]]:
    gen = torch.Generator().manual_seed(3)
    model = _linear([0.7, -1.3], torch.float64)
    loader = [(torch.randn(5, 2, generator=gen, dtype=torch.float64), (torch.rand(5, 1, generator=gen) < 0.5).double())
              for _ in range(2)]
    return model, loader


def _loss_gradient(weights: torch.Tensor, loader, temperature: float) -> torch.Tensor:
    """dL/dw by a single backward pass, L = sum over batches of the mean BCE on logits / T."""
    w = weights.clone().requires_grad_(True)
    loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(x @ w.T / temperature, y) for x, y in loader)
    return torch.autograd.grad(loss, w)[0]


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_grasp_hg_matches_finite_differences(temperature: float) -> None:
    # Hg = d/de grad L(w + e g) at e = 0, by central differences with e = 1e-5 (float64).
    model, loader = _two_parameter_case()
    g, hg = hessian_gradient_product(model, loader, dict(model.named_parameters()), task="multilabel",
                                     batches=2, temperature=temperature)
    w = model.weight.detach()
    assert torch.allclose(g["weight"], _loss_gradient(w, loader, temperature), atol=1e-12)
    eps = 1e-5
    numeric = (_loss_gradient(w + eps * g["weight"], loader, temperature)
               - _loss_gradient(w - eps * g["weight"], loader, temperature)) / (2 * eps)
    assert torch.allclose(hg["weight"], numeric, rtol=1e-6, atol=1e-10)
    assert hg["weight"].abs().max() > 1e-4                        # not trivially zero


def test_grasp_removes_the_highest_minus_w_hg() -> None:
    # GraSP's convention: S = -w ⊙ Hg, the highest S are removed (Wang et al., eq. 8 and their code).
    model, loader = _two_parameter_case()
    params = dict(model.named_parameters())
    scores = grasp_scores(model, loader, params, task="multilabel", batches=2, temperature=1.0)["weight"][0]
    _, hg = hessian_gradient_product(model, loader, params, task="multilabel", batches=2)
    assert scores.tolist() == pytest.approx((-model.weight.detach() * hg["weight"])[0].tolist())
    masks = prune_grasp(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0, batches=2,
                        temperature=1.0)
    assert scores[0] != scores[1]
    assert masks["weight"][0].tolist() == ([0.0, 1.0] if scores[0] > scores[1] else [1.0, 0.0])


def test_grasp_uses_the_same_batches_for_g_and_hg() -> None:
    # A loader that draws a fresh random batch on every pass: g and Hg must come from one draw.
    class Fresh:
        def __init__(self) -> None:
            self.draws: list[torch.Tensor] = []
            self.gen = torch.Generator().manual_seed(0)

        def __iter__(self):
            self.draws.append(torch.randn(5, 2, generator=self.gen, dtype=torch.float64))
            yield self.draws[-1], torch.ones(5, 1, dtype=torch.float64)

    model, loader = _linear([0.7, -1.3], torch.float64), Fresh()
    g, hg = hessian_gradient_product(model, loader, dict(model.named_parameters()), task="multilabel", batches=1)
    assert len(loader.draws) == 1
    # y = 1 everywhere: L = mean_i softplus(-z_i), z = X w; grad = X^T (s(z) - 1) / n, H = X^T diag(s(1 - s)) X / n
    x = loader.draws[0]
    s = torch.sigmoid(x @ model.weight.detach().T)
    grad = (x * (s - 1)).mean(0)
    hessian = (x.T * (s * (1 - s)).T) @ x / len(x)
    assert torch.allclose(g["weight"][0], grad, atol=1e-12)
    assert torch.allclose(hg["weight"][0], hessian @ grad, atol=1e-12)


@pytest.mark.parametrize("temperature", [0, -1.0, "200", True])
def test_grasp_temperature_must_be_positive(temperature) -> None:
    model, loader = _two_parameter_case()
    with pytest.raises(InputError, match="temperature = .* must be a number > 0"):
        prune_grasp(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0,
                    temperature=temperature)


def test_batches_must_be_positive() -> None:
    model, loader = _two_parameter_case()
    for prune in (prune_snip, prune_grasp):
        with pytest.raises(InputError, match="batches = 0 must be a positive integer"):
            prune(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0, batches=0)
