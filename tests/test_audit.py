"""The CIE audit: aggregation (Hooker et al. Table 2 and Fig. 2), its files, and the command."""

from __future__ import annotations

import csv
import json
import re
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.audit import run_audit, summary_lines
from compress_gate.audit.analysis import analyse_populations, label_text, representation, subset_accuracy
from compress_gate.audit.outputs import render_audit_html, write_audit_csv, write_audit_json
from compress_gate.cli import app
from compress_gate.config.audit import AuditConfig, resolve_audit_paths
from compress_gate.config.run import RunConfig
from compress_gate.data.contract import EvalData, save_predictions
from compress_gate.errors import InputError

NAMES = ("cat", "dog", "bird")


def _one_hot(index: list[int], k: int = 3) -> np.ndarray:
    return np.eye(k, dtype=np.uint8)[index]


def _data() -> EvalData:
    # 4 test rows; true classes 0, 1, 2, 1; group `g` on rows 1 and 2
    return EvalData(ids=np.array(["a", "b", "c", "d"]), labels=_one_hot([0, 1, 2, 1]),
                    split=np.array(["test"] * 4), groups=np.array([[0], [1], [1], [0]], dtype=bool),
                    group_names=("g",), attribute_names=NAMES, task="multiclass",
                    inputs=np.random.default_rng(0).normal(size=(4, 1, 8, 8)).astype(np.float32))


def _scores(classes: list[int]) -> np.ndarray:
    return (0.1 + 0.7 * _one_hot(classes)).astype(np.float32)


def _findings():
    # dense models both predict 0, 1, 2, 0; compressed both predict 0, 2, 2, 1:
    # rows b and d change their modal label (CIEs) and have Taxicab score |1-0| + |0-1| = 2.
    dense = np.stack([_scores([0, 1, 2, 0])] * 2)
    compressed = np.stack([_scores([0, 2, 2, 1])] * 2)
    return analyse_populations(_data(), dense, compressed, seed=0)


# --- aggregation ---------------------------------------------------------------------------

def test_representation_hand_computed():
    # n = 6 rows, c = 2 CIEs (rows 0, 1). Column 0 holds rows 0 and 2: n_g = 2, c_g = 1,
    # share_all = 2/6, share_cie = 1/2, ratio = (1/2) / (1/3) = 1.5. Column 1 is empty: ratio nan.
    is_cie = np.array([1, 1, 0, 0, 0, 0], dtype=bool)
    columns = np.zeros((6, 2), dtype=bool)
    columns[[0, 2], 0] = True
    rows = representation(is_cie, columns, ["x", "empty"], "group")
    assert rows[0] == {"kind": "group", "name": "x", "n_all": 2, "n_cie": 1, "share_all": pytest.approx(1 / 3),
                       "share_cie": pytest.approx(0.5), "ratio": pytest.approx(1.5)}
    assert rows[1]["n_all"] == 0 and np.isnan(rows[1]["ratio"])


def test_representation_without_cies_is_undefined():
    rows = representation(np.zeros(3, dtype=bool), np.ones((3, 1), dtype=bool), ["all"], "group")
    assert np.isnan(rows[0]["share_cie"]) and np.isnan(rows[0]["ratio"])


def test_subset_accuracy_empty_subset_is_nan():
    y = _one_hot([0, 1])
    assert np.isnan(subset_accuracy(y, np.stack([y]), np.zeros(2, dtype=bool), task="multiclass"))


def test_label_text():
    assert label_text(np.array([0, 1, 0]), NAMES, "multiclass") == "dog"
    assert label_text(np.array([1, 0, 1]), NAMES, "multilabel") == "cat;bird"
    assert label_text(np.array([0, 0, 0]), NAMES, "multilabel") == ""


