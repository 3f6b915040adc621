"""The generated multi-label data set: deterministic, in the contract, attributes drawn and visible,
identity correlation strong in train and absent in test, as documented."""

from __future__ import annotations

import numpy as np
import pytest

from compress_gate.config.data import SyntheticDataConfig, parse_data_config
from compress_gate.data import load_dataset, load_eval_data, save_eval_data, training_arrays
from compress_gate.data.synthetic import (ATTRIBUTES, BASE_RATES, CORRELATED, GROUPS, draw_images,
                                          make_synthetic_data, train_conditionals)
from compress_gate.errors import InputError

SMALL = SyntheticDataConfig(n_train=6000, n_calib=500, n_test=4000, seed=3)


@pytest.fixture(scope="module")
def small():
    return make_synthetic_data(SMALL)


def _column(data, name: str) -> np.ndarray:
    return data.labels[:, ATTRIBUTES.index(name)]


def _group(data, name: str) -> np.ndarray:
    return data.groups[:, data.group_names.index(name)]


def test_train_conditionals_by_hand():
    # p = 0.5, k = 0.2: 0.5 / (0.5 + 0.5 * 0.2) = 5/6; 0.5 * 0.2 / (0.1 + 0.5) = 1/6
    assert train_conditionals(0.5, 0.2) == pytest.approx((5 / 6, 1 / 6))
    # k = 1: no down-sampling, both equal the base rate
    assert train_conditionals(0.35, 1.0) == pytest.approx((0.35, 0.35))


def test_contract_shapes_and_round_trip(small, tmp_path):
    assert small.task == "multilabel" and small.attribute_names == ATTRIBUTES and len(ATTRIBUTES) >= 8
    assert set(small.group_names) == set(GROUPS)
    assert small.labels.shape == (10_500, len(ATTRIBUTES)) and set(np.unique(small.labels)) == {0, 1}
    assert small.inputs.shape == (10_500, 3, 16, 16) and small.inputs.dtype == np.float32
    assert small.inputs.min() >= -1.0 and small.inputs.max() <= 1.0
    assert [int(small.mask(s).sum()) for s in ("train", "calib", "test")] == [6000, 500, 4000]
    assert small.ids[0] == "synth-000000" and len(set(small.ids)) == small.n_samples
    save_eval_data(small, tmp_path / "data.npz")
    back = load_eval_data(tmp_path / "data.npz")
    np.testing.assert_array_equal(back.labels, small.labels)
    np.testing.assert_array_equal(back.ids, small.ids)
    inputs, targets = training_arrays(small, split="train")
    assert inputs.shape == (6000, 3, 16, 16) and targets.shape == (6000, len(ATTRIBUTES))


def test_same_seed_same_arrays_other_seed_differs():
    tiny = SyntheticDataConfig(n_train=300, n_calib=100, n_test=1000, seed=5)
    first, again = make_synthetic_data(tiny), make_synthetic_data(tiny)
    np.testing.assert_array_equal(again.inputs, first.inputs)
    np.testing.assert_array_equal(again.labels, first.labels)
    np.testing.assert_array_equal(again.ids, first.ids)
    other = make_synthetic_data(tiny.model_copy(update={"seed": 6}))
    assert not np.array_equal(other.labels, first.labels)


def test_default_size_decides_ba():
    default = SyntheticDataConfig()
    assert default.n_test >= 20_000 and default.seed == 0


def test_test_split_is_balanced_and_at_base_rates(small):
    test = small.mask("test")
    for attribute, identity in CORRELATED:
        a, g = _column(small, attribute)[test], _group(small, identity)[test]
        # independent in test: the conditional rates agree within ~4 standard errors
        assert abs(a[g == 1].mean() - a[g == 0].mean()) < 0.06, (attribute, identity)
    assert small.labels[test].mean(0) == pytest.approx(BASE_RATES, abs=0.03)


def test_train_correlation_and_downsampling_as_set(small):
    train = small.mask("train")
    for attribute, identity in CORRELATED:
        a, g = _column(small, attribute)[train], _group(small, identity)[train]
        expected = train_conditionals(BASE_RATES[ATTRIBUTES.index(attribute)], SMALL.keep_fraction)
        assert (a[g == 1].mean(), a[g == 0].mean()) == pytest.approx(expected, abs=0.035), (attribute, identity)
    uncorrelated = _column(small, "round")[train], _group(small, "warm")[train]
    assert abs(uncorrelated[0][uncorrelated[1] == 1].mean() - uncorrelated[0][uncorrelated[1] == 0].mean()) < 0.05


def test_keep_fraction_one_means_no_correlation():
    data = make_synthetic_data(SyntheticDataConfig(n_train=4000, n_calib=100, n_test=2000, keep_fraction=1.0))
    train = data.mask("train")
    a, g = _column(data, "red")[train], _group(data, "warm")[train]
    assert abs(a[g == 1].mean() - a[g == 0].mean()) < 0.05


