"""Per-layer CKA/SVCCA of torch models through forward hooks."""

import pytest

pytest.importorskip("torch")  # needs torch: skipped in the core environment (make test-core)
import torch
from torch import nn

from compress_gate.errors import InputError
from compress_gate.models.layer_similarity import layer_similarity


def tiny_cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))


class WithSpare(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.spare = tiny_cnn(0), nn.Linear(2, 2)        # spare: never called in forward

    def forward(self, x):
        return self.body(x)


BATCH = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_a_model_against_itself_is_one_on_every_layer():
    model = tiny_cnn(0).train()
    result = layer_similarity(model, model, BATCH)
    assert list(result) == ["0", "2", "5"]                  # the Conv2d and Linear modules, in order
    for scores in result.values():
        assert scores["cka"] == pytest.approx(1.0) and scores["svcca"] == pytest.approx(1.0)
    assert model.training                                    # its mode is restored


def test_a_differently_initialised_model_is_less_similar():
    result = layer_similarity(tiny_cnn(0), tiny_cnn(1), BATCH, layers=["2", "5"])
    assert list(result) == ["2", "5"]
    assert all(scores["cka"] < 0.99 for scores in result.values())


def test_unknown_or_unused_layers_are_input_errors():
    with pytest.raises(InputError, match="are not modules of the teacher"):
        layer_similarity(tiny_cnn(0), tiny_cnn(0), BATCH, layers=["conv9"])
    model = WithSpare()
    with pytest.raises(InputError, match="did not run exactly once"):
        layer_similarity(model, model, BATCH, layers=["spare"])
    with pytest.raises(InputError, match="no layer to compare"):
        layer_similarity(nn.Sequential(nn.ReLU()), nn.Sequential(nn.ReLU()), BATCH)
