"""`compress-gate sweep` on torch-backend recipes: --sparsity and --mask N:M students, similarity per
student, and the correlation of similarity with bias (runs replaced by a stub that writes its files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.config.run import load_run_config
from compress_gate.errors import InputError
from compress_gate.pipeline._correlation import correlation
from compress_gate.pipeline.run import RunOutcome
from compress_gate.pipeline.sweep import parse_masks, run_sweep, split_values, student_recipe

PRUNING = {"params": ["re:^layer\\d+\\..*conv\\d+\\.weight$"], "init_sparsity": 0.05, "final_sparsity": 0.75,
           "start_epoch": 0.0, "end_epoch": 1.0, "update_frequency": 0.5, "mask": "unstructured"}


def torch_recipe(directory: Path, *, pruning: dict | None = PRUNING, compression: dict | None = None) -> Path:
    compression = compression or ({"backend": "torch", "epochs": 2, "lr": 0.01, "pruning": pruning} if pruning
                                  else {"backend": "torch", "quantization": "dynamic"})
    recipe = {
        "seed": 0, "output": "sweep",
        "model": {"arch": "resnet", "width": 8, "depth": 1, "train": {"epochs": 2, "lr": 0.05, "batch_size": 64}},
        "data": {"kind": "demo", "image_size": 8},
        "compression": compression,
        "engines": {"deployment": "onnxruntime", "check": [],
                    "benchmark": {"engines": ["onnxruntime"], "batch_sizes": [8], "warmup": 1, "iterations": 3}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                 "limits": []},
    }
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


SPARSEML_RECIPE = "version: 1.1.0\nfinal_sparsity: 0.9\npruning_modifiers:\n  - !GMPruningModifier\n" \
                  "    params: ['re:conv']\n    init_sparsity: 0.05\n    final_sparsity: eval(final_sparsity)\n" \
                  "    start_epoch: 0.0\n    end_epoch: 1.0\n    update_frequency: 0.5\n"


# --- parsing -------------------------------------------------------------------------
def test_loose_values_are_told_apart_by_form():
    assert split_values(["0.75", "1:4", "0.9"]) == (["0.75", "0.9"], ["1:4"])


@pytest.mark.parametrize(("texts", "message"), [
    (["4:2"], "--mask '4:2' is not an N:M mask"), (["0:4"], "--mask '0:4' is not an N:M mask"),
    (["2-4"], "--mask '2-4' is not an N:M mask"), (["2:4", "2:4"], "lists a mask more than once")])
def test_bad_masks_are_input_errors(texts, message):
    with pytest.raises(InputError, match=message):
        parse_masks(texts)
    assert parse_masks(["2:4", "1:8"]) == ["2:4", "1:8"]


def test_cli_refuses_mask_on_a_sparseml_recipe_with_the_fix(tmp_path):
    path = torch_recipe(tmp_path, compression={"recipe": SPARSEML_RECIPE, "lr": 0.01})
    result = CliRunner().invoke(app, ["sweep", str(path), "--mask", "2:4", "1:4"])
    assert result.exit_code == 2
    assert "--mask 2:4 1:4 sets the torch backend's N:M mask, but this recipe uses the SparseML backend" \
        in " ".join(result.output.split())
    assert not (tmp_path / "sweep").exists()                # refused before any work


def test_sparsity_on_an_nm_recipe_and_a_recipe_without_pruning_are_refused(tmp_path):
    path = torch_recipe(tmp_path, pruning={**PRUNING, "mask": "2:4", "final_sparsity": 0.5})
    with pytest.raises(InputError, match="Set `mask: unstructured` in the recipe"):
        run_sweep(path, [0.6])
    with pytest.raises(InputError, match="has no `compression.pruning` section"):
        run_sweep(torch_recipe(tmp_path, pruning=None), [], masks=["2:4"])
    with pytest.raises(InputError, match="give at least one sparsity"):
        run_sweep(torch_recipe(tmp_path), [])


def test_a_sparsity_below_init_sparsity_is_refused_before_any_student_runs(tmp_path, monkeypatch):
    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", lambda *a, **k: pytest.fail("a student ran"))
    with pytest.raises(InputError, match="init_sparsity"):
        run_sweep(torch_recipe(tmp_path), [0.5, 0.01])


def test_torch_student_recipes_set_final_sparsity_and_the_mask(tmp_path):
    config = load_run_config(torch_recipe(tmp_path))
    low = student_recipe(config, 0.5, sweep_dir=tmp_path / "s", source="r.yaml")
    nm = student_recipe(config, 0.875, sweep_dir=tmp_path / "s", source="r.yaml", mask="1:8")
    assert low["compression"]["pruning"]["final_sparsity"] == 0.5
    assert low["compression"]["pruning"]["mask"] == "unstructured" and low["output"].endswith("sparsity-0.5")
    assert nm["compression"]["pruning"] == {**config.compression.pruning.model_dump(mode="json"),
                                            "final_sparsity": 0.875, "mask": "1:8"}
    assert nm["output"] == str(tmp_path / "s" / "mask-1of8")


# --- a stubbed sweep --------------------------------------------------------------------
def _report(verdict: str, *, cev: float, ba: float) -> dict:
    return {"verdict": verdict, "metrics": {"cev": {"value": cev, "ci": [cev * 0.5, cev * 1.5]},
                                            "sde": {"value": 2 * cev, "ci": None},
                                            "ba": {"increase": {"a": {"g": ba}}}},
            "run": {"compression": {"overall_sparsity": 0.5}}, "limits": []}


@pytest.fixture
def stub_runs(monkeypatch):
    """Each student 'passes' below sparsity 0.8; its similarity falls and its CEV rises with sparsity."""
    seen: list[dict] = []

    def fake_run_recipe(path, *, console=None):
        config = load_run_config(path)
        pruning = config.compression.pruning
        s = pruning.final_sparsity
        passed = s < 0.8
        run_dir = config.output
        bundle = run_dir / ("release" if passed else "refused")
        (run_dir / "gate").mkdir(parents=True)
        bundle.mkdir()
        (bundle / "model.onnx").write_text(f"student {run_dir.name}")
        (run_dir / "gate" / "report.json").write_text(json.dumps(_report("pass" if passed else "fail",
                                                                         cev=10 * s, ba=s / 10)))
        (run_dir / "similarity.json").write_text(json.dumps({
            "layers": {"layer1": {"cka": 1 - s / 4, "svcca": None}, "avgpool": {"cka": 1 - s / 2, "svcca": 0.9}},
            "mean": {"cka": 1 - 3 * s / 8, "svcca": 0.9}}))
        seen.append({"name": run_dir.name, "sparsity": s, "mask": pruning.mask})
        return RunOutcome(passed=passed, run_dir=run_dir, bundle_dir=bundle, report={}, summary={},
                          stage_seconds={"teacher": 1.0})

    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", fake_run_recipe)
    monkeypatch.setattr("compress_gate.bundle.verify_bundle", lambda path: None)
    return seen


def test_mask_rows_sit_beside_unstructured_ones_and_the_tie_goes_to_the_first(tmp_path, stub_runs):
    pytest.importorskip("scipy")
    pytest.importorskip("torch", reason="the sweep checks every N:M mask against the network before any "
                                        "student runs, which builds it with torch")
    result = CliRunner().invoke(app, ["sweep", str(torch_recipe(tmp_path)), "--sparsity", "0.5", "0.875",
                                      "--mask", "2:4", "1:4", "--release"])
    assert result.exit_code == 0, result.output
    assert "most compressed passing student: 0.75 (1:4)" in result.output
    assert [(r["name"], r["sparsity"], r["mask"]) for r in stub_runs] == [
        ("sparsity-0.5", 0.5, "unstructured"), ("mask-2of4", 0.5, "2:4"), ("mask-1of4", 0.75, "1:4"),
        ("sparsity-0.875", 0.875, "unstructured")]
    sweep_dir = tmp_path / "sweep"
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert summary["sparsities"] == [0.5, 0.875] and summary["masks"] == ["2:4", "1:4"]
    assert (summary["chosen"], summary["chosen_student"]) == (0.75, "mask-1of4")
    assert (sweep_dir / "release" / "model.onnx").read_text() == "student mask-1of4"
    rows = summary["students"]
    assert [(r["student"], r["mask"]) for r in rows] == [("sparsity-0.5", None), ("mask-2of4", "2:4"),
                                                         ("mask-1of4", "1:4"), ("sparsity-0.875", None)]
    assert rows[0]["cka"] == pytest.approx(1 - 3 * 0.5 / 8) and rows[0]["svcca"] == 0.9
    assert rows[0]["similarity_layers"] == {"layer1": {"cka": 0.875, "svcca": None},
                                            "avgpool": {"cka": 0.75, "svcca": 0.9}}
    # CKA = 1 - 3s/8 and CEV = 10 s over s = (0.5, 0.5, 0.75, 0.875): exactly linear, r = -1
    cka_cev = summary["correlations"]["cka vs cev"]
    assert cka_cev["n"] == 4 and cka_cev["pearson"] == pytest.approx(-1.0) and cka_cev["reason"] is None
    svcca_cev = summary["correlations"]["svcca vs cev"]                     # SVCCA constant at 0.9
    assert svcca_cev["pearson"] is None and "x constant over the 4 students" in svcca_cev["reason"]
    html = (sweep_dir / "sweep.html").read_text()
    assert '<section id="similarity">' in html and "<th>CKA</th><th>SVCCA</th>" in html
    assert "0.5 (2:4)" in html and "pass (chosen)" in html and "a correlation means little" in html
    assert "passes the gate: sparsity 0.75 (1:4)." in html
    assert html.count("data:image/png;base64,") == 2                      # the curves and similarity vs bias


def test_a_sweep_of_students_without_similarity_reports_it_undefined(tmp_path, stub_runs, monkeypatch):
    real = __import__("compress_gate.pipeline.run", fromlist=["run_recipe"]).run_recipe

    def without_similarity(path, *, console=None):
        outcome = real(path, console=console)
        (outcome.run_dir / "similarity.json").unlink()
        return outcome

    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", without_similarity)
    run_sweep(torch_recipe(tmp_path), [0.5, 0.6], masks=[])
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [r["cka"] for r in summary["students"]] == [None, None]
    assert summary["correlations"]["cka vs ba_increase"]["reason"].startswith("n = 0 students with both values")
    assert "No figure: no student has a similarity.json" in (tmp_path / "sweep" / "sweep.html").read_text()


# --- correlation ----------------------------------------------------------------------------
def test_correlation_by_hand():
    pytest.importorskip("scipy")
    # x - mean = (-1, 0, 1), y - mean = (-1, 1, 0): r = 1 / (sqrt 2 * sqrt 2) = 0.5; ranks equal values -> rho 0.5.
    # Pearson p, df = 1: t = 0.5 / sqrt(0.75 / 1) = 1/sqrt 3, p = 1 - (2/pi) atan(1/sqrt 3) = 2/3.
    # Spearman exact: the 6 orderings of 3 give rho in {1, .5, .5, -.5, -.5, -1}, all |rho| >= .5 -> p = 1.
    found = correlation([1, 2, 3], [1, 3, 2])
    assert found["n"] == 3 and found["reason"] is None
    assert found["pearson"] == pytest.approx(0.5) and found["pearson_p"] == pytest.approx(2 / 3)
    assert found["spearman"] == pytest.approx(0.5) and found["spearman_p"] == pytest.approx(1.0)
    assert correlation([1, 2, 3], [2, 4, 7])["spearman_p"] == pytest.approx(1 / 3)   # rho = 1: 2 of 6 orderings


@pytest.mark.parametrize(("xs", "ys", "reason"), [
    ([0.9, 0.8], [1.0, 2.0], "n = 2 students with both values; a correlation needs at least 3"),
    ([0.9, 0.8, None, float("nan")], [1.0, 2.0, 3.0, 4.0], "n = 2 students with both values"),
    ([0.9, 0.9, 0.9], [1.0, 2.0, 3.0], "x constant over the 3 students"),
    ([0.9, 0.8, 0.7], [2.0, 2.0, 2.0], "y constant over the 3 students"),
    ([], [], "n = 0 students")])
def test_correlation_is_undefined_never_zero(xs, ys, reason):
    found = correlation(xs, ys)
    assert found["reason"].startswith(reason)
    assert all(found[key] is None for key in ("pearson", "pearson_p", "spearman", "spearman_p"))


def test_an_nm_mask_no_weight_can_take_is_refused_before_any_student_runs(tmp_path, monkeypatch):
    # the stem conv sees the 1 channel of the demo digits: no 2:4 mask fits it, and the old sweep found
    # that out only when the 2:4 student trained, after the students before it had run
    pytest.importorskip("torch")
    monkeypatch.setattr("compress_gate.pipeline.run.run_recipe", lambda *a, **k: pytest.fail("a student ran"))
    recipe = torch_recipe(tmp_path, pruning={**PRUNING, "params": ["re:.*conv.*weight$"]})
    with pytest.raises(InputError, match=r"--mask 2:4: compression.pruning.mask = '2:4' needs conv/linear weights "
                                         r"whose input-channel count is a multiple of 4; these are not: conv1"):
        run_sweep(recipe, [0.5], masks=["2:4"])
    assert not (tmp_path / "sweep").exists()