def _flip_draw(labels: np.ndarray, groups: np.ndarray, *, noise: float = 0.0) -> np.ndarray:
    # every random draw in draw_images is independent of the label values, so the same seed
    # gives the same shape, colour mix, offsets and jitter: only the flipped factor differs
    return draw_images(labels, groups, size=16, noise=noise, rng=np.random.default_rng(7))


def test_each_attribute_and_identity_is_drawn_in_every_image():
    # Counterfactual pairs: 200 random rows drawn with one attribute (or identity) off and on.
    # Each flip changes some pixel by > 0.08 in EVERY image: it is drawn, not written into a channel.
    rng = np.random.default_rng(0)
    labels = (rng.random((200, len(ATTRIBUTES))) < 0.5).astype(np.uint8)
    groups = (rng.random((200, len(GROUPS))) < 0.5).astype(np.uint8)
    for columns, names, is_group in ((labels, ATTRIBUTES, False), (groups, GROUPS, True)):
        for i, name in enumerate(names):
            off, on = columns.copy(), columns.copy()
            off[:, i], on[:, i] = 0, 1
            images = [_flip_draw(labels, c) if is_group else _flip_draw(c, groups) for c in (off, on)]
            per_image = np.abs(images[1] - images[0]).max(axis=(1, 2, 3))
            assert per_image.min() > 0.08, name


def test_frame_is_the_border_and_shadow_the_bottom_band():
    labels, groups = np.zeros((50, len(ATTRIBUTES)), dtype=np.uint8), np.zeros((50, 2), dtype=np.uint8)
    framed, shadowed = labels.copy(), groups.copy()
    framed[:, ATTRIBUTES.index("frame")] = 1
    shadowed[:, GROUPS.index("shadow")] = 1
    changed = np.abs(_flip_draw(framed, groups) - _flip_draw(labels, groups)).max(axis=(0, 1)) > 1e-6
    assert changed[0].all() and changed[-1].all() and changed[:, 0].all() and not changed[1:-1, 1:-1].any()
    changed = np.abs(_flip_draw(labels, shadowed) - _flip_draw(labels, groups)).max(axis=(0, 1)) > 1e-6
    assert changed[-2:].all() and not changed[:-2].any()    # 16 // 6 = 2 bottom rows


@pytest.mark.slow
def test_attributes_are_visible_to_a_tiny_classifier():
    """A three-layer CNN trained on 5,000 balanced rows separates every attribute and identity
    on 1,000 held-out rows (balanced accuracy >= 0.75; about 25 s on one core)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)      # a shared CI machine: oversubscribed threads are much slower
    data = make_synthetic_data(SyntheticDataConfig(n_train=100, n_calib=100, n_test=6000, seed=3))
    test = np.flatnonzero(data.mask("test"))
    fit, held = test[:5000], test[5000:]
    targets = np.concatenate([data.labels, data.groups[:, [data.group_names.index(g) for g in GROUPS]]], 1)
    x, y = torch.from_numpy(data.inputs), torch.from_numpy(targets.astype(np.float32))
    relu = torch.nn.ReLU
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), relu(), torch.nn.Conv2d(32, 32, 3, padding=1),
                              relu(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(32, 32, 3, padding=1), relu(),
                              torch.nn.AdaptiveMaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(128, y.shape[1]))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for epoch in range(12):
        for batch in np.array_split(np.random.default_rng(epoch).permutation(fit), 40):
            optimizer.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch]), y[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        predicted = (net(x[held]) > 0).numpy()
    torch.set_num_threads(threads)
    truth = targets[held] == 1
    balanced = 0.5 * ((predicted & truth).sum(0) / truth.sum(0) + (~predicted & ~truth).sum(0) / (~truth).sum(0))
    scores = dict(zip(ATTRIBUTES + GROUPS, balanced.round(3)))
    assert min(scores.values()) >= 0.75, scores


def test_config_through_the_recipe_section(tmp_path):
    config = parse_data_config({"kind": "synthetic", "n_train": 200, "n_calib": 100, "n_test": 400},
                               source="recipe.yaml")
    assert isinstance(config, SyntheticDataConfig)
    data = load_dataset(config, base_dir=tmp_path)
    assert data.n_samples == 700
    with pytest.raises(InputError, match="data.image_size"):
        parse_data_config({"kind": "synthetic", "image_size": 8}, source="recipe.yaml")


def test_too_small_test_split_is_refused():
    with pytest.raises(InputError, match=r"data.n_test.*now 100"):
        make_synthetic_data(SyntheticDataConfig(n_train=100, n_calib=100, n_test=100))
