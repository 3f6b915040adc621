"""FairGRAPE: per-group importance, target shares and the greedy selection, pinned by hand;
a case where only FairGRAPE keeps the weight a minority group relies on; the loader helper."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.saliency import (group_importance, group_training_loader, greedy_keep,  # noqa: E402
                                             joint_groups, prune_fairgrape, prune_snip, target_shares)
from compress_gate.data import EvalData  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def _linear(weights: list[float]) -> torch.nn.Linear:
    model = torch.nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights]))
    return model


# --- importance, shares, greedy selection ------------------------------------------------
def _importance_case() -> tuple[torch.nn.Linear, list[tuple[torch.Tensor, ...]]]:
    # w = 2; batch 1: rows (x, y, groups) (1, 1, g0), (-1, 0, g0), (0.5, 1, g1); batch 2: (0.5, 1, g1).
    model = _linear([2.0])
    batch1 = (torch.tensor([[1.0], [-1.0], [0.5]]), torch.tensor([[1.0], [0.0], [1.0]]),
              torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    batch2 = (torch.tensor([[0.5]]), torch.tensor([[1.0]]), torch.tensor([[0.0, 1.0]]))
    return model, [batch1, batch2]


@pytest.mark.parametrize("kind", ["squared", "abs"])
def test_group_importance_by_hand(kind: str) -> None:
    # dBCE/dw for one row = (sigmoid(w x) - y) x.
    # group 0, batch 1 (mean of its two rows): ((s(2) - 1)·1 + (s(-2) - 0)·(-1)) / 2; batch 2 has no row of it.
    # group 1, batches 1 and 2: (s(1) - 1)·0.5 each.
    g0 = ((_sigmoid(2.0) - 1.0) + _sigmoid(-2.0) * -1.0) / 2
    g1 = (_sigmoid(1.0) - 1.0) * 0.5
    power = (lambda t: t * t) if kind == "squared" else abs
    model, loader = _importance_case()
    out = group_importance(model, loader, dict(model.named_parameters()), task="multilabel", importance=kind)
    assert out["weight"].shape == (2, 1, 1)
    assert out["weight"][:, 0, 0] == pytest.approx([power(2 * g0), 2 * power(2 * g1)], rel=1e-6)
    # groups=[1]: only column 1, as row 0 of the result
    only = group_importance(model, loader, dict(model.named_parameters()), task="multilabel", groups=[1],
                            importance=kind)
    assert only["weight"][:, 0, 0] == pytest.approx([2 * power(2 * g1)], rel=1e-6)


def test_target_shares() -> None:
    # totals per group: 10 and 3 -> 10/13, 3/13; an all-zero layer -> uniform
    assert target_shares(np.array([[6.0, 3, 1, 0], [0, 1, 0, 2]])) == pytest.approx([10 / 13, 3 / 13])
    assert target_shares(np.zeros((4, 3))) == pytest.approx([0.25] * 4)


def test_greedy_keep_by_hand() -> None:
    # I_A = [6, 3, 1, 0], I_B = [0, 1, 0, 2]; T = [10/13, 3/13] = [0.769, 0.231]. Shares start at [0.5, 0.5].
    # pick 1: deficits [-0.269, +0.269] -> A takes its top, w0;    sums [6, 0], shares [1, 0]
    # pick 2: deficits [+0.231, -0.231] -> B takes its top, w3;    sums [6, 2], shares [0.75, 0.25]
    # pick 3: deficits [-0.019, +0.019] -> A takes its next, w1
    importance = np.array([[6.0, 3, 1, 0], [0, 1, 0, 2]])
    target = target_shares(importance)
    every, rank = np.ones(4, dtype=bool), np.arange(4)
    assert greedy_keep(importance, every, target, 2, rank).tolist() == [True, False, False, True]
    assert greedy_keep(importance, every, target, 3, rank).tolist() == [True, True, False, True]
    # pooled importance [6, 4, 1, 2] would keep w0, w1 at keep = 2: the greedy keeps B's w3 instead.
    # Without w3 (pruned earlier): pick 1 A -> w0; pick 2 B's top candidate -> w1 (sums [9, 1]);
    # pick 3: B still short (0.1 < 0.231); B's next: w0 and w2 tie at 0, rank puts w0 first, already
    # kept -> skipped, then w2.
    candidates = np.array([True, True, True, False])
    assert greedy_keep(importance, candidates, target, 2, rank).tolist() == [True, True, False, False]
    assert greedy_keep(importance, candidates, target, 3, rank).tolist() == [True, True, True, False]


# --- the minority-group case ---------------------------------------------------------------
def _minority_case() -> tuple[torch.nn.Linear, list[tuple[torch.Tensor, ...]]]:
    # w = [1.0, 0.9, 0.8, 0.3]. Group A (column 0): 9 rows x = [1, 1, 1, 0], y = 1.
    # Group B (column 1): 1 row x = [0, 0, 0, 1], y = 0: only w3 matters to B.
    model = _linear([1.0, 0.9, 0.8, 0.3])
    x = torch.tensor([[1.0, 1, 1, 0]] * 9 + [[0.0, 0, 0, 1]])
    y = torch.tensor([[1.0]] * 9 + [[0.0]])
    groups = torch.tensor([[1.0, 0.0]] * 9 + [[0.0, 1.0]])
    return model, [(x, y, groups)]


@pytest.mark.parametrize("steps", [1, 3])
def test_fairgrape_keeps_the_minority_weight_that_magnitude_and_snip_remove(steps: int) -> None:
    # Keep 2 of 4 weights.
    # Magnitude |w| = [1.0, 0.9, 0.8, 0.3] keeps w0, w1.
    # SNIP on the pooled loss (10 rows): g_j = 0.9 (s(2.7) - 1) = -0.0567 for j < 3, g_3 = 0.1 s(0.3) = 0.0574,
    #   |w g| = [0.0567, 0.0510, 0.0453, 0.0172]: keeps w0, w1; w3 is the lowest.
    # FairGRAPE: I_B is non-zero on w3 only, so B's most important weight is w3, and both targets are > 0.
    # With two groups the second pick always goes to the group the first pick did not serve (its share
    # is 0 < its target, the other's is 1 >= its target), so each group's top weight is kept: A's w0
    # and B's w3, whatever the numbers. Over several steps the same holds at every step.
    pooled = 0.9 * (_sigmoid(2.7) - 1.0), 0.1 * _sigmoid(0.3)
    snip_by_hand = [abs(w * pooled[0]) for w in (1.0, 0.9, 0.8)] + [abs(0.3 * pooled[1])]
    assert sorted(range(4), key=lambda j: -snip_by_hand[j])[:2] == [0, 1]

    model, loader = _minority_case()
    fair = prune_fairgrape(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0, steps=steps)
    assert fair["weight"].tolist() == [[1.0, 0.0, 0.0, 1.0]]
    assert model.weight.tolist()[0] == pytest.approx([1.0, 0.0, 0.0, 0.3])

    model, loader = _minority_case()
    snip = prune_snip(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0)
    assert snip["weight"].tolist() == [[1.0, 1.0, 0.0, 0.0]]
    magnitude = torch.topk(torch.tensor([1.0, 0.9, 0.8, 0.3]).abs(), 2).indices
    assert sorted(magnitude.tolist()) == [0, 1]


# --- schedule, callback, fail-closed -------------------------------------------------------
def test_finetune_runs_between_steps_and_masks_are_reapplied() -> None:
    # 40 weights, s = 0.5, 3 steps: s_t = 1 - 0.5^(t/3) = 0.2063, 0.3700 -> round(8.25) = 8, round(14.8) = 15
    # pruned after steps 1 and 2 (the callback sees those), 20 at the end.
    torch.manual_seed(0)
    model = torch.nn.Linear(40, 1, bias=False)
    gen = torch.Generator().manual_seed(1)
    loader = [(torch.randn(12, 40, generator=gen), (torch.rand(12, 1, generator=gen) < 0.5).float(),
               torch.tensor([[1.0, 0.0], [0.0, 1.0]] * 6))]
    seen = []

    def finetune(net: torch.nn.Module, masks: dict[str, torch.Tensor]) -> None:
        seen.append(int((masks["weight"] == 0).sum()))
        assert torch.equal(net.weight * (1 - masks["weight"]), torch.zeros_like(net.weight))
        with torch.no_grad():
            net.weight.fill_(1.0)           # a careless fine-tune that revives pruned weights

    masks = prune_fairgrape(model, loader, sparsity=0.5, params=["weight"], task="multilabel", seed=0,
                            steps=3, finetune=finetune)
    assert seen == [8, 15]
    assert int((masks["weight"] == 0).sum()) == 20
    assert torch.equal(model.weight == 0, masks["weight"] == 0)


def test_fairgrape_fails_closed_on_groups() -> None:
    model, loader = _minority_case()
    call = {"sparsity": 0.5, "params": ["weight"], "task": "multilabel", "seed": 0}
    with pytest.raises(InputError, match="needs batches \\(inputs, targets, groups\\)"):
        prune_fairgrape(model, [batch[:2] for batch in loader], **call)
    with pytest.raises(InputError, match="must be distinct column indices in \\[0, 2\\)"):
        prune_fairgrape(model, loader, groups=[2], **call)
    with pytest.raises(InputError, match="must be distinct column indices"):
        prune_fairgrape(model, loader, groups=[0, 0], **call)
    empty = [(x, y, torch.cat([g, torch.zeros(len(g), 1)], dim=1)) for x, y, g in loader]
    with pytest.raises(InputError, match="group column\\(s\\) \\[2\\] have no row"):
        prune_fairgrape(model, empty, **call)
    with pytest.raises(InputError, match="steps = 0 must be a positive integer"):
        prune_fairgrape(model, loader, steps=0, **call)
    with pytest.raises(InputError, match="importance = 'cube' is not one of"):
        prune_fairgrape(model, loader, importance="cube", **call)
    bad = [(x, y, g * 2) for x, y, g in loader]
    with pytest.raises(InputError, match="must be \\(B, G\\) 0/1"):
        prune_fairgrape(model, bad, **call)


# --- the loader helper ---------------------------------------------------------------------
def _eval_data(groups: np.ndarray, names: tuple[str, ...]) -> EvalData:
    return EvalData(ids=np.array([f"s{i}" for i in range(6)]), labels=np.eye(2, dtype=np.uint8)[[0, 1, 0, 1, 1, 0]],
                    split=np.array(["train", "train", "train", "train", "calib", "test"]), groups=groups,
                    group_names=names, attribute_names=("a", "b"), task="multilabel",
                    inputs=np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2))


def test_joint_groups_partition_the_rows() -> None:
    # patterns (f, m): (1,0) -> 2, (0,0) -> 0, (1,0) -> 2, (1,1) -> 3; pattern 1 (f=0, m=1) does not occur.
    onehot, names = joint_groups(np.array([[1, 0], [0, 0], [1, 0], [1, 1]], dtype=bool), ("f", "m"))
    assert names == ("f=0,m=0", "f=1,m=0", "f=1,m=1")
    assert onehot.tolist() == [[0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    single, names = joint_groups(np.array([[1], [0], [0]], dtype=bool), ("marked",))
    assert names == ("marked=0", "marked=1") and single.tolist() == [[0, 1], [1, 0], [1, 0]]
    with pytest.raises(InputError, match="must be \\(n_samples, C\\) with C = 3"):
        joint_groups(np.zeros((2, 2), dtype=bool), ("a", "b", "c"))


@pytest.mark.parametrize("joint", [True, False])
def test_group_training_loader_carries_train_rows_and_groups(joint: bool) -> None:
    groups = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [0, 1]], dtype=bool)
    loader = group_training_loader(_eval_data(groups, ("f", "m")), batch_size=3, seed=0, joint=joint)
    rows = [(x, y, g) for batch in loader for x, y, g in zip(*batch)]
    assert len(rows) == 4                                            # train rows only
    by_first_pixel = {int(x[0, 0, 0]): (y.tolist(), g.tolist()) for x, y, g in rows}
    # joint: train patterns (1,0) -> 2, (0,1) -> 1, (1,1) -> 3, (0,0) -> 0, all four occur
    stored = {0: [1.0, 0.0], 4: [0.0, 1.0], 8: [1.0, 1.0], 12: [0.0, 0.0]}
    cells = {0: [0.0, 0.0, 1.0, 0.0], 4: [0.0, 1.0, 0.0, 0.0], 8: [0.0, 0.0, 0.0, 1.0], 12: [1.0, 0.0, 0.0, 0.0]}
    labels = {0: [1.0, 0.0], 4: [0.0, 1.0], 8: [1.0, 0.0], 12: [0.0, 1.0]}
    assert by_first_pixel == {k: (labels[k], (cells if joint else stored)[k]) for k in labels}
    again = [int(x[0, 0, 0]) for batch in group_training_loader(_eval_data(groups, ("f", "m")), batch_size=3,
                                                                seed=0, joint=joint) for x in batch[0]]
    assert again == [int(x[0, 0, 0]) for x, _, _ in rows]              # same seed, same order


def test_group_training_loader_needs_groups() -> None:
    with pytest.raises(InputError, match="no identity groups"):
        group_training_loader(_eval_data(np.zeros((6, 0), dtype=bool), ()), batch_size=2, seed=0)
    with pytest.raises(InputError, match="batch_size = 0 must be a positive integer"):
        group_training_loader(_eval_data(np.zeros((6, 1), dtype=bool), ("f",)), batch_size=0, seed=0)
