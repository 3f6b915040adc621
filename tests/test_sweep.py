"""`compress-gate sweep`: per-sparsity recipes, the numbers read from each report, the chosen student.

Fast tests replace the per-student run with a stub that writes a report.json; the slow test
runs two real students of a tiny recipe end to end.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.config.run import load_run_config
from compress_gate.errors import InputError
from compress_gate.pipeline import _sweep_recipes
from compress_gate.pipeline._sweep_rows import calibrated_report
from compress_gate.pipeline.run import RunOutcome
from compress_gate.compress.sparseml_backend import set_final_sparsity
from compress_gate.pipeline.sweep import choose_student, parse_sparsities, run_sweep, student_numbers, student_recipe

SPARSEML = """\
version: 1.1.0
num_epochs: 2.0
final_sparsity: 0.9
training_modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: eval(num_epochs)
pruning_modifiers:
  - !GMPruningModifier
    params: ['re:^layer\\d+\\..*(conv\\d+|downsample\\.0)\\.weight$']
    init_sparsity: 0.05
    final_sparsity: eval(final_sparsity)
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 0.5
    mask_type: unstructured
    leave_enabled: true
"""


def tiny_recipe(directory: Path, *, limits: list[dict], sparseml: str = SPARSEML) -> Path:
    recipe = {
        "seed": 0, "output": "sweep",
        "model": {"arch": "resnet", "width": 4, "depth": 1, "train": {"epochs": 6, "lr": 0.05, "batch_size": 64}},
        "data": {"kind": "demo", "image_size": 8},
        "compression": {"recipe": sparseml, "lr": 0.01},
        "engines": {"deployment": "onnxruntime", "check": [],
                    "benchmark": {"engines": ["onnxruntime"], "batch_sizes": [8], "warmup": 1, "iterations": 3}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                 "limits": limits},
    }
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


# --- the SparseML variable and the sparsities ------------------------------------------
def test_set_final_sparsity_replaces_the_top_level_variable_only():
    text = set_final_sparsity(SPARSEML, 0.5, source="r.yaml")
    assert "\nfinal_sparsity: 0.5\n" in text
    assert "final_sparsity: eval(final_sparsity)" in text            # the modifier still reads it
    assert text.count("final_sparsity: 0.9") == 0


def test_a_recipe_without_the_variable_is_refused():
    fixed = SPARSEML.replace("final_sparsity: 0.9\n", "").replace("eval(final_sparsity)", "0.9")
    with pytest.raises(InputError, match=r"r.yaml: .*top-level variable `final_sparsity`.*eval\(final_sparsity\)"):
        set_final_sparsity(fixed, 0.5, source="r.yaml")


@pytest.mark.parametrize(("texts", "message"), [
    (["0.5", "x"], r"--sparsity 'x' is not a number"),
])
def test_parse_sparsities_refuses_text(texts, message):
    with pytest.raises(InputError, match=message):
        parse_sparsities(texts)


@pytest.mark.parametrize(("values", "message"), [
    ([], "at least one sparsity"), ([0.5, 1.0], r"--sparsity 1.0 is not a sparsity"),
    ([0.0], r"--sparsity 0.0 is not a sparsity"), ([0.5, 0.5], "more than once"),
])
def test_bad_sparsities_are_input_errors_before_any_work(tmp_path, values, message):
    recipe = tiny_recipe(tmp_path, limits=[])
    with pytest.raises(InputError, match=message):
        run_sweep(recipe, values)
    assert not (tmp_path / "sweep").exists()


def test_student_recipe_round_trips_with_only_output_cache_and_sparsity_changed(tmp_path):
    source = tiny_recipe(tmp_path, limits=[{"metric": "accuracy", "change": "absolute", "min": -0.1}])
    config = load_run_config(source)
    raw = student_recipe(config, 0.8, sweep_dir=config.output, source=source)
    written = tmp_path / "elsewhere" / "student.yaml"
    written.parent.mkdir()
    written.write_text(yaml.dump(raw, Dumper=_sweep_recipes._BlockDumper, sort_keys=False))
    student = load_run_config(written)
    assert student.output == tmp_path / "sweep" / "sparsity-0.8"
    assert student.cache_dir == config.cache_dir == tmp_path / ".cache"     # one teacher for every student
    assert "final_sparsity: 0.8\n" in student.compression.recipe
    assert "\n  recipe: |\n" in written.read_text()   # the SparseML recipe as a readable block, not an escaped string
    same = {"output": student.output, "model": config.model.model_copy(update={"cache_dir": config.cache_dir}),
            "compression": config.compression.model_copy(update={"recipe": student.compression.recipe})}
    assert student.model_dump() == config.model_copy(update=same).model_dump()


# --- the numbers read from a report -----------------------------------------------------
def _report(verdict: str, *, accuracy: float, ba: float) -> dict:
    return {
        "verdict": verdict,
        "metrics": {
            "teacher": {"accuracy": 0.9, "per_attribute": {"a": {"uncertainty": 0.1, "tcb": 1.0},
                                                           "b": {"uncertainty": 0.3, "tcb": 0.8}}},
            "student": {"accuracy": accuracy, "per_attribute": {"a": {"uncertainty": 0.2, "tcb": 0.9},
                                                                "b": {"uncertainty": None, "tcb": 0.5}}},
            "ba": {"increase": {"a": {"g": ba, "h": {"undefined": "too few"}}, "b": {"g": -0.01, "h": 0.02}}},
            "cev": {"value": 12.0, "ci": [3.0, 30.0]}, "sde": {"value": 4.0, "ci": None},
        },
        "mitigation": {"after": {"accuracy": accuracy + 0.01, "ba": {"increase": {"a": {"g": ba / 2}}}}},
        "limits": [{"name": "ba absolute change <= 0.05 (upper)", "metric": "ba", "observed": ba,
                    "ci": [ba - 0.01, ba + 0.01], "limit": 0.05, "passed": verdict == "pass"}],
        "run": {"compression": {"overall_sparsity": 0.79}, "summary": {"speedup": {"deepsparse@64": 2.5}}},
    }


def test_student_numbers_by_hand():
    numbers = student_numbers(_report("pass", accuracy=0.88, ba=0.04))
    # uncertainty: student mean over defined attributes = 0.2 (b undefined); teacher (0.1 + 0.3) / 2 = 0.2
    # tcb: student (0.9 + 0.5) / 2 = 0.7; teacher (1.0 + 0.8) / 2 = 0.9; worst BA increase max(0.04, -0.01, 0.02)
    assert numbers["uncertainty"] == pytest.approx(0.2) and numbers["teacher_uncertainty"] == pytest.approx(0.2)
    assert numbers["tcb"] == pytest.approx(0.7) and numbers["teacher_tcb"] == pytest.approx(0.9)
    assert numbers["ba_increase"] == 0.04 and numbers["ba_increase_mitigated"] == 0.02
    assert (numbers["accuracy"], numbers["teacher_accuracy"], numbers["accuracy_mitigated"]) == (0.88, 0.9, 0.89)
    assert (numbers["cev"], numbers["cev_ci"], numbers["sde"], numbers["sde_ci"]) == (12.0, [3.0, 30.0], 4.0, None)
    assert numbers["sparsity"] == 0.79 and numbers["speedup"] == {"deepsparse@64": 2.5}
    assert numbers["limits"] == [{"name": "ba absolute change <= 0.05 (upper)", "metric": "ba", "observed": 0.04,
                                  "ci": [0.03, 0.05], "limit": 0.05, "outcome": "pass"}]


def test_student_numbers_of_an_empty_or_odd_report_are_none():
    numbers = student_numbers({"metrics": {"student": {"accuracy": "high"}}, "limits": [{"outcome": "unsure"}]})
    assert numbers["accuracy"] is None and numbers["uncertainty"] is None and numbers["speedup"] == {}
    assert numbers["limits"][0]["outcome"] == "unsure"


def test_choose_student_is_the_most_compressed_pass():
    rows = [{"requested_sparsity": 0.5, "verdict": "pass"}, {"requested_sparsity": 0.8, "verdict": "pass"},
            {"requested_sparsity": 0.9, "verdict": "fail"}]
    assert choose_student(rows) == 0.8
    assert choose_student([{"requested_sparsity": 0.5, "verdict": "fail"}]) is None


# --- the sweep with stub students -------------------------------------------------------
@pytest.fixture
def stub_runs(monkeypatch):
    """run_recipe replaced: each student 'passes' when its sparsity is < 0.85; records the recipes it got."""
    seen: list[Path] = []

    def fake_run_recipe(path, *, console=None):
        config = load_run_config(path)
        sparsity = float(config.compression.recipe.split("final_sparsity: ")[1].split("\n")[0])
        passed = sparsity < 0.85 and not (config.seed == 2 and sparsity == 0.8)   # seed 2 fails at 0.8
        run_dir = config.output
        bundle = run_dir / ("release" if passed else "refused")
        (run_dir / "gate").mkdir(parents=True)
        bundle.mkdir()
        (bundle / "model.onnx").write_text(f"student {sparsity}")
        report = _report("pass" if passed else "fail", accuracy=0.9 - sparsity / 10 - config.seed / 100,
                         ba=sparsity / 10)
        (run_dir / "gate" / "report.json").write_text(json.dumps(report))
        (run_dir / "teacher.pt").write_text(f"teacher of seed {config.seed}")
        seen.append(Path(path))
        return RunOutcome(passed=passed, run_dir=run_dir, bundle_dir=bundle, report=report, summary={},
                          stage_seconds={"teacher": 1.0})

    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", fake_run_recipe)
    monkeypatch.setattr("compress_gate.bundle.verify_bundle", lambda path: None)
    return seen


def test_sweep_runs_each_sparsity_and_marks_the_most_compressed_pass(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.9", "0.5", "0.8", "--release"])
    assert result.exit_code == 0, result.output
    sweep_dir = tmp_path / "sweep"
    assert "most compressed passing student: 0.8" in result.output and "sweep.html" in result.output
    assert [p.name for p in stub_runs] == ["sparsity-0.5.yaml", "sparsity-0.8.yaml", "sparsity-0.9.yaml"]
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["chosen"] == 0.8 and summary["sparsities"] == [0.5, 0.8, 0.9]
    assert [row["verdict"] for row in summary["students"]] == ["pass", "pass", "fail"]
    assert summary["students"][1]["ba_increase"] == pytest.approx(0.08)
    assert (sweep_dir / "release" / "model.onnx").read_text() == "student 0.8"
    html = (sweep_dir / "sweep.html").read_text()
    assert "sparsity 0.8" in html and "data:image/png;base64," in html and "pass (chosen)" in html


def test_seeds_train_n_students_per_setting_from_one_teacher_and_report_the_spread(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.5", "-s", "0.8", "--seeds", "3"])
    assert result.exit_code == 0, result.output
    sweep_dir = tmp_path / "sweep"
    assert [p.name for p in stub_runs] == ["sparsity-0.5.yaml", "sparsity-0.8.yaml", "sparsity-0.5.seed-1.yaml",
                                           "sparsity-0.8.seed-1.yaml", "sparsity-0.5.seed-2.yaml",
                                           "sparsity-0.8.seed-2.yaml"]
    seeded = load_run_config(sweep_dir / "recipes" / "sparsity-0.8.seed-2.yaml")
    # the student's seed changes; the teacher is the base seed's, and data and bootstrap keep seed 0
    assert (seeded.seed, seeded.data.seed, seeded.gate.seed) == (2, 0, 0)
    assert seeded.model.checkpoint == sweep_dir / "sparsity-0.5" / "teacher.pt" and seeded.model.train is None
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["seeds"] == 3 and [row["seed"] for row in summary["seed_students"]] == [1, 1, 2, 2]
    at_05, at_08 = summary["spread"]
    # accuracy at 0.5 over seeds 0, 1, 2: 0.85, 0.84, 0.83 -> mean 0.84, sample std 0.01
    assert at_05["accuracy"]["mean"] == pytest.approx(0.84) and at_05["accuracy"]["std"] == pytest.approx(0.01)
    assert at_05["accuracy"]["values"] == pytest.approx([0.85, 0.84, 0.83])
    assert at_05["cev"]["base_ci"] == [3.0, 30.0] and at_05["cev"]["std"] == 0.0
    # the gated BA limit at 0.8: observed 0.08 for every seed (ba = sparsity / 10); the base seed's gate interval
    [ba_08] = at_08["limits"]
    assert ba_08["name"] == "ba absolute change <= 0.05 (upper)" and ba_08["outcomes"] == ["pass", "pass", "fail"]
    assert ba_08["passed"] == 2 and ba_08["mean"] == pytest.approx(0.08) and ba_08["std"] == pytest.approx(0.0)
    assert ba_08["base"] == pytest.approx(0.08) and ba_08["base_ci"] == pytest.approx([0.07, 0.09])
    # seed 2 fails at 0.8, so 0.8 is not chosen although its base seed passes
    assert (at_05["passed"], at_08["passed"]) == (3, 2) and summary["chosen"] == 0.5
    html = (sweep_dir / "sweep.html").read_text()
    assert "Spread across seeds" in html and "2 / 3" in html and "0.8400 ± 0.0100 [0.8300, 0.8500]" in html
    assert "0.0800 ± 0.0000 [0.0800, 0.0800] (base 0.0800 [0.0700, 0.0900])" in html


def test_seed_teachers_give_every_seed_its_own_teacher(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    assert CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.5", "--seeds", "2", "--seed-teachers"]
                              ).exit_code == 0
    seeded = load_run_config(tmp_path / "sweep" / "recipes" / "sparsity-0.5.seed-1.yaml")
    assert seeded.seed == 1 and seeded.model.checkpoint is None and seeded.model.train is not None


def test_a_bad_seed_count_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["sweep", str(tiny_recipe(tmp_path, limits=[])), "-s", "0.5", "--seeds", "0"])
    assert result.exit_code == 2 and "--seeds 0 must be an integer from 1 to 100" in result.output


def test_sweep_without_a_passing_student_exits_1_and_releases_nothing(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.9", "-s", "0.95", "--release"])
    assert result.exit_code == 1, result.output
    assert "none passes" in result.output
    assert not (tmp_path / "sweep" / "release").exists()
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["chosen"] is None


def test_a_rerun_removes_the_earlier_release(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    assert CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.5", "--release"]).exit_code == 0
    assert (tmp_path / "sweep" / "release").is_dir()
    shutil.rmtree(tmp_path / "sweep" / "sparsity-0.5")      # the stub makes its run directory afresh
    assert CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.9"]).exit_code == 1
    assert not (tmp_path / "sweep" / "release").exists()


def test_cli_bad_sparsity_exits_2_with_the_message(tmp_path):
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.5", "lots"])
    assert result.exit_code == 2
    assert "--sparsity 'lots' is not a number" in result.output


def test_a_foreign_output_directory_is_refused(tmp_path):
    recipe = tiny_recipe(tmp_path, limits=[])
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a compress-gate sweep directory"):
        run_sweep(recipe, [0.5])


# --- two real students ----------------------------------------------------------------
@pytest.mark.slow
def test_two_real_students_one_teacher_and_the_right_choice(tmp_path):
    # The width-4 student at 0.98 sparsity keeps 2 % of its conv weights and loses far more than
    # 10 points of digit accuracy; at 0.3 it keeps its teacher's accuracy within 10 points.
    recipe = tiny_recipe(tmp_path, limits=[{"metric": "accuracy", "change": "absolute", "min": -0.1,
                                            "bound": "point"}])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.3", "0.98", "--release"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    low, high = summary["students"]
    assert (low["verdict"], high["verdict"], summary["chosen"]) == ("pass", "fail", 0.3)
    assert low["sparsity"] == pytest.approx(0.3, abs=0.02) and high["sparsity"] == pytest.approx(0.98, abs=0.02)
    runs = [json.loads((tmp_path / "sweep" / f"sparsity-{s}" / "run.json").read_text()) for s in ("0.3", "0.98")]
    assert [r["teacher"]["source"] for r in runs] == ["trained", "cache"]      # one teacher
    assert (tmp_path / "sweep" / "release" / "manifest.json").is_file()
    assert (tmp_path / "sweep" / "sparsity-0.98" / "refused").is_dir()


def test_calibrated_rerun_uses_thresholds_and_no_overrides(tmp_path):
    import numpy as np

    from compress_gate.config.data import SyntheticDataConfig
    from compress_gate.data import save_eval_data, save_predictions
    from compress_gate.data.synthetic import make_synthetic_data

    source = tiny_recipe(tmp_path, limits=[{"metric": "ba", "change": "absolute", "max": 0.05}])
    raw = yaml.safe_load(source.read_text())
    raw["gate"]["mitigation"] = {"calibrate_thresholds": True, "override_budget": 0.1}
    source.write_text(yaml.safe_dump(raw))
    config = load_run_config(source)
    data = make_synthetic_data(SyntheticDataConfig(n_train=300, n_calib=300, n_test=1000))
    run_dir = tmp_path / "student"
    save_eval_data(data, run_dir / "data.npz")
    rows = data.mask("calib", "test")
    rng = np.random.default_rng(0)
    for name, noise in (("teacher", 0.3), ("student", 0.5)):
        scores = np.clip(data.labels[rows] * 0.6 + 0.2 + rng.normal(0, noise, data.labels[rows].shape), 0, 1)
        save_predictions(run_dir / "predictions" / "onnxruntime" / f"{name}.npz", data.ids[rows],
                         scores.astype(np.float32))
    report = calibrated_report(config, run_dir, tmp_path / "calibrated")
    assert (tmp_path / "calibrated" / "report.json").is_file() and (tmp_path / "calibrated.limits.yaml").is_file()
    assert report["mitigation"]["overrides"]["count"] == 0 and report["mitigation"]["thresholds"]
    assert report["config"]["mitigation"] == {"calibrate_thresholds": True, "override_budget": 0.0}
    assert student_numbers(report)["ba_increase_mitigated"] is not None


def test_sparsities_that_print_alike_get_their_own_directories(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.5", "0.5000001"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in stub_runs] == ["sparsity-0.5.yaml", "sparsity-0.5000001.yaml"]
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [row["student"] for row in summary["students"]] == ["sparsity-0.5", "sparsity-0.5000001"]
    assert "most compressed passing student: 0.5000001" in result.output


def test_a_rerun_replaces_the_whole_earlier_sweep_and_nothing_else(tmp_path, stub_runs):
    recipe = tiny_recipe(tmp_path, limits=[])
    (tmp_path / "recipes").mkdir()
    (tmp_path / "recipes" / "mine.yaml").write_text("mine: 1\n")            # beside the sweep: never touched
    assert CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.5"]).exit_code == 0
    assert (tmp_path / "sweep" / ".compress-gate").is_file()                 # the sweep directory is marked
    assert CliRunner().invoke(app, ["sweep", str(recipe), "-s", "0.8"]).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["recipes", "sparsity-0.8"]
    assert (tmp_path / "recipes" / "mine.yaml").read_text() == "mine: 1\n"
