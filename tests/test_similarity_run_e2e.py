"""A real `compress-gate run` writes similarity.json and the report's typed similarity section, rendered with
the rest of report.html (slow: trains a tiny teacher and student).

The student is channel-pruned by the torch backend (Torch-Pruning), so teacher and student
layers differ in width: the measures must still be defined and in [0, 1].
"""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("torch_pruning")  # the [torch] world's structured pruning
from compress_gate.cli import app
from compress_gate.report.html import build_html

pytestmark = pytest.mark.slow


def test_a_channel_pruned_run_has_per_layer_similarity_in_its_directory_and_report(tmp_path):
    recipe = {
        "seed": 0, "output": "run",
        "model": {"arch": "resnet", "width": 8, "depth": 1, "cache_dir": "cache",
                  "train": {"epochs": 3, "lr": 0.05, "batch_size": 64}},
        "data": {"kind": "demo", "image_size": 8},
        "compression": {"backend": "torch", "epochs": 1, "lr": 0.01, "structured": {"ratio": 0.5}},
        "engines": {"deployment": "onnxruntime", "check": [],
                    "benchmark": {"engines": ["onnxruntime"], "batch_sizes": [8], "warmup": 1, "iterations": 2}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                 "limits": [{"metric": "accuracy", "change": "absolute", "min": -1.0, "bound": "point"}]},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "run"
    similarity = json.loads((run_dir / "similarity.json").read_text())
    assert list(similarity["layers"]) == ["layer1", "layer2", "layer3"]
    assert similarity["split"] == "calib" and similarity["n_rows"] == min(512, similarity["n_rows"])
    for row in similarity["layers"].values():
        assert 0.0 <= row["cka"] <= 1.0 and 0.0 <= row["svcca"] <= 1.0
    assert 0.0 < similarity["mean"]["cka"] < 1.0                         # pruned and fine-tuned: not identical
    assert "similarity" in json.loads((run_dir / "run.json").read_text())["stage_seconds"]
    for directory in (run_dir / "gate", run_dir / "release"):
        report = json.loads((directory / "report.json").read_text())
        assert report["run"]["similarity"] == similarity                  # the typed section, same numbers
        page = (directory / "report.html").read_text()
        assert page == build_html(report)                                 # rendered once from it, nothing spliced
        assert page.count('<section id="similarity">') == 1
