"""What every saliency pruner promises: exact sparsity on the selected tensors, 0/1 masks
applied in place, nothing else touched, determinism by seed, fail-closed arguments."""

from __future__ import annotations

import copy
import math

import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.saliency import PRUNERS, prune_fairgrape, prune_grasp, prune_snip  # noqa: E402
from compress_gate.errors import InputError, RuntimeFailure  # noqa: E402

PARAMS = ["re:.*weight$"]          # conv.weight (36) and head.weight (3 · 64 = 192); biases stay dense
SPARSITY = 0.3                    # 36 · 0.3 = 10.8 -> 11;  192 · 0.3 = 57.6 -> 58;  228 · 0.3 = 68.4 -> 68


class TinyNet(torch.nn.Module):
    def __init__(self, outputs: int = 3) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.head = torch.nn.Linear(4 * 4 * 4, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)).flatten(1))


def _model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def _loader(task: str, *, rows: int = 24, batch: int = 8, seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 1, 6, 6, generator=gen)
    y = (torch.rand(rows, 3, generator=gen) < 0.4).float() if task == "multilabel" else \
        torch.randint(0, 3, (rows,), generator=gen)
    groups = torch.stack([torch.arange(rows) % 3 == 0, torch.arange(rows) % 3 != 0], dim=1).float()
    return [(x[i:i + batch], y[i:i + batch], groups[i:i + batch]) for i in range(0, rows, batch)]


def _prune(method: str, model: torch.nn.Module, task: str, seed: int = 0, sparsity: float = SPARSITY):
    options = {"steps": 2} if method == "fairgrape" else {"batches": 2}
    return PRUNERS[method](model, _loader(task), sparsity=sparsity, params=PARAMS, task=task, seed=seed,
                           **options)


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_masks_are_binary_applied_and_exact(method: str, task: str) -> None:
    model = _model()
    before = copy.deepcopy(model.state_dict())
    masks = _prune(method, model, task)
    assert set(masks) == {"conv.weight", "head.weight"}
    after = model.state_dict()
    for name, mask in masks.items():
        assert mask.shape == before[name].shape
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(after[name], before[name] * mask)          # applied in place, kept weights unchanged
    for name in ("conv.bias", "head.bias"):                           # not selected: untouched
        assert torch.equal(after[name], before[name])
    pruned = {name: int((mask == 0).sum()) for name, mask in masks.items()}
    if method == "fairgrape":                                          # per layer, exactly
        assert pruned == {"conv.weight": 11, "head.weight": 58}
    else:                                                              # over the union, exactly
        assert sum(pruned.values()) == 68


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_deterministic_by_seed(method: str) -> None:
    first, second = _prune(method, _model(), "multilabel", seed=5), _prune(method, _model(), "multilabel", seed=5)
    assert all(torch.equal(first[name], second[name]) for name in first)


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_seed_breaks_ties(method: str) -> None:
    # 20 identical weights and identical inputs: every score ties, so only the seed picks
    # the 10 kept (C(20, 10) = 184756 possible masks); FairGRAPE's groups tie as well.
    def pruned(seed: int) -> torch.Tensor:
        model = torch.nn.Linear(20, 1, bias=False)
        torch.nn.init.constant_(model.weight, 0.1)
        loader = [(torch.ones(4, 20), torch.tensor([[1.0], [0.0], [1.0], [1.0]]),
                   torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))]
        return PRUNERS[method](model, loader, sparsity=0.5, params=["weight"], task="multilabel",
                               seed=seed)["weight"]
    assert torch.equal(pruned(0), pruned(0))
    assert not torch.equal(pruned(0), pruned(1))
    assert int(pruned(1).sum()) == 10


def test_zero_sparsity_keeps_everything() -> None:
    for method in PRUNERS:
        model = _model()
        before = copy.deepcopy(model.state_dict())
        masks = _prune(method, model, "multiclass", sparsity=0.0)
        assert all(bool(mask.all()) for mask in masks.values())
        assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())


def test_half_rounds_up() -> None:
    # 5 weights at sparsity 0.5: 2.5 -> 3 pruned (half rounds up; Python's round() would give 2).
    model = torch.nn.Linear(5, 1, bias=False)
    loader = [(torch.randn(4, 5, generator=torch.Generator().manual_seed(0)), torch.ones(4, 1),
               torch.ones(4, 1))]
    for method in PRUNERS:
        masks = PRUNERS[method](copy.deepcopy(model), loader, sparsity=0.5, params=["weight"],
                                task="multilabel", seed=0)
        assert int((masks["weight"] == 0).sum()) == 3 == math.floor(0.5 * 5 + 0.5)


