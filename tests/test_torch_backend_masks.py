"""Unstructured and N:M magnitude masks of the torch backend, and parameter matching."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.torch_backend.masks import MaskSet, magnitude_mask, match_params, nm_mask  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402


def test_magnitude_mask_hand_computed():
    # |w| = 3, 1, 4, 1.5, 5, 9, 2, 6; sparsity 0.5 -> round(4) smallest: 1 (idx1), 1.5 (idx3), 2 (idx6), 3 (idx0)
    weight = torch.tensor([[3.0, -1.0, 4.0, 1.5], [-5.0, 9.0, 2.0, 6.0]])
    expected = torch.tensor([[0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    assert torch.equal(magnitude_mask(weight, 0.5), expected)


def test_magnitude_mask_rounds_count_like_sparseml():
    weight = torch.arange(1.0, 11.0)
    assert int((magnitude_mask(weight, 0.26) == 0).sum()) == 3  # round(2.6)
    assert int((magnitude_mask(weight, 0.0) == 0).sum()) == 0


def test_nm_mask_linear_hand_computed():
    # groups of 4 along the input dim: row 0 = (1, -8, 3, 2) and (7, 0.5, 6, 5); row 1 = (4, 4.5, -1, 9), (2, 3, 8, 1)
    weight = torch.tensor([[1.0, -8.0, 3.0, 2.0, 7.0, 0.5, 6.0, 5.0],
                           [4.0, 4.5, -1.0, 9.0, 2.0, 3.0, 8.0, 1.0]])
    # 2:4 at 0.5: the two smallest |w| of every group go: {1, 2}, {0.5, 5}, {-1, 4}, {1, 2}
    full = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
                         [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]])
    assert torch.equal(nm_mask(weight, 0.5, 2, 4), full)
    # at 0.25 -> round(16 * 0.25) = 4 entries go, the smallest of the candidates (each group's two smallest)
    # 1, 2 | 0.5, 5 | -1, 4 | 1, 2: that is 0.5 (0,5), 1 (0,0), -1 (1,2), 1 (1,7): each group loses one
    partial = nm_mask(weight, 0.25, 2, 4)
    assert int((partial == 0).sum()) == 4
    assert torch.equal(partial, torch.tensor([[0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
                                              [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]]))


def test_nm_mask_conv_groups_run_along_input_channels():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(3, 8, 2, 2, generator=generator)
    mask = nm_mask(weight, 0.5, 2, 4)
    groups = mask.permute(0, 2, 3, 1).reshape(-1, 4)  # (O, kH, kW, I) -> runs of 4 input channels
    assert torch.equal(groups.sum(dim=1), torch.full((groups.shape[0],), 2.0))
    kept = (weight.abs() * mask).permute(0, 2, 3, 1).reshape(-1, 4)
    dropped = (weight.abs() * (1 - mask)).permute(0, 2, 3, 1).reshape(-1, 4)
    assert bool((kept.max(dim=1).values >= dropped.max(dim=1).values).all())  # the largest two survive


@pytest.mark.parametrize(("shape", "sparsity"), [((4, 6), 0.5), ((4, 8, 3), 0.5), ((4, 8), 0.6)])
def test_nm_mask_refuses(shape, sparsity):
    with pytest.raises(ValueError):
        nm_mask(torch.ones(shape), sparsity, 2, 4)


def test_mask_set_keeps_pruned_weights_at_zero_after_a_step():
    layer = torch.nn.Linear(8, 4)
    masks = MaskSet({"weight": layer.weight})
    masks.update(0.5)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    for _ in range(2):
        layer(torch.ones(2, 8)).sum().backward()
        optimizer.step()
        masks.apply()
    assert int((layer.weight == 0).sum()) == 16


def test_mask_set_nm_names_the_bad_weight():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3))
    with pytest.raises(InputError, match=r"multiple of 4; these are not: 0\.weight \(8, 3, 3, 3\)"):
        MaskSet(match_params(model, ["__ALL_PRUNABLE__"]), (2, 4))


def test_match_params_patterns():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(8, 2))
    assert sorted(match_params(model, ["__ALL_PRUNABLE__"])) == ["0.weight", "2.weight"]
    assert sorted(match_params(model, [r"re:^\d\.bias$"])) == ["0.bias", "1.bias", "2.bias"]
    assert sorted(match_params(model, ["2.weight"])) == ["2.weight"]
    with pytest.raises(InputError, match=r"compression\.pruning\.params: 're:\^fc' matches no parameter"):
        match_params(model, ["re:^fc"])
