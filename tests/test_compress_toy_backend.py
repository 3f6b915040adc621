"""A third compression backend, added the way docs/architecture.md says: the backend's own module
(here, this file: a config model and a :class:`~compress_gate.compress.backend.Compressor`) plus
one registry line, a :class:`~compress_gate.config.backends.Backend` in
:data:`compress_gate.config.backends.BACKENDS` naming both. Nothing in config loading, ``run``
or ``sweep`` changes for it.

The toy prunes by magnitude: in every conv and linear weight it zeroes the ``1 - keep`` share of
entries with the smallest |w| (ties to the earlier entry), with no training.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from compress_gate.compress.backend import CompressionResult, Compressor, get_compressor, read_parity, write_parity
from compress_gate.config.backends import BACKENDS, Backend
from compress_gate.config.run import load_run_config
from compress_gate.errors import InputError


# --- the backend's own module ------------------------------------------------------------------
class ToyCompressionConfig(BaseModel):
    """``compression: {backend: toy, keep: 0.5}``: keep the largest ``keep`` share of each weight."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    backend: Literal["toy"] = "toy"
    keep: float = Field(0.5, gt=0, le=1, strict=True)
    batch_size: int = Field(8, ge=1, strict=True)

    def resolved(self, base: Path, source: Path) -> ToyCompressionConfig:
        return self


class ToyCompressor:
    name = "toy"
    needs_groups = False

    def __init__(self, config: ToyCompressionConfig, export: Any) -> None:
        self.config, self.export_config = config, export

    def check_recipe(self) -> None:
        """Nothing beyond the config model."""

    def run_files(self) -> dict[str, str]:
        return {"toy.txt": f"keep {self.config.keep}\n"}

    def check_students(self, sparsities: Sequence[float], masks: Sequence[str], *, source: str | Path) -> None:
        if masks:
            raise InputError(f"{source}: the toy backend prunes no N:M mask; drop --mask.")

    def student_compression(self, sparsity: float, *, mask: str | None = None,
                            source: str | Path) -> dict[str, Any]:
        return {**self.config.model_dump(mode="json"), "keep": round(1 - sparsity, 12)}

    def compress(self, teacher: Any, loader: Iterable[Any], *, task: str, seed: int,
                 progress: Callable[..., None] | None = None, checkpoint: Any = None,
                 placement: Any = None) -> CompressionResult:
        import torch

        student = copy.deepcopy(teacher).eval()
        sparsity = {}
        for name, module in student.named_modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                weight = module.weight.data.view(-1)
                drop = weight.numel() - math.ceil(self.config.keep * weight.numel())
                order = torch.argsort(weight.abs(), stable=True)
                weight[order[:drop]] = 0.0
                sparsity[f"{name}.weight"] = float((weight == 0).float().mean())
        return CompressionResult(model=student, sparsity=sparsity, overall_sparsity=math.nan,
                                 target_sparsity=1 - self.config.keep, quantized=False, distilled=False,
                                 epochs=0.0, recipe="")

    def export(self, result: CompressionResult, directory: Path, *, sample: np.ndarray, task: str,
               calib: np.ndarray | None) -> dict[str, Path]:
        from compress_gate.compress import check_parity, export_onnx

        path = export_onnx(result.model, Path(directory) / "student.onnx", input_shape=tuple(sample.shape[1:]),
                           task=task, opset=self.export_config.opset)
        difference = check_parity(result.model, path, sample, task=task, atol=self.export_config.parity_atol)
        write_parity(directory, {path.name: {"max_score_difference": difference,
                                             "tolerance": self.export_config.parity_atol, "reference": "student"}})
        return {"onnxruntime": path}


# --- its registry line (a fixture here, so that it is undone after each test) ----------------------
@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(BACKENDS, "toy", Backend(f"{__name__}:ToyCompressionConfig", __name__, "ToyCompressor", (),
                                                 "toy", "any"))