def test_params_are_matched_like_sparseml() -> None:
    # `re:` regexes use re.match (anchored at the start); other entries are exact names.
    masks = prune_snip(_model(), _loader("multilabel"), sparsity=0.5, params=["re:head", "conv.weight"],
                       task="multilabel", seed=0)
    assert list(masks) == ["conv.weight", "head.weight", "head.bias"]   # the model's order


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsity": 1.0}, "must be a number in [0, 1)"),
    ({"sparsity": -0.1}, "must be a number in [0, 1)"),
    ({"sparsity": "0.5"}, "must be a number in [0, 1)"),
    ({"task": "regression"}, "is not one of ['multilabel', 'multiclass']"),
    ({"params": []}, "must be a non-empty list"),
    ({"params": "re:.*"}, "must be a non-empty list"),
    ({"params": ["re:.*weight$", "fc.weight"]}, "'fc.weight' matches no parameter"),
    ({"params": ["re:(["]}, "is not a valid regex"),
    ({"seed": 1.5}, "seed = 1.5 must be an integer"),
])
@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_bad_arguments_are_input_errors(method: str, kwargs: dict, message: str) -> None:
    call = {"sparsity": 0.5, "params": PARAMS, "task": "multilabel", "seed": 0, **kwargs}
    with pytest.raises(InputError) as err:
        PRUNERS[method](_model(), _loader("multilabel"), **call)
    assert message in str(err.value)


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_empty_loader_and_bad_batches_are_input_errors(method: str) -> None:
    with pytest.raises(InputError, match="yielded no batch"):
        PRUNERS[method](_model(), [], sparsity=0.5, params=PARAMS, task="multilabel", seed=0)
    with pytest.raises(InputError, match="must be \\(inputs, targets\\)"):
        PRUNERS[method](_model(), [torch.zeros(2, 1, 6, 6)], sparsity=0.5, params=PARAMS, task="multilabel", seed=0)


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_non_finite_scores_are_runtime_failures(method: str) -> None:
    model = _model()
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    with pytest.raises(RuntimeFailure, match="NaN or infinite|NaN or infinity"):
        _prune(method, model, "multilabel")


def test_model_mode_and_requires_grad_are_restored() -> None:
    for prune in (prune_fairgrape, prune_snip, prune_grasp):
        model = _model()
        model.train()
        model.conv.weight.requires_grad_(False)
        prune(model, _loader("multilabel"), sparsity=0.5, params=PARAMS, task="multilabel", seed=0)
        assert model.training and model.head.training
        assert not model.conv.weight.requires_grad and model.head.weight.requires_grad


@pytest.mark.slow
def test_demo_data_through_the_group_loader() -> None:
    # The embedded demo (one identity category, `marked`: joint groups marked=0 and marked=1) and the
    # demo recipe's parameter regex, on a narrow ResNet: each method reaches its exact count.
    from compress_gate.compress.saliency import group_training_loader
    from compress_gate.config.data import DemoDataConfig
    from compress_gate.data import make_demo_data
    from compress_gate.models import build_model

    data = make_demo_data(DemoDataConfig(image_size=16))
    loader = group_training_loader(data, batch_size=32, seed=0)
    params = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
    for method in sorted(PRUNERS):
        torch.manual_seed(0)
        model = build_model("resnet", num_outputs=data.n_attributes, in_channels=1, input_size=16, width=4, depth=1)
        options = {"steps": 2} if method == "fairgrape" else {}
        masks = PRUNERS[method](model, loader, sparsity=0.75, params=params, task=data.task, seed=0, batches=2,
                                **options)
        assert masks and all(name.startswith("layer") and name.endswith(".weight") for name in masks)
        sizes = {name: mask.numel() for name, mask in masks.items()}
        pruned = {name: int((mask == 0).sum()) for name, mask in masks.items()}
        if method == "fairgrape":
            assert pruned == {name: math.floor(0.75 * n + 0.5) for name, n in sizes.items()}
        else:
            assert sum(pruned.values()) == math.floor(0.75 * sum(sizes.values()) + 0.5)
        assert torch.isfinite(model(torch.from_numpy(data.inputs[:4]))).all()


def test_a_selected_weight_the_loss_does_not_use_scores_zero() -> None:
    # `spare` is selected but never used in forward: its gradient, hence every score of it, is 0.
    from compress_gate.compress.saliency import grasp_scores, group_importance, snip_scores

    class WithSpare(TinyNet):
        def __init__(self) -> None:
            super().__init__()
            self.spare = torch.nn.Linear(2, 1, bias=False)

    torch.manual_seed(0)
    model = WithSpare()
    params = {"spare.weight": model.spare.weight, "head.weight": model.head.weight}
    loader = _loader("multilabel")
    for scores in (snip_scores(model, loader, params, task="multilabel", batches=2),
                   grasp_scores(model, loader, params, task="multilabel", batches=2, temperature=1.0),
                   group_importance(model, loader, params, task="multilabel")):
        assert (scores["spare.weight"] == 0).all() and (scores["head.weight"] != 0).any()
    # SNIP's scores are >= 0, and the used weights score > 0 here: the spare ones go first.
    masks = prune_snip(model, loader, sparsity=0.01, params=["spare.weight", "head.weight"], task="multilabel",
                       seed=0, batches=2)
    assert masks["spare.weight"].tolist() == [[0.0, 0.0]]
