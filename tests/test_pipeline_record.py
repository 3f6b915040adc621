"""The run's record (run.json, exit 3 keeps completed work) and its headline summary."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from _report_fixture import demo_report
from rich.console import Console
from typer.testing import CliRunner

from _worlds import needs_sparseml

from compress_gate.cli import app
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.pipeline._record import RunRecord, json_ready
from compress_gate.report.schema import BAComparison
from compress_gate.pipeline.summary import metrics_summary, summary_table
from compress_gate.report._tables import largest_ba_increase


def recipe(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({
        "output": "runs/x", "model": {"arch": "resnet", "width": 4, "train": {"epochs": 1}},
        "data": {"kind": "demo"},
        "compression": {"recipe": "modifiers:\n  - !EpochRangeModifier\n    start_epoch: 0\n    end_epoch: 1\n"}}))
    return path


@needs_sparseml
@pytest.mark.parametrize(("error", "exit_code"), [(RuntimeFailure("engine crashed"), 3),
                                                  (InputError("bad column"), 2)])
def test_a_failed_stage_keeps_completed_work_and_says_where(tmp_path, monkeypatch, error, exit_code):
    import compress_gate.data

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(compress_gate.data, "load_dataset", broken)
    result = CliRunner().invoke(app, ["run", str(recipe(tmp_path))])
    assert result.exit_code == exit_code
    assert str(error) in " ".join(result.output.split())
    run_dir = tmp_path / "runs" / "x"
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_stage"] == "data"
    assert "config" in record["stage_seconds"] and "data" not in record["stage_seconds"]
    assert (run_dir / "recipe.yaml").read_text() == (tmp_path / "r.yaml").read_text()
    assert not (run_dir / "release").exists() and not (run_dir / "refused").exists()


def test_record_times_stages_and_turns_memory_errors_into_runtime_failures(tmp_path):
    record = RunRecord(tmp_path, {"seed": 1})
    with record.stage("fast"):
        pass
    with pytest.raises(RuntimeFailure, match="stage `oom` failed: MemoryError"), record.stage("oom"):
        raise MemoryError
    saved = json.loads((tmp_path / "run.json").read_text())
    assert set(saved["stage_seconds"]) == {"fast"} and saved["stage_seconds"]["fast"] >= 0
    assert saved["failed_stage"] == "oom" and saved["seed"] == 1


def test_json_ready_follows_the_one_convention():
    import numpy as np

    # the convention of every file the tool writes: nan -> null, +-inf -> "inf"/"-inf"
    assert json_ready({"a": math.nan, "b": [np.float32(0.5), math.inf, -math.inf], "c": np.array([1, 2])}) == \
        {"a": None, "b": [0.5, "inf", "-inf"], "c": [1, 2]}


def test_worst_ba_increase_skips_undefined_pairs():
    # defined increases: 0.02, -0.1, 0.07 -> worst (largest) is 0.07
    table = {"digit_7": {"marked": 0.02, "young": {"undefined": "too few positives"}},
             "digit_3": {"marked": -0.1, "young": 0.07}}
    assert largest_ba_increase(_ba(table)) == ("digit_3 / young", pytest.approx(0.07))
    assert largest_ba_increase(_ba({"a": {"g": {"undefined": "x"}}})) is None
    assert largest_ba_increase(None) is None


def _ba(increase: dict) -> BAComparison:
    return BAComparison.model_validate({"student": increase, "increase": increase})


def fake_report(after: bool) -> dict:
    """The demo fixture with the numbers the summary tests check."""
    report = demo_report()
    metrics = report["metrics"]
    metrics["teacher"]["accuracy"], metrics["student"]["accuracy"] = 0.9, 0.85
    metrics["cev"]["value"], metrics["sde"]["value"] = 12.5, 3.0
    metrics["ba"]["increase"] = {"x": {"g": 0.04}}
    report["limits"] = [{**report["limits"][0], "name": "ba <= 0.02", "passed": False, "outcome": "fail"},
                        {**report["limits"][2], "name": "acc", "passed": True, "outcome": "pass"}]
    report["benchmarks"] = {"speedups": [
        {"model": "student", "engine": "onnxruntime", "batch_size": 1, "ratio": 1.1},
        {"model": "student", "engine": "onnxruntime", "batch_size": 32, "ratio": 2.5}]}
    report["mitigation"] = None
    if after:
        report["mitigation"] = demo_report()["mitigation"]
        mitigated = report["mitigation"]["after"]
        mitigated["accuracy"], mitigated["cev"]["value"], mitigated["sde"]["value"] = 0.86, 10.0, 2.0
        mitigated["ba"]["increase"] = {"x": {"g": 0.01}}
    return report


def test_metrics_summary_reads_the_report():
    summary = metrics_summary(fake_report(after=True),
                              compression={"overall_sparsity": 0.8, "quantized": True}).model_dump()
    assert summary["teacher_accuracy"] == 0.9 and summary["student_accuracy_mitigated"] == 0.86
    assert summary["worst_ba_increase"] == 0.04 and summary["worst_ba_increase_mitigated"] == 0.01
    assert summary["speedup"] == {"onnxruntime@32": 2.5}            # the largest batch measured
    assert summary["limits_failed"] == ["ba <= 0.02"] and summary["limits_passed"] == 1
    plain = metrics_summary(fake_report(after=False), compression={}).model_dump()
    assert plain["cev_mitigated"] is None and plain["overall_sparsity"] is None


def test_summary_table_shows_verdict_numbers_and_stage_times():
    summary = metrics_summary(fake_report(after=True), compression={"overall_sparsity": 0.8, "quantized": True})
    console = Console(record=True, width=200)
    console.print(summary_table(summary, {"teacher": 12.0, "compress": 30.5}, bundle="runs/x/refused"))
    text = console.export_text()
    assert "REFUSED" in text and "80.0%" in text and "0.0400 → 0.0100" in text
    assert "compress 30.5s" in text and "total 42.5s" in text and "onnxruntime@32 2.50x" in text


@needs_sparseml
def test_a_foreign_non_empty_output_directory_is_refused(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "data.npz").write_bytes(b"mine")
    result = CliRunner().invoke(app, ["run", str(recipe(tmp_path))])
    assert result.exit_code == 2 and "not a compress-gate run directory" in " ".join(result.output.split())
    assert (tmp_path / "runs" / "x" / "data.npz").read_bytes() == b"mine"


@needs_sparseml
def test_a_gate_setting_the_data_cannot_take_is_refused_before_training(tmp_path):
    path = recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["gate"] = {"mitigation": {"calibrate_thresholds": True}}
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "calibrate_thresholds" in result.output
    record = json.loads((tmp_path / "runs" / "x" / "run.json").read_text())
    assert record["failed_stage"] == "data" and "teacher" not in record


@needs_sparseml
def test_an_unavailable_deployment_engine_is_refused_before_any_work(tmp_path, monkeypatch):
    import compress_gate.engines

    monkeypatch.setattr(compress_gate.engines, "engine_availability",
                        lambda: {"onnxruntime": None, "deepsparse": None, "onnxruntime-tensorrt": None,
                                 "onnxruntime-cuda": "no CUDA device"})
    path = recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["engines"] = {"deployment": "onnxruntime-cuda"}
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "no CUDA device" in result.output
    assert not (tmp_path / "runs").exists()


@needs_sparseml
@pytest.mark.parametrize(("typo", "said"), [
    ("!EpochRangeModifer", "EpochRangeModifer"),                  # a modifier name: the recipe schema
    ("!EpochRangeModifier\n    end_epochs: 1", "`compression.recipe`: recipe text: SparseML cannot load the "
     "recipe (TypeError: EpochRangeModifier.__init__() got an unexpected keyword argument 'end_epochs')")])
def test_a_sparseml_recipe_typo_is_refused_before_the_data_stage(tmp_path, monkeypatch, typo, said):
    import compress_gate.data

    def forbidden(*args, **kwargs):
        raise AssertionError("the data stage ran before the SparseML recipe was checked")

    monkeypatch.setattr(compress_gate.data, "load_dataset", forbidden)
    path = recipe(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["compression"]["recipe"] = f"modifiers:\n  - {typo}\n    start_epoch: 0\n    end_epoch: 1\n"
    path.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and said in " ".join(result.output.split())
    assert not (tmp_path / "runs").exists()