# --- what the rest of compress-gate does with it, unchanged ---------------------------------------
def _recipe(directory: Path) -> Path:
    recipe = {"seed": 0, "output": "run", "model": {"arch": "resnet", "width": 4, "depth": 1, "train": {"epochs": 1}},
              "data": {"kind": "demo", "image_size": 8}, "compression": {"backend": "toy", "keep": 0.25}}
    path = directory / "toy.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def test_a_toy_backend_loads_runs_its_checks_and_makes_sweep_students(toy, tmp_path):
    from compress_gate.pipeline import run as run_module
    from compress_gate.pipeline.sweep import student_recipe

    source = _recipe(tmp_path)
    config = load_run_config(source)
    assert config.compression == ToyCompressionConfig(keep=0.25)
    compressor = get_compressor(config.compression, config.export)
    assert isinstance(compressor, Compressor) and isinstance(compressor, ToyCompressor)
    student = student_recipe(config, 0.8, sweep_dir=tmp_path / "sweep", source=source)
    assert student["compression"] == {"backend": "toy", "keep": 0.2, "batch_size": 8}
    with pytest.raises(InputError, match="prunes no N:M mask"):
        compressor.check_students([0.5], ["2:4"], source=source)
    pytest.importorskip("torch")          # run's checks place the run on a torch device
    run_module._check_before_work(config, source, compressor)
    run_module._prepare_run_dir(source, config, compressor)
    assert (tmp_path / "run" / "toy.txt").read_text() == "keep 0.25\n"


def test_an_unregistered_toy_is_refused_naming_the_backends(tmp_path):
    with pytest.raises(InputError, match="`compression.backend` = 'toy' is not a compression backend"):
        load_run_config(_recipe(tmp_path))


def test_the_toy_backend_compresses_and_exports_with_recorded_parity(toy, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from compress_gate.config.run import ExportConfig

    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    compressor = get_compressor(ToyCompressionConfig(keep=0.25), ExportConfig())
    result = compressor.compress(teacher, [], task="multilabel", seed=0)
    # keep 0.25: conv 108 weights -> ceil(27) kept, 81 zeroed; linear 288 -> 72 kept, 216 zeroed
    assert result.sparsity == {"0.weight": 81 / 108, "2.weight": 216 / 288}
    assert float((teacher[0].weight == 0).float().mean()) == 0.0            # the teacher is not modified
    sample = np.random.default_rng(0).random((4, 3, 8, 8), dtype=np.float32)
    artefacts = compressor.export(result, tmp_path, sample=sample, task="multilabel", calib=None)
    assert artefacts == {"onnxruntime": tmp_path / "student.onnx"}
    assert read_parity(tmp_path, backend="toy")["student.onnx"]["max_score_difference"] <= 1e-4


@pytest.mark.slow
def test_a_whole_run_on_the_toy_backend_renders_its_report_once_from_report_json(toy, tmp_path):
    # slow (about 40 s: teacher training, export, gate). The run's additions (stage times, similarity) are
    # typed sections of report.json; report.html is the renderer's output for it, nothing spliced in afterwards
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import json

    from compress_gate.pipeline.run import run_recipe
    from compress_gate.report.html import build_html

    source = _recipe(tmp_path)
    raw = yaml.safe_load(source.read_text())
    raw["engines"] = {"deployment": "onnxruntime", "check": [], "benchmark": {"enabled": False}}
    raw["gate"] = {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                   "limits": [{"metric": "accuracy", "change": "absolute", "min": -1.0, "bound": "point"}]}
    source.write_text(yaml.safe_dump(raw, sort_keys=False))
    outcome = run_recipe(source)
    report = json.loads((outcome.run_dir / "gate" / "report.json").read_text())
    assert report["run"]["similarity"] == json.loads((outcome.run_dir / "similarity.json").read_text())
    assert set(report["run"]["stage_seconds"]) >= {"compress", "similarity", "gate"}
    assert (outcome.run_dir / "gate" / "report.html").read_text() == build_html(report)


def test_without_torch_runs_checks_are_refused_naming_the_extras(toy, tmp_path, monkeypatch):
    """A backend that needs no package of its own (the toy) still runs on torch: where torch does not
    import (the core install), run's checks are an InputError (exit 2) naming the extras, not a crash."""
    import sys

    from compress_gate.pipeline import run as run_module

    source = _recipe(tmp_path)
    config = load_run_config(source)
    compressor = get_compressor(config.compression, config.export)
    monkeypatch.setitem(sys.modules, "torch", None)          # `import torch` raises ImportError
    with pytest.raises(InputError, match=r"toy\.yaml: `compress-gate run` trains .* \[torch\] or \[sparseml\] extra"):
        run_module._check_before_work(config, source, compressor)
    assert not (tmp_path / "run").exists()
