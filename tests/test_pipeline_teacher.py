"""The dense teacher: trained once and cached by (data, architecture, training spec, seed), or loaded."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from compress_gate.config.run import load_run_config
from compress_gate.data.contract import EvalData
from compress_gate.errors import InputError
from compress_gate.pipeline.teacher import obtain_teacher, teacher_cache_key, training_loader

torch = pytest.importorskip("torch")


def tiny_data(seed: int = 0, n: int = 48) -> EvalData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    inputs = rng.standard_normal((n, 1, 8, 8)).astype(np.float32) + labels[:, None, None, None]
    split = np.array(["train", "calib", "test"])[np.arange(n) % 3]
    return EvalData(ids=np.array([f"s{i}" for i in range(n)]), labels=np.eye(3, dtype=np.uint8)[labels],
                    split=split, groups=(np.arange(n) % 2 == 0)[:, None], group_names=("g",),
                    attribute_names=("a", "b", "c"), task="multiclass", inputs=inputs)


def config(tmp_path, *, seed=0, width=4, model=None):
    model = model or {"arch": "resnet", "width": width, "depth": 1,
                      "train": {"epochs": 1, "batch_size": 8}, "cache_dir": "cache"}
    path = tmp_path / f"r{seed}_{width}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": seed, "output": "runs/x", "model": model, "data": {"kind": "demo"},
        "compression": {"recipe": "modifiers:\n  - !EpochRangeModifier\n    start_epoch: 0\n    end_epoch: 1\n"}}))
    return load_run_config(path)


def states_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_trained_teacher_is_cached_and_reloaded(tmp_path):
    data = tiny_data()
    first, info = obtain_teacher(config(tmp_path), data, save_to=tmp_path / "t1.pt")
    assert info.source == "trained" and info.path.is_file() and info.path.parent == tmp_path / "cache"
    again, info2 = obtain_teacher(config(tmp_path), data, save_to=tmp_path / "t2.pt")
    assert info2.source == "cache" and info2.cache_key == info.cache_key
    assert states_equal(first.state_dict(), again.state_dict())
    assert states_equal(torch.load(tmp_path / "t2.pt", weights_only=True), first.state_dict())


def test_cache_key_changes_with_data_architecture_spec_and_seed(tmp_path):
    data = tiny_data()
    base = teacher_cache_key(config(tmp_path), data)
    assert teacher_cache_key(config(tmp_path), data) == base
    assert teacher_cache_key(config(tmp_path, seed=1), data) != base
    assert teacher_cache_key(config(tmp_path, width=8), data) != base
    assert teacher_cache_key(config(tmp_path), tiny_data(seed=1)) != base
    other_spec = {"arch": "resnet", "width": 4, "depth": 1, "train": {"epochs": 2, "batch_size": 8}}
    assert teacher_cache_key(config(tmp_path, model=other_spec), data) != base


def test_checkpoint_is_loaded_and_a_mismatched_one_refused(tmp_path):
    data = tiny_data()
    trained, _ = obtain_teacher(config(tmp_path), data, save_to=tmp_path / "teacher.pt")
    loaded, info = obtain_teacher(config(tmp_path, model={"arch": "resnet", "width": 4, "depth": 1,
                                                          "checkpoint": "teacher.pt"}),
                                  data, save_to=tmp_path / "copy.pt")
    assert info.source == "checkpoint"
    assert states_equal(trained.state_dict(), loaded.state_dict())
    wrong = config(tmp_path, model={"arch": "resnet", "width": 8, "depth": 1, "checkpoint": "teacher.pt"})
    with pytest.raises(InputError, match="does not fit the recipe's model"):
        obtain_teacher(wrong, data, save_to=tmp_path / "never.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    junk = config(tmp_path, model={"arch": "resnet", "width": 4, "depth": 1, "checkpoint": "junk.pt"})
    with pytest.raises(InputError, match="weights_only=True"):
        obtain_teacher(junk, data, save_to=tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


def test_training_loader_order_follows_the_seed():
    data = tiny_data()

    def first_batch(seed):
        return next(iter(training_loader(data, batch_size=4, seed=seed)))[0]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))


def test_a_corrupt_cache_file_is_exit_2_advising_to_delete_it(tmp_path):
    data = tiny_data()
    _, info = obtain_teacher(config(tmp_path), data, save_to=tmp_path / "t1.pt")
    info.path.write_bytes(b"truncated")
    with pytest.raises(InputError) as caught:
        obtain_teacher(config(tmp_path), data, save_to=tmp_path / "never.pt")
    message = " ".join(str(caught.value).split())
    assert f"Delete the cache file {info.path}" in message and "torch.save" not in message
    assert not (tmp_path / "never.pt").exists()


def test_a_cache_file_holding_another_recipes_teacher_is_refused(tmp_path):
    data = tiny_data()
    _, info = obtain_teacher(config(tmp_path), data, save_to=tmp_path / "t1.pt")
    _, other = obtain_teacher(config(tmp_path, seed=1), data, save_to=tmp_path / "t2.pt")
    other.path.replace(info.path)                   # seed 1's teacher under seed 0's file name
    with pytest.raises(InputError, match=r"made for another recipe or data .* Delete .*teacher-"):
        obtain_teacher(config(tmp_path), data, save_to=tmp_path / "never.pt")
    torch.save(torch.load(tmp_path / "t1.pt", weights_only=True), info.path)   # a bare state_dict: no key
    with pytest.raises(InputError, match="holds no key saying what it was made for"):
        obtain_teacher(config(tmp_path), data, save_to=tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()


def test_keyed_state_hand_made_cases(tmp_path):
    from compress_gate._keyed_state import keyed_state, with_key

    state = {"w": 1}
    assert keyed_state(with_key(state, "ab" * 32), "ab" * 32, tmp_path / "f.pt", "cached teacher") is state
    for stored in (state, {"key": 3, "state_dict": state}, {"key": "ab" * 32, "state_dict": [1]}, None):
        with pytest.raises(InputError, match="holds no key"):
            keyed_state(stored, "ab" * 32, tmp_path / "f.pt", "cached teacher")
    with pytest.raises(InputError, match=r"its key cdcdcdcdcdcdcdcd\.\.\., this run's abababababababab\.\.\."):
        keyed_state(with_key(state, "cd" * 32), "ab" * 32, tmp_path / "f.pt", "cached teacher")
