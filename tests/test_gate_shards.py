"""The gate on directories of shards: identical reports however the data is split or ordered,
the same numbers as the in-memory gate and the metric functions, and bad shards refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate import metrics
from compress_gate.cli import app
from compress_gate.data import save_eval_data, save_predictions
from compress_gate.data._columns import GROUP_PREFIX
from compress_gate.data._shard_files import write_shard
from compress_gate.errors import InputError
from compress_gate.gate._sharded import _each, runs
from tests._gate_data import _sigmoid, make_data, student_logits, teacher_logits

LIMITS = """\
n_resamples: 200
seed: 3
mitigation: {calibrate_thresholds: true, override_budget: 0.02}
limits:
  - {metric: ba, change: absolute, max: 0.03}
  - {metric: accuracy, change: absolute, min: -0.05}
  - {metric: cev, max: 1000}
  - {metric: subgroup_fnr, change: absolute, max: 0.05}
  - {metric: ece, change: absolute, max: 0.05}
  - {metric: tcb, change: absolute, min: -0.5}
  - {metric: uncertainty, max: 0.9}
  - {metric: fpr, change: absolute, max: 0.1}
  - {metric: group_fnr, change: absolute, max: 0.1}
  - {metric: acc_change_std, max: 0.1}
  - {metric: pie_gap, max: 0.2}
  - {metric: ap_change_std, max: 0.1}
