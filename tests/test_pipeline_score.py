"""`compress-gate score`: sharded predictions, written last-manifest-first-marker, read back by the shard join."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from compress_gate.cli import app
from compress_gate.data import EvalData, save_eval_data
from compress_gate.data._shard_files import INCOMPLETE_NAME, write_shard
from compress_gate.data.shards import open_shards, read_prediction_shard
from compress_gate.errors import InputError, RuntimeFailure
from compress_gate.pipeline.score import score_to_shards
from tests._engine_fixtures import OUTPUTS, reference_scores, tiny_inputs, write_tiny_onnx


def make_scoring_data(n: int = 30) -> EvalData:
    """n rows, 4 attributes (the tiny model's outputs), one group; splits train/calib/test by thirds."""
    rng = np.random.default_rng(3)
    split = np.array(["train", "calib", "test"])[np.arange(n) % 3]
    groups = (np.arange(n) % 2 == 0)[:, None]
    return EvalData(ids=np.array([f"s{i:03d}" for i in range(n)]), labels=(rng.random((n, OUTPUTS)) < .5)
                    .astype(np.uint8), split=split, groups=groups, group_names=("g",),
                    attribute_names=tuple(f"a{k}" for k in range(OUTPUTS)), task="multilabel",
                    inputs=tiny_inputs(n))


def write_data_shards(directory, data: EvalData, n_shards: int) -> None:
    for k, rows in enumerate(np.array_split(np.arange(data.n_samples), n_shards)):
        sub = data.subset(rows)
        columns = {"ids": sub.ids, "labels": sub.labels, "split": sub.split, "inputs": sub.inputs,
                   "group__g": sub.groups[:, 0].astype(np.uint8),
                   "attribute_names": np.asarray(sub.attribute_names), "task": np.asarray(sub.task)}
        write_shard(directory / f"d{k}.npz", columns)


def read_all(out) -> dict[str, list[float]]:
    manifest = json.loads((out / "manifest.json").read_text())
    got = {}
    for entry in manifest["shards"]:
        preds = read_prediction_shard(out / entry["file"])
        assert preds.ids.size == entry["rows"]
        got.update(zip(preds.ids.tolist(), preds.scores.tolist()))
    return got


def test_score_local_matches_the_reference_and_joins(tmp_path):
    data = make_scoring_data()
    model = write_tiny_onnx(tmp_path / "m.onnx")
    write_data_shards(tmp_path / "data", data, 3)
    written = score_to_shards(model, tmp_path / "data", tmp_path / "preds", rows_per_shard=4, batch_size=3)
    # calib/test rows per shard: 6, 7, 7; parts of at most 4 rows: 2 per shard
    assert written.n_rows == 20 and written.n_shards == 6
    assert not (tmp_path / "preds" / INCOMPLETE_NAME).exists()
    scored = data.split != "train"
    got = read_all(tmp_path / "preds")
    expected = reference_scores(data.inputs[scored])
    assert sorted(got) == data.ids[scored].tolist()
    np.testing.assert_allclose([got[i] for i in data.ids[scored]], expected, atol=1e-6)
    block_rows = sum(b.teacher.shape[0] for b in open_shards(tmp_path / "data", tmp_path / "preds",
                                                             tmp_path / "preds"))
    assert block_rows == 20


def test_score_single_file_and_the_cli(tmp_path):
    data = make_scoring_data(12)
    model = write_tiny_onnx(tmp_path / "m.onnx")
    save_eval_data(data, tmp_path / "data.npz")
    result = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data.npz"), "--out",
                                      str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "8 rows in 1 shard(s)" in result.output
    assert len(read_all(tmp_path / "p")) == 8
    again = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data.npz"), "--out", str(tmp_path / "p")])
    assert again.exit_code == 0, again.output                   # its own earlier output is replaced whole
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    foreign = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data.npz"), "--out", str(tmp_path / "mine")])
    assert foreign.exit_code == 2 and "not a compress-gate" in " ".join(foreign.output.split())
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_a_corrupt_data_shard_is_exit_2_naming_it(tmp_path):
    data = make_scoring_data()
    model = write_tiny_onnx(tmp_path / "m.onnx")
    write_data_shards(tmp_path / "data", data, 3)
    (tmp_path / "data" / "d1.npz").write_bytes(b"garbage")
    result = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data"), "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and "d1.npz" in result.output and not (tmp_path / "p").exists()


def test_a_failed_job_stays_marked_incomplete(tmp_path, monkeypatch):
    data = make_scoring_data()
    model = write_tiny_onnx(tmp_path / "m.onnx")
    write_data_shards(tmp_path / "data", data, 2)
    import compress_gate.engines as engines
    original, calls = engines.score_model, []

    def failing(model, inputs, **kwargs):             # the second part's engine dies
        calls.append(inputs.shape[0])
        if len(calls) == 2:
            raise RuntimeFailure("engine died")
        return original(model, inputs, **kwargs)

    monkeypatch.setattr(engines, "score_model", failing)
    with pytest.raises(RuntimeFailure, match="engine died"):
        score_to_shards(model, tmp_path / "data", tmp_path / "p")
    assert (tmp_path / "p" / INCOMPLETE_NAME).exists() and not (tmp_path / "p" / "manifest.json").exists()
    assert (tmp_path / "p" / "part-00000.npz").exists()                 # finished work is kept
    with pytest.raises(InputError, match="did not finish"):
        open_shards(tmp_path / "data", tmp_path / "p", tmp_path / "p")


def test_bad_arguments(tmp_path):
    data = make_scoring_data()
    save_eval_data(data, tmp_path / "data.npz")
    model = write_tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(InputError, match="--execution 'spark'"):
        score_to_shards(model, tmp_path / "data.npz", tmp_path / "p", execution="spark")
    with pytest.raises(InputError, match="rows-per-shard"):
        score_to_shards(model, tmp_path / "data.npz", tmp_path / "p", rows_per_shard=0)
    nope = data.subset(np.arange(data.n_samples))
    save_eval_data(EvalData(**{**nope.__dict__, "inputs": None}), tmp_path / "noinputs.npz")
    with pytest.raises(InputError, match="no `inputs` column"):
        score_to_shards(model, tmp_path / "noinputs.npz", tmp_path / "p")


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="Ray is installed here")
def test_backend_ray_without_ray_is_exit_2(tmp_path):
    save_eval_data(make_scoring_data(12), tmp_path / "data.npz")
    model = write_tiny_onnx(tmp_path / "m.onnx")
    result = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data.npz"), "--out", str(tmp_path / "p"),
                                      "--backend", "ray"])
    assert result.exit_code == 2 and "needs Ray, which is not installed" in result.output
    assert not (tmp_path / "p").exists()                       # refused before anything is written


