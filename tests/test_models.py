"""Architectures (published parameter counts, shapes, errors) and the training loop."""

import math

import numpy as np
import pytest

pytest.importorskip("torch")  # needs torch: skipped in the core environment (make test-core)
import torch
from torch.utils.data import DataLoader, TensorDataset

from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.models import build_model, train_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnet18_matches_torchvision_parameter_count():
    assert n_params(build_model("resnet18", num_outputs=1000)) == 11_689_512


def test_mobilenet_v1_matches_published_parameter_count():
    # Howard et al. (2017), Table 1 architecture at width 1.0, 224x224, 1000 classes: 4.2 M
    assert n_params(build_model("mobilenet_v1", num_outputs=1000, input_size=224)) == 4_231_976


def test_small_resnet_parameter_count_by_hand():
    # width 4, depth 1, 3 input channels, 3 outputs (convs have no bias, BN has 2 per channel):
    # stem 3*4*9 + 8 = 116
    # layer1 (4->4): 144 + 8 + 144 + 8 = 304
    # layer2 (4->8, /2): 288 + 16 + 576 + 16 + projection 32 + 16 = 944
    # layer3 (8->16, /2): 1152 + 32 + 2304 + 32 + projection 128 + 32 = 3680
    # fc 16*3 + 3 = 51                                  total 5095
    model = build_model("resnet", num_outputs=3, input_size=32, width=4, depth=1)
    assert n_params(model) == 5095


def test_small_resnet20_layout():
    # depth 3 -> 6*3 + 2 = 20 weighted layers (19 convs outside shortcuts + fc)
    model = build_model("resnet", num_outputs=10, input_size=32, width=16, depth=3)
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and "downsample" not in n]
    assert len(convs) + 1 == 20


@pytest.mark.parametrize("arch, size", [("resnet18", 64), ("resnet", 16), ("mobilenet_v1", 32)])
def test_output_shape_channels_and_input_shape(arch, size):
    model = build_model(arch, num_outputs=7, in_channels=1, input_size=size, width=8 if arch == "resnet" else None)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, size, size))
    assert out.shape == (2, 7)
    assert model.input_shape == (1, size, size)


def test_mobilenet_width_sets_the_multiplier():
    model = build_model("mobilenet_v1", num_outputs=2, input_size=32, width=16)  # multiplier 0.5
    assert model.conv1.out_channels == 16
    assert model.fc.in_features == 512


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "vgg16"}, "model architecture 'vgg16' is not known"),
    ({"arch": "resnet18", "input_size": 16}, "too small for resnet18"),
    ({"arch": "resnet18", "width": 32}, "resnet18 has width 64 and depth 2"),
    ({"arch": "mobilenet_v1", "depth": 3}, "mobilenet_v1 has a fixed depth"),
    ({"arch": "resnet", "num_outputs": 0}, "num_outputs = 0 must be a positive integer"),
])
def test_build_model_rejects_bad_arguments(kwargs, message):
    kwargs = {"num_outputs": 2, "input_size": 32, **kwargs}
    with pytest.raises(InputError, match=message):
        build_model(kwargs.pop("arch"), **kwargs)


def _loader(task, n=48, k=3, seed=0, batch_size=16):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, 3, 8, 8)).astype(np.float32))
    mean = x.mean(dim=(1, 2, 3))
    if task == "multilabel":
        y = torch.stack([(mean > 0).float(), (mean < 0).float(), torch.ones(n)], dim=1)[:, :k]
    else:
        y = (mean > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)


def _tiny(k=3):
    return build_model("resnet", num_outputs=k, input_size=8, width=4, depth=1)


def test_training_is_reproducible_for_a_seed():
    states = []
    for _ in range(2):
        torch.manual_seed(123)  # same initial weights
        model = _tiny()
        train_model(model, _loader("multilabel"), task="multilabel", epochs=1, lr=0.05, seed=7)
        states.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(states[0], states[1])


def test_training_reduces_the_loss_and_reports_progress():
    calls = []
    model = _tiny(k=2)
    train_model(model, _loader("multiclass"), task="multiclass", epochs=4.5, lr=0.05, seed=0, optimizer="adam",
                progress=lambda done, total, loss: calls.append((done, total, loss)))
    assert [c[0] for c in calls] == list(range(1, 15))  # ceil(4.5 epochs * 3 batches) = 14 steps
    assert all(c[1] == 14 for c in calls)
    assert np.mean([c[2] for c in calls[-3:]]) < np.mean([c[2] for c in calls[:3]])
    assert not model.training


def test_multiclass_accepts_one_hot_targets():
    x = torch.zeros(4, 3, 8, 8)
    y = torch.eye(2)[[0, 1, 0, 1]]
    train_model(_tiny(k=2), DataLoader(TensorDataset(x, y), batch_size=2), task="multiclass", epochs=1, lr=0.01,
                seed=0)


def test_multilabel_targets_must_match_outputs():
    with pytest.raises(InputError, match=r"multilabel targets have shape \(16, 3\); they must match .*\(16, 2\)"):
        train_model(_tiny(k=2), _loader("multilabel"), task="multilabel", epochs=1, lr=0.01, seed=0)


def test_empty_loader_is_an_input_error():
    empty = DataLoader(TensorDataset(torch.zeros(0, 3, 8, 8), torch.zeros(0, 3)), batch_size=4)
    with pytest.raises(InputError, match="yields no batches"):
        train_model(_tiny(), empty, task="multilabel", epochs=1, lr=0.01, seed=0)


def test_diverging_loss_is_a_runtime_failure():
    x = torch.full((4, 3, 8, 8), math.nan)
    loader = DataLoader(TensorDataset(x, torch.zeros(4, 3)), batch_size=4)
    with pytest.raises(RuntimeFailure, match=r"the loss is nan at step 1 of 1"):
        train_model(_tiny(), loader, task="multilabel", epochs=1, lr=0.01, seed=0)


def test_binary_pairs_make_softmax_kl_a_binary_kl():
    from compress_gate.models.binary_pairs import binary_pairs

    z = torch.tensor([[0.3, -2.0]])
    pairs = binary_pairs(z)
    assert pairs.shape == (1, 2, 2)
    assert torch.allclose(pairs.softmax(-1)[..., 0], torch.sigmoid(z))


def test_training_steps_cycles_the_loader_and_stops_mid_pass():
    from compress_gate.models.training import training_steps

    fetched = []

    class Loader:
        def __iter__(self):
            for i in range(3):
                fetched.append(i)
                yield f"x{i}", f"y{i}"

    # 7 steps over 3 batches: two full passes and one batch of a third; no batch fetched beyond it
    steps = list(training_steps(Loader(), 7))
    assert [s for s, _, _ in steps] == list(range(7))
    assert [x for _, x, _ in steps] == ["x0", "x1", "x2"] * 2 + ["x0"]
    assert fetched == [0, 1, 2, 0, 1, 2, 0]
    assert list(training_steps([], 5)) == [] and list(training_steps(Loader(), 0)) == []