"""


@pytest.fixture(scope="module")
def models():
    data = make_data()
    rows = data.mask("calib", "test")
    teacher = teacher_logits(data)
    scores = {"teacher": _sigmoid(teacher[rows]).astype(np.float32)}
    for i in range(2):                   # a population of two biased students
        scores[f"student_{i}"] = _sigmoid(student_logits(data, teacher, biased=True, seed=2 + i)[rows]
                                          ).astype(np.float32)
    return data, scores


def _data_columns(data, rows):
    columns = {"ids": data.ids[rows], "labels": data.labels[rows], "split": data.split[rows],
               "attribute_names": np.asarray(data.attribute_names), "task": np.asarray(data.task)}
    for j, name in enumerate(data.group_names):
        columns[GROUP_PREFIX + name] = data.groups[rows, j].astype(np.uint8)
    return columns


def _write(root: Path, models, n_data: int, n_pred: int, *, seed: int | None) -> dict[str, Path]:
    """Data in ``n_data`` shards, each model in ``n_pred`` shards; with ``seed``, rows are shuffled
    across and within shards and the shard files are named in a shuffled order."""
    data, scores = models
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.n_samples) if seed is not None else np.arange(data.n_samples)
    names = rng.permutation(n_data) if seed is not None else np.arange(n_data)
    dirs = {"data": root / "data"}
    for k, rows in enumerate(np.array_split(order, n_data)):
        write_shard(dirs["data"] / f"part-{names[k]:03d}.npz", _data_columns(data, rows))
    scored_ids = data.ids[data.mask("calib", "test")]
    for model, values in scores.items():
        dirs[model] = root / model
        perm = rng.permutation(len(scored_ids)) if seed is not None else np.arange(len(scored_ids))
        for k, rows in enumerate(np.array_split(perm, n_pred)):
            write_shard(dirs[model] / f"p{k:03d}.npz", {"ids": scored_ids[rows], "scores": values[rows]})
    return dirs


def _files(tmp_path: Path, models) -> dict[str, Path]:
    """The data and each model's predictions as single files (the in-memory gate's inputs)."""
    data, scores = models
    rows = data.mask("calib", "test")
    files = {"data": save_eval_data(data, tmp_path / "data.npz")}
    for model, values in scores.items():
        files[model] = save_predictions(tmp_path / f"{model}.npz", data.ids[rows], values)
    return files


def _gate(tmp_path: Path, dirs: dict[str, Path], name: str, *extra: str, limits_text: str = LIMITS):
    limits = tmp_path / f"{name}.limits.yaml"
    limits.write_text(limits_text)
    out = tmp_path / name
    args = ["gate", "--data", str(dirs["data"]), "--teacher", str(dirs["teacher"]),
            "--student", str(dirs["student_0"]), "--student", str(dirs["student_1"]),
            "--limits", str(limits), "--out", str(out), *extra]
    return CliRunner().invoke(app, args), out


def _report(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    for key in ("created", "inputs"):                # timings and input paths differ by construction
        report.pop(key)
    return report


def test_reports_are_identical_for_one_seven_and_shuffled_shards(tmp_path, models):
    reports, overrides = [], []
    for name, (n_data, n_pred, seed) in {"one": (1, 1, None), "seven": (7, 3, None),
                                         "shuffled": (7, 5, 11)}.items():
        result, out = _gate(tmp_path, _write(tmp_path / f"in_{name}", models, n_data, n_pred, seed=seed), name)
        assert result.exit_code in (0, 1), result.output
        reports.append(_report(out))
        overrides.append((out / "overrides.json").read_text())
    assert reports[0] == reports[1] == reports[2]
    assert overrides[0] == overrides[1] == overrides[2]
    assert reports[0]["mitigation"]["overrides"]["count"] > 0        # the top-k merge was exercised
    assert all(entry["ci"] is not None for entry in reports[0]["limits"])
    # FairGRAPE's section came through every sharding: counts, PIE (modal ties of the two students
    # keyed by id hash) and per-group AP from the rows family, resampled because an AP limit asks
    section = reports[0]["fairgrape"]
    assert section["ap_intervals"] and section["ap_change_std"]["ci"] is not None
    assert [row["name"] for row in section["rows"]][:2] == ["all", "male & young"]


def test_the_sharded_gate_equals_the_in_memory_gate(tmp_path, models):
    files = _files(tmp_path, models)
    memory, memory_out = _gate(tmp_path, files, "memory")
    sharded, sharded_out = _gate(tmp_path, _write(tmp_path / "in", models, 4, 3, seed=5), "sharded")
    assert memory.exit_code == sharded.exit_code and memory.exit_code in (0, 1), memory.output
    assert _report(memory_out) == _report(sharded_out)


def test_without_an_ap_limit_neither_gate_computes_ap(tmp_path, models):
    # Per-group AP needs every score in one process: without an AP limit neither the sharded nor
    # the in-memory gate computes it (null, with the reason), and both reports are the same.
    files = _files(tmp_path, models)
    no_ap = LIMITS.replace("  - {metric: ap_change_std, max: 0.1}\n", "")
    reports = {}
    for name, inputs in (("memory", files), ("sharded", _write(tmp_path / "in", models, 4, 3, seed=5))):
        result, out = _gate(tmp_path, inputs, name, limits_text=no_ap)
        assert result.exit_code in (0, 1), result.output
        reports[name] = _report(out)
    memory, sharded = reports["memory"], reports["sharded"]
    assert memory == sharded
    section = sharded["fairgrape"]
    assert "limit on group_ap" in section["ap_undefined_reason"]
    assert section["ap_mean"]["teacher"]["value"] is None and section["ap_change_std"]["value"] is None
    assert all(row["ap"]["student"]["value"] is None for row in section["rows"])
    assert "ap_mean" in sharded["estimates"]["not_computed"]


def test_point_metrics_equal_the_metric_functions(tmp_path, models):
    data, scores = models
    result, out = _gate(tmp_path, _write(tmp_path / "in", models, 3, 2, seed=1), "out")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())["metrics"]
    test = data.split[data.mask("calib", "test")] == "test"
    y = data.labels[data.split == "test"]
    groups = data.groups[data.split == "test"]
    train = data.split == "train"
    teacher = scores["teacher"][test]
    pred = metrics.predict_labels(teacher, task="multilabel")
    per_attribute = report["teacher"]["per_attribute"]
    for k, name in enumerate(data.attribute_names):
        assert per_attribute[name]["fpr"] == metrics.false_positive_rate(y, pred)[k]
        assert per_attribute[name]["fnr"] == metrics.false_negative_rate(y, pred)[k]
        assert per_attribute[name]["ece"] == metrics.expected_calibration_error(y, teacher)[k]
        assert per_attribute[name]["uncertainty"] == metrics.uncertainty(teacher)[k]
        assert per_attribute[name]["tcb"] == metrics.train_class_balance(
            y, pred, train_mean=data.labels[train].mean(axis=0))[k]
        assert per_attribute[name]["r2"] == pytest.approx(metrics.label_interrelation(pred)[k], abs=1e-12)
    assert report["teacher"]["accuracy"] == metrics.accuracy(y, pred, task="multilabel")
    ba = metrics.bias_amplification(y, pred, groups, train_labels=data.labels[train], train_groups=data.groups[train])
    assert report["ba"]["teacher"]["smiling"]["young"] == ba.values[0, 1]
    students = [metrics.predict_labels(scores[f"student_{i}"][test], task="multilabel") for i in range(2)]
    mean_fpr = np.mean([metrics.false_positive_rate(y, p) for p in students], axis=0)
    assert [report["student"]["per_attribute"][n]["fpr"] for n in data.attribute_names] == mean_fpr.tolist()
    sizes = [row["size"] for row in report["subgroups"]]
    assert sizes[:3] == [len(y), int(groups[:, 0].sum()), int(groups[:, 1].sum())]


def test_a_duplicated_id_across_shards_is_exit_2_naming_both_shards(tmp_path, models):
    dirs = _write(tmp_path / "in", models, 3, 2, seed=None)
    first = dict(np.load(dirs["data"] / "part-000.npz"))
    second = dict(np.load(dirs["data"] / "part-001.npz"))
    second["ids"][0] = first["ids"][0]
    write_shard(dirs["data"] / "part-001.npz", second)
    result, out = _gate(tmp_path, dirs, "out")
    assert result.exit_code == 2, result.output
    assert "part-000.npz" in result.output and "part-001.npz" in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_a_corrupt_shard_is_exit_2_naming_it_and_nothing_is_written(tmp_path, models):
    dirs = _write(tmp_path / "in", models, 3, 2, seed=None)
    (dirs["student_1"] / "p001.npz").write_bytes(b"not a zip file")
    result, out = _gate(tmp_path, dirs, "out")
    assert result.exit_code == 2, result.output
    assert "p001.npz" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_model_files_with_a_shard_directory_are_refused(tmp_path, models):
    dirs = _write(tmp_path / "in", models, 2, 1, seed=None)
    result = CliRunner().invoke(app, ["gate", "--data", str(dirs["data"]), "--teacher-model", "t.onnx",
                                      "--student-model", "s.onnx", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "directory of shards" in result.output


@pytest.mark.parametrize("backend, message", [("spark", "'spark' is not known"),
                                              ("ray", "runs the gate on a directory of shards")])
def test_a_bad_backend_is_exit_2(tmp_path, models, backend, message):
    files = _files(tmp_path, models)
    result, out = _gate(tmp_path, files, "out", "--backend", backend)
    assert result.exit_code == 2 and message in result.output and not out.exists()


def test_runs_split_items_into_even_consecutive_runs():
    """The Ray backend's tasks: at most ``n_tasks`` runs of consecutive shards, sizes within 1."""
    assert runs(10, 4) == [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]
    assert runs(3, 4) == [range(0, 1), range(1, 2), range(2, 3)]
    assert runs(5, 1) == [range(0, 5)] and runs(0, 4) == []


def test_a_ray_task_names_a_file_its_node_cannot_see(tmp_path):
    """Listed by the driver, absent where the task runs: the fix (a shared filesystem) is named."""
    with pytest.raises(InputError, match="not found on the Ray node .* mounts at the same path"):
        _each(len, [tmp_path / "part-000.npz"])