@pytest.mark.parametrize(("extra", "words"), [
    (["--batch-size", "0"], "--batch-size = 0 must be an integer >= 1"),
    (["--engine", "tensorflow"], "--engine 'tensorflow' is not an engine"),
])
def test_bad_settings_are_exit_2_and_leave_no_out(tmp_path, extra, words):
    save_eval_data(make_scoring_data(12), tmp_path / "data.npz")
    model = write_tiny_onnx(tmp_path / "m.onnx")
    result = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data.npz"), "--out", str(tmp_path / "p"),
                                      *extra])
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
    assert not (tmp_path / "p").exists()                      # nothing to block the corrected re-run


def test_an_engine_that_cannot_run_here_is_exit_2_before_out(tmp_path, monkeypatch):
    import compress_gate.engines as engines

    save_eval_data(make_scoring_data(12), tmp_path / "data.npz")
    model = write_tiny_onnx(tmp_path / "m.onnx")
    monkeypatch.setattr(engines, "engine_availability", lambda: {k: "no such device" for k in engines.ENGINE_KINDS})
    with pytest.raises(InputError, match="--engine onnxruntime cannot run on this machine: no such device"):
        score_to_shards(model, tmp_path / "data.npz", tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_inputs_that_do_not_fit_the_model_are_exit_2_naming_the_shard(tmp_path):
    data = make_scoring_data()
    model = write_tiny_onnx(tmp_path / "m.onnx")                 # takes (B, 3, 8, 8)
    write_data_shards(tmp_path / "data", data, 2)
    small = data.subset(np.arange(15, 30))
    write_data_shards(tmp_path / "small", EvalData(**{**small.__dict__, "inputs": small.inputs[:, :, :4, :4]}), 1)
    (tmp_path / "small" / "d0.npz").replace(tmp_path / "data" / "d1.npz")
    with pytest.raises(InputError, match=r"d1.npz: `inputs` has rows of shape \(3, 4, 4\), but the model takes "
                                         r"\(3, 8, 8\)"):
        score_to_shards(model, tmp_path / "data", tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_after_an_interrupted_job_the_advised_rerun_works(tmp_path, monkeypatch):
    # the gate's message says "run the same `compress-gate score` command again"; score must then accept it
    data = make_scoring_data()
    model = write_tiny_onnx(tmp_path / "m.onnx")
    write_data_shards(tmp_path / "data", data, 2)
    import compress_gate.engines as engines
    original = engines.score_model

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engines, "score_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score_to_shards(model, tmp_path / "data", tmp_path / "p")
    with pytest.raises(InputError, match="Run the same `compress-gate score` command again: it replaces"):
        open_shards(tmp_path / "data", tmp_path / "p", tmp_path / "p")
    monkeypatch.setattr(engines, "score_model", original)
    assert score_to_shards(model, tmp_path / "data", tmp_path / "p").n_rows == 20
    assert not (tmp_path / "p" / INCOMPLETE_NAME).exists()
    assert sum(b.teacher.shape[0] for b in open_shards(tmp_path / "data", tmp_path / "p", tmp_path / "p")) == 20