def test_analyse_populations_hand_computed():
    f = _findings()
    assert f.is_cie.tolist() == [False, True, False, True]
    assert f.score.tolist() == pytest.approx([0, 2, 0, 2])
    assert set(f.rank_order[:2].tolist()) == {1, 3}
    # dense on CIE rows b (pred 1 = true 1) and d (pred 0 != true 1): 1/2; non-CIE rows a, c: 2/2
    # compressed on CIE rows b (2 != 1) and d (1 = 1): 1/2; non-CIE rows: 2/2
    assert f.accuracy["dense"] == {"cie": 0.5, "non_cie": 1.0, "all": 0.75}
    assert f.accuracy["compressed"] == {"cie": 0.5, "non_cie": 1.0, "all": 0.75}
    by_name = {r["name"]: r for r in f.representation}
    # group g: rows b, c (1 of the 2 CIEs): (1/2) / (2/4) = 1.0; class dog: rows b, d, both CIEs: 1 / (2/4) = 2
    assert by_name["g"]["ratio"] == pytest.approx(1.0)
    assert by_name["not g"]["ratio"] == pytest.approx(1.0)
    assert by_name["dog"]["ratio"] == pytest.approx(2.0)
    assert by_name["cat"]["ratio"] == pytest.approx(0.0)


# --- files ---------------------------------------------------------------------------------

def test_audit_files(tmp_path):
    f = _findings()
    summary = {"n_samples": 4, "splits": ["test"], "n_dense": 2, "n_compressed": 2, "n_cie": 2,
               "cie_share": 0.5, "seconds": 1.0}
    rows = list(csv.DictReader(write_audit_csv(f, tmp_path / "audit.csv").open()))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"]
    assert {rows[0]["id"], rows[1]["id"]} == {"b", "d"} and rows[0]["modal_cie"] == "1"
    row_b = next(r for r in rows if r["id"] == "b")
    assert (row_b["label"], row_b["dense_modal"], row_b["compressed_modal"]) == ("dog", "dog", "bird")
    assert (row_b["group__g"], row_b["dense_0"], row_b["compressed_1"]) == ("1", "dog", "bird")

    page = render_audit_html(f, summary, tmp_path / "audit.html", inputs=_data().inputs, top_k=3).read_text()
    assert page.count('<div class="card') == 3 and page.count('class="card cie"') == 2
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3
    assert "How much harder CIEs are (Hooker et al., Table 2)" in page
    assert "Who the CIEs are (Hooker et al., Fig. 2)" in page
    assert "<script" not in page and "http" not in page

    saved = json.loads(write_audit_json(summary, f, tmp_path / "audit.json").read_text())
    assert saved["accuracy"]["dense"]["cie"] == 0.5
    assert any(r["name"] == "not g" for r in saved["representation"])


def test_audit_html_escapes_ids(tmp_path):
    data = _data()
    data = EvalData(ids=np.array(["<b>x</b>", "b", "c", "d"]), labels=data.labels, split=data.split,
                    groups=data.groups, group_names=data.group_names, attribute_names=data.attribute_names,
                    task=data.task, inputs=None)
    f = analyse_populations(data, np.stack([_scores([0, 1, 2, 0])]), np.stack([_scores([1, 1, 2, 0])]), seed=0)
    page = render_audit_html(f, {"n_samples": 4, "splits": ["test"], "n_dense": 1, "n_compressed": 1,
                                 "n_cie": 1, "cie_share": 0.25, "seconds": 0.1},
                             tmp_path / "a.html", inputs=None, top_k=4).read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "no image in the data" in page


# --- configuration and command ---------------------------------------------------------------

def test_audit_config_needs_both_prediction_lists():
    with pytest.raises(ValueError, match="give both"):
        AuditConfig(dense_predictions=["a.npz"])
    with pytest.raises(ValueError, match="lists a split twice"):
        AuditConfig(splits=["test", "test"])


def test_resolve_audit_paths(tmp_path):
    audit = resolve_audit_paths(AuditConfig(output="out", dense_predictions=["d.npz"],
                                            compressed_predictions=["/abs/c.npz"]), tmp_path)
    assert audit.output == tmp_path / "out"
    assert audit.dense_predictions == (tmp_path / "d.npz",)
    assert audit.compressed_predictions == (Path("/abs/c.npz"),)


