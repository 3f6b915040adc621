"""Issue 22, resume: a training loop stopped after an epoch and continued from its checkpoint ends with
the weights of a loop never stopped (torch.equal on every tensor), for the teacher's loop and for the
torch backend's fine-tuning with masks on a schedule, distillation (Hinton, CRD's heads) and QAT.
"""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")

from compress_gate.compress.torch_backend import TorchCompressor  # noqa: E402
from compress_gate.config.torch_backend import TorchCompressionConfig  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from compress_gate.models import train_model  # noqa: E402
from compress_gate.models.augment import AugmentBatch  # noqa: E402
from compress_gate.models.build import build_model  # noqa: E402
from compress_gate.models.checkpoint import EpochCheckpoint, loader_generators  # noqa: E402

PARAMS = [r"re:^layer\d+\..*(conv\d+|downsample\.0)\.weight$"]
SIZE = 8
STEPS_PER_EPOCH = 3   # 24 rows, batches of 8


class Stop(KeyboardInterrupt):
    """Raised from the progress callback: a SIGINT at a chosen step."""


def _teacher():
    torch.manual_seed(0)
    return build_model("resnet", num_outputs=3, input_size=SIZE, width=8, depth=1).eval()


def _loader(workers=0):
    """A shuffling DataLoader with augmentation: two generators a resume must restore. With ``workers``, a
    persistent worker assembles the batches, unaugmented (augmentation draws belong to the main process, as
    :mod:`compress_gate.models.loaders` applies them)."""
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(24, 3, SIZE, SIZE, generator=generator)
    targets = torch.randint(0, 3, (24,), generator=generator)
    return DataLoader(TensorDataset(inputs, targets), batch_size=8, shuffle=True,
                      generator=torch.Generator().manual_seed(5), num_workers=workers,
                      persistent_workers=workers > 0,
                      collate_fn=None if workers else AugmentBatch(hflip=True, crop_scale=(0.5, 1.0), seed=5))


def _stop_after(steps):
    def progress(done, total, loss):
        if done == steps:
            raise Stop()
    return progress


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_training_steps_reports_each_finished_pass_but_the_last():
    from compress_gate.models.training import training_steps

    done = []   # 7 steps of 3 per pass: passes end after steps 3 and 6; training ends after 7 (no call)
    steps = [step for step, _, _ in training_steps([(0, 0)] * 3, 7, epoch_done=done.append)]
    assert steps == list(range(7)) and done == [3, 6]
    assert [step for step, _, _ in training_steps([(0, 0)] * 3, 7, start=6)] == [6]


def test_the_loader_generators_are_the_shuffle_and_the_augmentation():
    loader = _loader()
    found = loader_generators(loader)
    assert len(found) == 2
    assert found[0] is loader.generator and found[1] is loader.collate_fn.generator


@pytest.mark.parametrize("workers", [0, 1])   # 1: persistent workers, as streamed image files are decoded
def test_a_teacher_stopped_after_an_epoch_resumes_to_the_same_weights(tmp_path, workers):
    reference = train_model(_teacher(), _loader(workers), task="multiclass", epochs=4, lr=0.05, seed=1)
    checkpoint = EpochCheckpoint(tmp_path / "teacher.pt", key="k")
    with pytest.raises(Stop):   # step 8: epochs 1 and 2 finished, the third not
        train_model(_teacher(), _loader(workers), task="multiclass", epochs=4, lr=0.05, seed=1,
                    progress=_stop_after(8), checkpoint=checkpoint)
    assert checkpoint.load()["step"] == 2 * STEPS_PER_EPOCH
    torch.manual_seed(123)  # the global state of the new process differs: the checkpoint restores it
    resumed = train_model(_teacher(), _loader(workers), task="multiclass", epochs=4, lr=0.05, seed=1,
                          checkpoint=checkpoint)
    _same_weights(reference, resumed)
    assert checkpoint.load()["step"] == 4 * STEPS_PER_EPOCH


SECTIONS = {
    "gmp-hinton": {"epochs": 4, "lr": 0.05, "pruning": {"params": PARAMS, "final_sparsity": 0.6, "end_epoch": 3.0,
                                                        "update_frequency": 0.5},
                   "distillation": {"hardness": 0.5, "temperature": 2.0}},
    "crd": {"epochs": 4, "lr": 0.05, "distillation": {"kind": "crd"}},
}
if importlib.util.find_spec("torchao") is not None:
    SECTIONS["qat"] = {"epochs": 4, "lr": 0.02, "quantization": "qat", "qat": {"start_epoch": 1.0}}


@pytest.mark.parametrize("name", list(SECTIONS))
def test_a_fine_tune_stopped_after_an_epoch_resumes_to_the_same_weights(tmp_path, name):
    config = TorchCompressionConfig.model_validate({"backend": "torch", **SECTIONS[name]})
    reference = TorchCompressor(config).compress(_teacher(), _loader(), task="multiclass", seed=2).model
    checkpoint = EpochCheckpoint(tmp_path / "student.pt", key="k")
    with pytest.raises(Stop):   # step 8: epochs 1 and 2 finished (QAT started at epoch 1)
        TorchCompressor(config).compress(_teacher(), _loader(), task="multiclass", seed=2,
                                         progress=_stop_after(8), checkpoint=checkpoint)
    assert checkpoint.load()["step"] == 2 * STEPS_PER_EPOCH
    torch.manual_seed(123)
    resumed = TorchCompressor(config).compress(_teacher(), _loader(), task="multiclass", seed=2,
                                               checkpoint=checkpoint).model
    _same_weights(reference, resumed)


def test_a_checkpoint_of_another_key_is_refused(tmp_path):
    EpochCheckpoint(tmp_path / "c.pt", key="a").save({"step": 3})
    with pytest.raises(InputError, match="made for another recipe"):
        EpochCheckpoint(tmp_path / "c.pt", key="b").load()


def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"c\.pt: the epoch checkpoint cannot be read.*Delete it"):
        EpochCheckpoint(tmp_path / "c.pt", key="a").load()
