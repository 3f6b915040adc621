"""Issue 22, devices: the recipe's `device`/`amp` keys, chosen by one function (tested with a mocked
torch.cuda: no GPU is lent to CI), refused with exit 2 naming the key, and recorded in run.json."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from compress_gate.cli import app  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from compress_gate.models.device import select_device  # noqa: E402


@pytest.fixture
def gpus(monkeypatch):
    """``gpus(n)``: torch.cuda reports n devices (0: CUDA unavailable)."""
    def set_count(n):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Mock GPU {device}")
    return set_count


@pytest.mark.parametrize(("count", "spec", "expected"), [
    (0, "auto", "cpu"), (2, "auto", "cuda:0"), (0, "cpu", "cpu"), (2, "cpu", "cpu"),
    (1, "cuda", "cuda:0"), (2, "cuda:1", "cuda:1"),
])
def test_the_device_is_chosen_from_the_key_and_the_gpus_present(gpus, count, spec, expected):
    gpus(count)
    assert str(select_device(spec).device) == expected


@pytest.mark.parametrize(("count", "spec", "amp", "message"), [
    (0, "cuda", None, "`device` = 'cuda' but torch sees no CUDA GPU here"),
    (0, "cuda:0", None, "`device` = 'cuda:0' but torch sees no CUDA GPU here"),
    (2, "cuda:2", None, "`device` = 'cuda:2' but this machine has 2 CUDA device(s), cuda:0 to cuda:1"),
    (0, "auto", "bf16", "`amp` = 'bf16' needs a CUDA device, but the run computes on the CPU"),
    (2, "cpu", "fp16", "`amp` = 'fp16' needs a CUDA device"),
    (2, "gpu", None, "`device` = 'gpu' must be auto, cpu, cuda or cuda:N"),
    (2, "cuda", "fp8", "`amp` = 'fp8' must be bf16 or fp16"),
])
def test_a_device_or_amp_this_machine_cannot_run_is_refused_naming_the_key(gpus, count, spec, amp, message):
    gpus(count)
    with pytest.raises(InputError, match="^r.yaml: ") as caught:
        select_device(spec, amp, source="r.yaml")
    assert message in str(caught.value)


def test_amp_on_cuda_autocasts_in_its_dtype(gpus):
    gpus(1)
    placement = select_device("cuda", "bf16")
    assert placement.amp == "bf16" and placement.scaler is None
    assert placement.describe("Some CPU") == {"device": "cuda:0", "name": "Mock GPU cuda:0", "amp": "bf16"}


def test_the_cpu_placement_leaves_the_loader_and_the_step_as_they_were(gpus):
    gpus(0)
    placement = select_device("auto")
    loader = [(torch.ones(2, 1), torch.zeros(2))]
    assert placement.batches(loader) is loader and placement.state_dict() is None
    assert placement.describe("Some CPU") == {"device": "cpu", "name": "Some CPU", "amp": None}


def _recipe(tmp_path, **top):
    recipe = {"seed": 0, "output": "run",
              "model": {"arch": "resnet", "width": 4, "depth": 1, "train": {"epochs": 1}},
              "data": {"kind": "demo", "image_size": 8},
              "compression": {"backend": "torch", "epochs": 1, "distillation": {"hardness": 0.5, "temperature": 2.0}},
              "engines": {"deployment": "onnxruntime", "check": [], "benchmark": {"enabled": False}}, **top}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.mark.parametrize(("top", "message"), [
    ({"device": "gpu"}, "`device` = 'gpu'"),
    ({"device": "cpu", "amp": "bf16"}, "`amp` = 'bf16' needs a CUDA device, but `device` is 'cpu'"),
    ({"amp": "fp8"}, "`amp` = 'fp8'"),
])
def test_a_bad_device_key_is_exit_2_when_the_recipe_loads(tmp_path, top, message):
    result = CliRunner().invoke(app, ["run", str(_recipe(tmp_path, **top))])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_a_cuda_run_without_a_gpu_is_exit_2_before_any_work(tmp_path, gpus):
    pytest.importorskip("torch_pruning")   # the torch backend's extra: its check comes first
    gpus(0)
    result = CliRunner().invoke(app, ["run", str(_recipe(tmp_path, device="cuda"))])
    assert result.exit_code == 2, result.output
    assert "`device` = 'cuda' but torch sees no CUDA GPU here" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()
