"""The run recipe: validation by key path (exit 2), `init`, path resolution, seeds and the recipe hash."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.config.run import load_run_config, recipe_hash
from compress_gate.config.starter import starter_recipe
from compress_gate.errors import InputError

runner = CliRunner()

SPARSEML = """\
version: 1.1.0
modifiers:
  - !EpochRangeModifier
    start_epoch: 0.0
    end_epoch: 1.0
  - !GMPruningModifier
    params: __ALL_PRUNABLE__
    init_sparsity: 0.05
    final_sparsity: 0.5
    start_epoch: 0.0
    end_epoch: 1.0
    update_frequency: 0.5
"""


def write_recipe(path, **overrides):
    """A minimal valid recipe at ``path``; ``overrides`` replace top-level sections (None deletes)."""
    sections = {
        "seed": 3,
        "output": "runs/x",
        "model": {"arch": "resnet", "width": 4, "depth": 1, "train": {"epochs": 1}},
        "data": {"kind": "demo", "image_size": 8},
        "compression": {"recipe": SPARSEML},
    }
    sections.update(overrides)
    sections = {k: v for k, v in sections.items() if v is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def run_exit(recipe):
    result = runner.invoke(app, ["run", str(recipe)])
    return result.exit_code, result.output


def test_valid_recipe_loads_with_defaults(tmp_path):
    config = load_run_config(write_recipe(tmp_path / "r.yaml"))
    assert config.output == (tmp_path / "runs" / "x").resolve()
    assert config.engines.deployment == "onnxruntime" and config.engines.check == ("deepsparse",)
    assert config.gate.limits == () and config.export.opset == 13
    assert config.cache_dir == (tmp_path / "runs" / ".cache").resolve()


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"model": {"arch": "resnet", "widht": 4, "train": {"epochs": 1}}}, "unknown key `model.widht`. Valid keys here"),
    ({"model": {"arch": "vgg", "train": {"epochs": 1}}}, "`model.arch` = 'vgg'"),
    ({"model": {"arch": "resnet"}}, "give `checkpoint` (a state_dict file of the dense teacher), `train`"),
    ({"model": {"train": {"epochs": 1}}}, "name exactly one source of the network, got none"),
    ({"model": {"arch": "resnet", "factory": "net.py:build", "train": {"epochs": 1}}},
     "name exactly one source of the network, got ['arch', 'factory']"),
    ({"model": {"factory": "net.py:build", "width": 4, "train": {"epochs": 1}}}, "`width`/`depth` size the built-in"),
    ({"model": {"arch": "resnet", "kwargs": {"a": 1}, "train": {"epochs": 1}}}, "`kwargs` are passed to a `factory`"),
    ({"model": {"arch": "resnet", "mean": [0.5], "train": {"epochs": 1}}}, "give `mean` and `std` together"),
    ({"model": {"arch": "resnet", "mean": [0.5], "std": [0.5, 0.5], "train": {"epochs": 1}}},
     "give `mean` and `std` together"),
    ({"model": {"arch": "resnet", "mean": [0.5], "std": [0.0], "train": {"epochs": 1}}}, "`model.std[0]` = 0.0"),
    ({"model": {"factory": "missing.py:build", "train": {"epochs": 1}}}, "`model.factory` = "),
    ({"model": {"arch": "resnet", "input_size": 48, "train": {"epochs": 1}},
      "data": {"kind": "demo", "image_size": 32}}, "`model.input_size` = 48 but `data.image_size` = 32"),
    ({"model": {"arch": "resnet", "train": {"epochs": -1}}}, "`model.train.epochs` = -1"),
    ({"augment": {"crop_scale": [0.9, 0.5]}}, "crop_scale = [0.9, 0.5] must be [low, high]"),
    ({"augment": {"flip": True}}, "unknown key `augment.flip`"),
    ({"data": {"kind": "demo", "image_size": 2}}, "`data.image_size` = 2"),
    ({"data": {"kind": "mnist"}}, "`data.kind`"),
    ({"compression": None}, "the `compression` section is required"),
    ({"bogus": 1}, "unknown key `bogus`"),
    ({"gate": {"limits": [{"metric": "ba", "max": -0.1, "min": 0}]}}, "gate.limits[0]"),
    ({"engines": {"deployment": "tensorflow"}}, "`engines.deployment` = 'tensorflow'"),
    ({"export": {"opset": 9}}, "`export.opset` = 9"),
    ({"compression": {"recipe": SPARSEML, "recipe_path": "x.yaml"}}, "exactly one of `recipe`"),
    ({"compression": {"recipe": SPARSEML, "distillation": True}}, "no `!DistillationModifier`"),
    ({"compression": {"recipe": "modifiers:\n  - !EpochRangeModifier {end_epoch: 1}\n"}}, "block style only"),
])
def test_bad_recipes_exit_2_naming_the_key(tmp_path, overrides, expected):
    code, output = run_exit(write_recipe(tmp_path / "r.yaml", **overrides))
    assert code == 2
    assert expected in " ".join(output.split())
    assert not (tmp_path / "runs").exists()          # nothing was started


def test_missing_files_named_by_key_and_resolved_against_the_recipe(tmp_path):
    recipe = write_recipe(tmp_path / "sub" / "r.yaml", model={"arch": "resnet", "checkpoint": "t.pt"})
    with pytest.raises(InputError, match=r"`model\.checkpoint` = '.*/sub/t\.pt' does not exist"):
        load_run_config(recipe)
    recipe = write_recipe(tmp_path / "sub" / "r.yaml", compression={"recipe_path": "../sparse.yaml"})
    with pytest.raises(InputError, match="compression.recipe_path"):
        load_run_config(recipe)
    (tmp_path / "sparse.yaml").write_text(SPARSEML)
    assert load_run_config(recipe).compression.recipe_path == (tmp_path / "sparse.yaml").resolve()


def test_malformed_yaml_exits_2_with_the_line(tmp_path):
    (tmp_path / "r.yaml").write_text("seed: 0\nmodel: [unclosed\n")
    code, output = run_exit(tmp_path / "r.yaml")
    assert code == 2 and "malformed YAML at line" in output


def test_tagged_mapping_recipe_keeps_sparseml_tags(tmp_path):
    text = textwrap.dedent("""\
        output: runs/x
        model: {arch: resnet, train: {epochs: 1}}
        data: {kind: demo}
        compression:
          recipe:
            modifiers:
              - !EpochRangeModifier {start_epoch: 0.0, end_epoch: 2.0}
              - !GMPruningModifier {params: __ALL_PRUNABLE__, final_sparsity: 0.5}
        """)
    (tmp_path / "r.yaml").write_text(text)
    recipe = load_run_config(tmp_path / "r.yaml").compression.recipe
    assert "- !EpochRangeModifier\n" in recipe and "- !GMPruningModifier\n" in recipe
    assert "final_sparsity: 0.5" in recipe


def test_top_level_seed_reaches_data_and_gate_unless_they_set_their_own(tmp_path):
    config = load_run_config(write_recipe(tmp_path / "a.yaml"))
    assert (config.seed, config.data.seed, config.gate.seed) == (3, 3, 3)
    config = load_run_config(write_recipe(tmp_path / "b.yaml", data={"kind": "demo", "seed": 9},
                                          gate={"seed": 11}))
    assert (config.seed, config.data.seed, config.gate.seed) == (3, 9, 11)


def test_recipe_hash_follows_contents_not_location(tmp_path):
    a = write_recipe(tmp_path / "a" / "r.yaml")
    b = write_recipe(tmp_path / "b" / "r.yaml")
    c = write_recipe(tmp_path / "c" / "r.yaml", seed=4)
    hashes = [recipe_hash(p, load_run_config(p)) for p in (a, b, c)]
    assert hashes[0] == hashes[1] != hashes[2]
    (tmp_path / "s.yaml").write_text(SPARSEML)
    linked = write_recipe(tmp_path / "r.yaml", compression={"recipe_path": "s.yaml"})
    before = recipe_hash(linked, load_run_config(linked))
    (tmp_path / "s.yaml").write_text(SPARSEML.replace("0.5", "0.6"))
    assert recipe_hash(linked, load_run_config(linked)) != before


def test_init_writes_a_recipe_that_validates(tmp_path):
    target = tmp_path / "mine.yaml"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    config = load_run_config(target)
    assert config.output == (tmp_path / "runs" / "mine").resolve()
    assert config.compression.distillation and config.gate.limits
    assert target.read_text() == starter_recipe("mine")
    assert "# " in target.read_text()                          # commented


def test_init_does_not_overwrite_without_force(tmp_path):
    target = tmp_path / "recipe.yaml"
    target.write_text("mine\n")
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 2 and "already exists" in result.output
    assert target.read_text() == "mine\n"
    assert runner.invoke(app, ["init", str(target), "--force"]).exit_code == 0
    load_run_config(target)


def test_demo_recipe_validates():
    from pathlib import Path

    config = load_run_config(Path(__file__).parents[1] / "recipes" / "demo.yaml")
    assert config.compression.distillation and config.engines.deployment == "onnxruntime"


def test_recipe_engine_names_are_the_engines():
    from typing import get_args

    from compress_gate.config.run import EngineKind
    from compress_gate.engines import ENGINE_KINDS

    assert set(get_args(EngineKind)) == set(ENGINE_KINDS)
