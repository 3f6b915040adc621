"""Zhu & Gupta's cubic schedule, stepped as SparseML 1.8's GMPruningModifier (torch backend)."""

from __future__ import annotations

import os

import pytest

from compress_gate.compress.torch_backend.schedule import GMPSchedule, interpolate, step_epoch


def test_interpolate_cubic_hand_computed():
    # x = (1 - 0) / (4 - 0) = 0.25; y = 1 - 0.75**3 = 0.578125; s = 0.05 + 0.578125 * 0.75 = 0.48359375
    assert interpolate(1.0, 0.0, 4.0, 0.05, 0.8, "cubic") == pytest.approx(0.48359375, abs=1e-15)
    # x = 0.5: y = 0.875; s = 0.05 + 0.875 * 0.75 = 0.70625
    assert interpolate(2.0, 0.0, 4.0, 0.05, 0.8, "cubic") == pytest.approx(0.70625, abs=1e-15)


def test_interpolate_linear_and_clamps():
    assert interpolate(1.0, 0.0, 4.0, 0.0, 0.8, "linear") == pytest.approx(0.2, abs=1e-15)
    assert interpolate(0.0, 0.0, 4.0, 0.05, 0.8, "cubic") == 0.05  # y = 0 -> init exactly
    assert interpolate(-1.0, 0.0, 4.0, 0.05, 0.8, "cubic") == 0.05  # before start: y < 0 -> init
    assert interpolate(4.0, 0.0, 4.0, 0.05, 0.8, "cubic") == 0.8
    assert interpolate(9.0, 0.0, 4.0, 0.05, 0.8, "cubic") == 0.8  # past the end: y > 1 -> final


def test_interpolate_rejects_unknown_function():
    with pytest.raises(ValueError, match="inter_func"):
        interpolate(1.0, 0.0, 4.0, 0.0, 0.8, "inverse_cubic")


def test_step_epoch():
    assert [step_epoch(k, 3) for k in (0, 1, 3, 5)] == [0.0, 1 / 3, 1.0, 1 + 2 / 3]


def _run(schedule: GMPSchedule, steps: int, steps_per_epoch: int) -> list[tuple[int, float]]:
    """(step, sparsity) of every update, with SparseML's epoch formula."""
    out = []
    for k in range(steps):
        value = schedule.step(step_epoch(k, steps_per_epoch))
        if value is not None:
            out.append((k, value))
    return out


def test_schedule_update_steps_hand_computed():
    # 4 steps/epoch, start 1, end 3, every 0.5 epoch, 0.1 -> 0.9 cubic; epochs at steps k = k/4.
    # k=4 (e=1.0): start, x=0 -> 0.1
    # k=6 (e=1.5): x=0.25, y=0.578125 -> 0.1 + 0.8*0.578125 = 0.5625
    # k=8 (e=2.0): x=0.5, y=0.875 -> 0.8
    # k=10 (e=2.5): x=0.75, y=0.984375 -> 0.8875
    # k=12 (e=3.0): end -> 0.9; nothing after
    schedule = GMPSchedule(init_sparsity=0.1, final_sparsity=0.9, start_epoch=1.0, end_epoch=3.0,
                           update_frequency=0.5, inter_func="cubic")
    updates = _run(schedule, 20, 4)
    assert [k for k, _ in updates] == [4, 6, 8, 10, 12]
    assert [v for _, v in updates] == pytest.approx([0.1, 0.5625, 0.8, 0.8875, 0.9], abs=1e-12)
    assert schedule.started and schedule.ended


def test_schedule_frequency_counts_from_last_update():
    # 3 steps/epoch, start 0, end 2, every 0.5: e = 0, 1/3, 2/3, 1, 4/3, 5/3, 2
    # updates at e=0 (start), 2/3 (>= 0 + 0.5), 4/3 (>= 2/3 + 0.5), 2 (end)
    schedule = GMPSchedule(init_sparsity=0.0, final_sparsity=0.5, start_epoch=0.0, end_epoch=2.0,
                           update_frequency=0.5, inter_func="linear")
    updates = _run(schedule, 9, 3)
    assert [k for k, _ in updates] == [0, 2, 4, 6]
    assert [v for _, v in updates] == pytest.approx([0.0, 0.5 * 1 / 3, 0.5 * 2 / 3, 0.5], abs=1e-12)


def test_schedule_start_past_end_in_one_step_ends_at_once():
    # 1 step/epoch: the first epoch >= 0.5 is 1.0, already past end 0.8 -> final, and ended right away
    schedule = GMPSchedule(init_sparsity=0.0, final_sparsity=0.6, start_epoch=0.5, end_epoch=0.8,
                           update_frequency=0.1)
    assert _run(schedule, 4, 1) == [(1, 0.6)]


@pytest.mark.slow  # importing SparseML takes ~20 s
def test_schedule_matches_sparseml_modifier():
    """Where SparseML is installed (the [sparseml] environment), its own modifier gives the same updates."""
    os.environ["NM_DISABLE_ANALYTICS"] = "1"
    pytest.importorskip("sparseml")
    import torch

    from compress_gate.compress.compat import apply_compat

    apply_compat()
    from sparseml.pytorch.optim import ScheduledModifierManager

    recipe = """
    modifiers:
      - !EpochRangeModifier
        start_epoch: 0.0
        end_epoch: 5.0
      - !GMPruningModifier
        params: ['0.weight']
        init_sparsity: 0.05
        final_sparsity: 0.85
        start_epoch: 0.5
        end_epoch: 3.5
        update_frequency: 0.4
        inter_func: cubic
    """
    model = torch.nn.Sequential(torch.nn.Linear(40, 50, bias=False))
    model[0].weight.data = torch.arange(2000, dtype=torch.float32).reshape(50, 40) + 1
    manager = ScheduledModifierManager.from_yaml(recipe)
    modifier = next(m for m in manager.iter_modifiers() if type(m).__name__ == "GMPruningModifier")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    steps_per_epoch = 7
    from compress_gate.models.training import quiet_sparseml

    theirs = []
    with quiet_sparseml() as loggers:
        wrapped = manager.modify(model, optimizer, steps_per_epoch=steps_per_epoch, loggers=loggers)
        for k in range(5 * steps_per_epoch):
            before = modifier._applied_sparsity  # a new list on every mask update
            model(torch.ones(1, 40)).sum().backward()
            wrapped.step()
            if modifier._applied_sparsity is not before:
                theirs.append((k, float(modifier._applied_sparsity[0])))
        manager.finalize(model)
    ours = _run(GMPSchedule(init_sparsity=0.05, final_sparsity=0.85, start_epoch=0.5, end_epoch=3.5,
                            update_frequency=0.4), 5 * steps_per_epoch, steps_per_epoch)
    assert len(theirs) >= 5  # start, three periodic updates, end
    assert [k for k, _ in ours] == [k for k, _ in theirs]
    assert [v for _, v in ours] == pytest.approx([v for _, v in theirs], abs=1e-12)
