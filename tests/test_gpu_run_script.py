"""benchmarks/gpu_run.py, the prepared GPU run (issue 22): where no GPU is usable it says why and exits 0
without writing anything; its engine choice, recipe and data are checked here without a GPU (none is lent
to CI: the CUDA path itself has not run)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import gpu_run  # noqa: E402


def test_without_a_gpu_the_script_skips_with_the_reason_and_exit_0(tmp_path):
    if gpu_run.skip_reason() is None:
        pytest.skip("a CUDA GPU is present here: the script would run for real")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_run.py"), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("skip: ") and "Nothing was run." in done.stdout
    assert ("torch.cuda.is_available() is False" in done.stdout) or ("torch is not installed" in done.stdout)
    assert not (tmp_path / "o").exists()


def test_only_the_engines_present_are_benchmarked_and_the_others_are_named():
    engines, skipped = gpu_run.benchmark_engines({"onnxruntime": None, "onnxruntime-cuda": None,
                                                  "onnxruntime-tensorrt": "no TensorrtExecutionProvider"})
    assert engines == ["onnxruntime", "onnxruntime-cuda"]
    assert skipped == {"onnxruntime-tensorrt": "no TensorrtExecutionProvider"}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
def test_the_recipe_is_a_valid_cuda_run_of_a_resnet50_at_224_px(tmp_path):
    import torch
    import yaml

    from compress_gate.config.run import load_run_config
    from compress_gate.data import load_eval_data

    gpu_run.write_data(tmp_path / "data.npz", n_train=100, n_calib=100, n_test=200)
    data = load_eval_data(tmp_path / "data.npz")
    assert data.inputs.shape == (400, 3, 224, 224)
    assert np.array_equal(data.inputs[:, :, ::4, ::4], data.inputs[:, :, 3::4, 3::4])   # 4x4 blocks of one pixel
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(gpu_run.recipe(tmp_path, ["onnxruntime"])))
    config = load_run_config(tmp_path / "recipe.yaml")
    assert (config.device, config.amp, config.model.input_size) == ("cuda", "bf16", 224)
    if config.model.factory is not None:   # no torchvision: the file beside the recipe
        sys.path.insert(0, str(tmp_path))
        import resnet50

        assert sum(p.numel() for p in resnet50.build(1000).parameters()) == 25_557_032   # torchvision's count
        assert resnet50.build(10)(torch.zeros(1, 3, 224, 224)).shape == (1, 10)