def test_audit_command_missing_recipe_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["audit", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "no such recipe file" in result.output


def _tiny_recipe(tmp_path, *, epochs: float, audit: str = "") -> "object":
    from compress_gate.config.run import load_run_config

    path = tmp_path / "recipe.yaml"
    path.write_text(audit + textwrap.dedent(f"""\
        seed: 0
        output: run
        model: {{arch: resnet, width: 4, depth: 1, train: {{epochs: {epochs}, batch_size: 64}}}}
        data: {{kind: demo, image_size: 8}}
        compression:
          recipe: |
            version: 1.1.0
            training_modifiers:
              - !EpochRangeModifier
                start_epoch: 0.0
                end_epoch: {epochs}
            pruning_modifiers:
              - !GMPruningModifier
                params: ['re:^layer\\d+\\..*conv\\d+\\.weight$']
                init_sparsity: 0.05
                final_sparsity: 0.5
                start_epoch: 0.0
                end_epoch: {epochs}
                update_frequency: 0.5
        """))
    return load_run_config(path)


def test_audit_with_loaded_predictions(tmp_path):
    # populations predicted elsewhere: no training; 2 dense and 3 compressed files
    from compress_gate.data.sources import load_dataset

    config = _tiny_recipe(tmp_path, epochs=1)
    data = load_dataset(config.data, base_dir=tmp_path)
    test = data.mask("test")
    files = _prediction_files(tmp_path, data, {"dense": 2, "compressed": 3})
    audit = AuditConfig(top_k=5, dense_predictions=files["dense"], compressed_predictions=files["compressed"],
                        output=tmp_path / "out")
    result = run_audit(config, audit)
    assert result.summary["n_dense"] == 2 and result.summary["n_compressed"] == 3
    assert result.summary["n_samples"] == int(test.sum())
    assert sum(1 for _ in result.paths["csv"].open()) == int(test.sum()) + 1
    assert result.paths["html"].read_text().count('<div class="card') == 5
    lines = summary_lines(result)
    assert lines[0].startswith(f"{result.summary['n_cie']} modal CIEs among {int(test.sum())} samples")
    assert re.match(r"  dense: accuracy \S+% on CIEs, \S+% on non-CIEs", lines[1])


def test_audit_rejects_missing_ids(tmp_path):
    config = _tiny_recipe(tmp_path, epochs=1)
    short = save_predictions(tmp_path / "short.npz", np.array(["nope"]), np.full((1, 10), 0.1, np.float32))
    with pytest.raises(InputError):
        run_audit(config, AuditConfig(dense_predictions=[short], compressed_predictions=[short]))


def _prediction_files(tmp_path, data, counts: dict[str, int]) -> dict[str, list]:
    test = data.mask("test")
    rng = np.random.default_rng(0)
    return {kind: [save_predictions(tmp_path / f"{kind}{i}.npz", data.ids[test],
                                    rng.dirichlet(np.ones(data.n_attributes), size=int(test.sum())).astype(np.float32))
                   for i in range(count)] for kind, count in counts.items()}


@pytest.mark.skipif("audit" not in RunConfig.model_fields,
                    reason="RunConfig has no `audit:` section yet (compress_gate.config.audit.AuditConfig)")
def test_audit_command_reads_the_recipe_audit_section(tmp_path):
    from compress_gate.data.sources import load_dataset

    config = _tiny_recipe(tmp_path, epochs=1)
    files = _prediction_files(tmp_path, load_dataset(config.data, base_dir=tmp_path), {"dense": 1, "compressed": 2})
    listed = {kind: json.dumps([str(p) for p in paths]) for kind, paths in files.items()}
    _tiny_recipe(tmp_path, epochs=1, audit=f"audit: {{top_k: 3, output: out, dense_predictions: {listed['dense']}, "
                                            f"compressed_predictions: {listed['compressed']}}}\n")
    result = CliRunner().invoke(app, ["audit", str(tmp_path / "recipe.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 dense, 2 compressed models" in result.output
    assert (tmp_path / "out" / "audit.html").read_text().count('<div class="card') == 3


@pytest.mark.slow
def test_audit_trains_populations_and_caches_them(tmp_path):
    config = _tiny_recipe(tmp_path, epochs=2)
    audit = AuditConfig(population=2, top_k=8)
    started = time.perf_counter()
    result = run_audit(config, audit)
    first = time.perf_counter() - started
    assert result.summary["n_dense"] == result.summary["n_compressed"] == 2
    assert result.paths["html"].is_file() and (config.output / "audit" / "audit.csv").is_file()
    assert len(list((config.cache_dir / "audit").glob("*.npz"))) == 4
    again = run_audit(config, audit)  # second audit: predictions come from the cache
    np.testing.assert_array_equal(again.findings.score, result.findings.score)
    assert again.summary["seconds"] < first
