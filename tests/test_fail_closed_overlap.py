"""Fail-closed outputs, round two (issue 20): no command writes into, replaces or deletes one of its inputs,
and one call writes an output at a time.

Table-driven over commands and ways an output can overlap an input (is it, contains it, lies inside it;
through a symbolic link or a hard link): exit 2 before anything is written, the message naming the output and
the input, and nothing under the test's directory changed. Then the one-writer lock: a call that finds another
call writing its output is exit 2 naming the holder, and leaves the holder's result alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from _gate_data import LIMITS_YAML, write_files
from _tree import tree_state
from _worlds import needs_sparseml
from compress_gate._outdir import MARKER
from compress_gate.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
SPARSEML = ("final_sparsity: 0.9\nmodifiers:\n  - !EpochRangeModifier\n    start_epoch: 0\n    end_epoch: 1\n"
            "  - !GMPruningModifier\n    params: ['re:conv']\n    init_sparsity: 0.05\n"
            "    final_sparsity: eval(final_sparsity)\n    start_epoch: 0.0\n    end_epoch: 1.0\n"
            "    update_frequency: 0.5\n")


def flat(result) -> str:
    return " ".join(result.output.split())


def marked(directory: Path) -> Path:
    """``directory`` as an earlier call of the tool left it (it holds the marker), so only the overlap refuses."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by compress-gate\n")
    return directory


def recipe(path: Path, output: str, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "output": output, "model": {"arch": "resnet", "width": 4, "train": {"epochs": 1}},
        "data": {"kind": "demo"}, "compression": {"recipe": SPARSEML}, **extra}))
    return path


# --- each case builds its files under tmp and returns (argv, words the message must hold) -------------------
def gate_out_is_a_run_dir_holding_its_inputs(tmp):
    # issue 20 #7: a run directory holding data, predictions and release/, with a bad limits file
    run = marked(tmp / "run")
    files = write_files(run, biased=False)
    (run / "release").mkdir()
    (run / "release" / "model.onnx").write_bytes(b"shipped")
    (tmp / "bad.yaml").write_text("limits: [")
    return (["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]), "--student",
             str(files["student_0"]), "--limits", str(tmp / "bad.yaml"), "--out", str(run)],
            "the output directory contains the eval data (--data)")


def gate_out_holds_the_limits_file(tmp):
    files = write_files(tmp, biased=False)
    out = marked(tmp / "out")
    (out / "limits.yaml").write_text(LIMITS_YAML)
    return (["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]), "--student",
             str(files["student_0"]), "--limits", str(out / "limits.yaml"), "--out", str(out)],
            "contains the limits file (--limits)")


def gate_out_inside_a_shard_directory(tmp):
    files = write_files(tmp / "shards", biased=False)
    return (["gate", "--data", str(tmp / "shards"), "--teacher", str(files["teacher"]), "--student",
             str(files["student_0"]), "--out", str(tmp / "shards" / "out")],
            "lies inside the eval data (--data)")


def gate_inputs_through_a_symlink_into_the_out(tmp):
    argv, _ = gate_out_is_a_run_dir_holding_its_inputs(tmp)
    (tmp / "alias").symlink_to(tmp / "run", target_is_directory=True)     # the inputs, named through a link
    argv = [arg.replace(str(tmp / "run") + "/", str(tmp / "alias") + "/") for arg in argv]
    assert str(tmp / "alias" / "data.npz") in argv
    return argv, "the output directory contains the eval data (--data)"


def _bundle(tmp):
    bundle = tmp / "release"
    bundle.mkdir()
    (bundle / "report.json").write_text('{"verdict": "pass"}')
    (bundle / "manifest.json").write_text("{}")
    np.savez(tmp / "in.npz", inputs=np.zeros((2, 3, 8, 8), np.float32))
    return bundle


def predict_out_is_the_bundles_report(tmp):
    # issue 20 #8: deleted the bundle's report, and the bundle never verified again
    bundle = _bundle(tmp)
    return (["predict", str(bundle), str(tmp / "in.npz"), "--out", str(bundle / "report.json")],
            "lies inside the release bundle")


def predict_out_is_a_new_file_in_the_bundle(tmp):
    bundle = _bundle(tmp)      # the old message blamed the tool's own temporary file
    return (["predict", str(bundle), str(tmp / "in.npz"), "--out", str(bundle / "new.npz")],
            "lies inside the release bundle")


def predict_out_is_the_inputs(tmp):
    bundle = _bundle(tmp)      # overwrote the inputs, and deleted them when the call failed
    return ["predict", str(bundle), str(tmp / "in.npz"), "--out", str(tmp / "in.npz")], "is the inputs file"


def predict_out_is_a_hard_link_to_the_inputs(tmp):
    bundle = _bundle(tmp)
    os.link(tmp / "in.npz", tmp / "same.npz")
    return ["predict", str(bundle), str(tmp / "in.npz"), "--out", str(tmp / "same.npz")], "is the inputs file"


def predict_out_in_the_bundle_through_a_symlinked_dir(tmp):
    bundle = _bundle(tmp)
    (tmp / "alias").symlink_to(bundle, target_is_directory=True)
    return (["predict", str(bundle), str(tmp / "in.npz"), "--out", str(tmp / "alias" / "p.npz")],
            "lies inside the release bundle")


def bench_out_is_the_model(tmp):
    (tmp / "m.onnx").write_bytes(b"model")
    return ["bench", str(tmp / "m.onnx"), "-e", "onnxruntime", "--out", str(tmp / "m.onnx")], "is the model"


def score_out_inside_the_data(tmp):
    (tmp / "shards").mkdir()
    (tmp / "shards" / "a.npz").write_bytes(b"shard")
    (tmp / "m.onnx").write_bytes(b"model")
    return (["score", str(tmp / "m.onnx"), str(tmp / "shards"), "--out", str(tmp / "shards" / "preds")],
            "lies inside the eval data")


def score_out_holds_the_model(tmp):
    out = marked(tmp / "preds")
    (out / "m.onnx").write_bytes(b"model")
    np.savez(tmp / "data.npz", ids=np.array(["a"]))
    return ["score", str(out / "m.onnx"), str(tmp / "data.npz"), "--out", str(out)], "contains the model"


def report_out_holds_the_report(tmp):
    out = marked(tmp / "gate")
    (out / "report.json").write_text("{}")
    return ["report", str(out / "report.json"), "--out", str(out)], "contains the report (REPORT_JSON)"


def summary_md_is_an_input(tmp):
    files = write_files(tmp, biased=False)
    return (["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]), "--student",
             str(files["student_0"]), "--out", str(tmp / "out"), "--summary-md", str(files["teacher"])],
            "is the teacher predictions (--teacher)")


def run_output_holds_the_recipe(tmp):
    exp = marked(tmp / "exp")
    return ["run", str(recipe(exp / "r.yaml", "."))], "the run directory contains the recipe file"


def run_output_holds_the_data(tmp):
    files = write_files(marked(tmp / "runs" / "x"), biased=False)
    path = recipe(tmp / "r.yaml", "runs/x")
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "data": {"kind": "npz", "path": str(files["data"])}}))
    return ["run", str(path)], "contains the file named by the recipe's `data.path`"


def sweep_output_holds_the_users_recipes(tmp):
    # issue 20 #6: a folder with a recipes/ subfolder was taken for a sweep; its YAML files were deleted
    (tmp / "work" / "recipes").mkdir(parents=True)
    (tmp / "work" / "recipes" / "mine.yaml").write_text("mine: 1\n")
    (tmp / "work" / "release").mkdir()
    (tmp / "work" / "release" / "model.onnx").write_bytes(b"shipped")
    return (["sweep", str(recipe(tmp / "work" / "recipes" / "sweep.yaml", "..")), "--sparsity", "0.5"],
            "is a non-empty directory, not a compress-gate sweep directory")


def sweep_output_marked_but_holding_the_recipe(tmp):
    work = marked(tmp / "work")
    return (["sweep", str(recipe(work / "recipes" / "sweep.yaml", "..")), "--sparsity", "0.5"],
            "the sweep directory contains the recipe file")


def audit_output_holds_the_recipe(tmp):
    exp = marked(tmp / "exp")
    return (["audit", str(recipe(exp / "r.yaml", "../runs/x", audit={"output": "."}))],
            "the audit output directory contains the recipe file")


CASES = {f.__name__: f for f in (
    gate_out_is_a_run_dir_holding_its_inputs, gate_out_holds_the_limits_file, gate_out_inside_a_shard_directory,
    gate_inputs_through_a_symlink_into_the_out, predict_out_is_the_bundles_report,
    predict_out_is_a_new_file_in_the_bundle, predict_out_is_the_inputs, predict_out_is_a_hard_link_to_the_inputs,
    predict_out_in_the_bundle_through_a_symlinked_dir, bench_out_is_the_model, score_out_inside_the_data,
    score_out_holds_the_model, report_out_holds_the_report, summary_md_is_an_input, audit_output_holds_the_recipe)}
SPARSEML_CASES = {f.__name__: f for f in (run_output_holds_the_recipe, run_output_holds_the_data,
                                          sweep_output_holds_the_users_recipes,
                                          sweep_output_marked_but_holding_the_recipe)}


def _refused_touching_nothing(case, tmp_path):
    argv, words = case(tmp_path)
    before = tree_state(tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and words in flat(result), result.output
    assert tree_state(tmp_path) == before                   # nothing written, replaced or deleted


@pytest.mark.parametrize("name", CASES)
def test_an_output_overlapping_an_input_is_exit_2_and_touches_nothing(name, tmp_path):
    _refused_touching_nothing(CASES[name], tmp_path)


@needs_sparseml
@pytest.mark.parametrize("name", SPARSEML_CASES)
def test_a_recipe_output_overlapping_an_input_is_exit_2_and_touches_nothing(name, tmp_path):
    _refused_touching_nothing(SPARSEML_CASES[name], tmp_path)


def test_the_message_says_nothing_was_written_and_the_fix(tmp_path):
    argv, _ = predict_out_is_the_inputs(tmp_path)
    text = flat(runner.invoke(app, argv))
    assert f"{tmp_path / 'in.npz'}: the predictions file (--out) is the inputs file" in text
    assert "never writes into, replaces or deletes one of its inputs, so nothing was written" in text
    assert "Choose an output path outside every input" in text


def test_check_apart_relations_hand_made(tmp_path):
    from compress_gate._outdir import check_apart
    from compress_gate.errors import InputError

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    inputs = {"input": tmp_path / "a" / "b"}
    for out, relation in ((tmp_path / "a" / "b", "is"), (tmp_path / "a", "contains"),
                          (tmp_path / "a" / "b" / "new", "lies inside"), (tmp_path / "a" / "b" / "f", "lies inside")):
        with pytest.raises(InputError, match=f"the output {relation} the input"):
            check_apart(out, inputs)
    check_apart(tmp_path / "a" / "bb", inputs)               # a sibling sharing a prefix is apart
    check_apart(tmp_path / "c", {"input": None, "more": []})  # absent inputs are skipped


# --- one writer per output ---------------------------------------------------------------
HOLD = ("import sys; from compress_gate._lock import output_lock\n"
        "with output_lock(sys.argv[1], what='output directory'):\n"
        "    print('held', flush=True); sys.stdin.read()\n")


@pytest.fixture()
def holder():
    """Start a process holding the lock of a path; yields a function path -> Popen (killed at the end)."""
    procs = []

    def hold(path: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def _gate(files, out, limits):
    return runner.invoke(app, ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]),
                               "--student", str(files["student_0"]), "--limits", str(limits), "--out", str(out)])


def test_a_second_writer_is_exit_2_naming_the_holder_and_leaves_its_result(tmp_path, holder):
    files = write_files(tmp_path, biased=False)
    (tmp_path / "limits.yaml").write_text(LIMITS_YAML)
    out = tmp_path / "out"
    assert _gate(files, out, tmp_path / "limits.yaml").exit_code == 0
    proc = holder(out)
    before = tree_state(out)
    for limits in (tmp_path / "limits.yaml", tmp_path / "missing.yaml"):   # a pass or a refusal: both wait their turn
        result = _gate(files, out, limits)
        assert result.exit_code == 2, result.output
        assert f"{out}: another compress-gate call is writing this output directory (pid {proc.pid} on" in flat(result)
        assert "wait for it to finish, or choose another output path" in flat(result)
        assert tree_state(out) == before                      # the holder's report.json is untouched
    proc.stdin.close()
    proc.wait()
    assert not (tmp_path / ".out.lock").exists()               # released: the lock file is gone
    assert _gate(files, out, tmp_path / "limits.yaml").exit_code == 0


def test_a_killed_holder_blocks_no_later_call(tmp_path, holder):
    files = write_files(tmp_path, biased=False)
    (tmp_path / "limits.yaml").write_text(LIMITS_YAML)
    proc = holder(tmp_path / "out")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / ".out.lock").exists()                   # left by kill -9, and reused
    assert _gate(files, tmp_path / "out", tmp_path / "limits.yaml").exit_code == 0
    assert not (tmp_path / ".out.lock").exists()


def test_a_file_output_has_one_writer_too(tmp_path, holder):
    bundle = _bundle(tmp_path)
    proc = holder(tmp_path / "p.npz")
    result = runner.invoke(app, ["predict", str(bundle), str(tmp_path / "in.npz"), "--out", str(tmp_path / "p.npz")])
    assert result.exit_code == 2 and f"(pid {proc.pid} on" in flat(result)


def test_the_lock_is_reentrant_in_one_process(tmp_path):
    from compress_gate._lock import lock_path, output_lock

    with output_lock(tmp_path / "out"), output_lock(tmp_path / "out"):
        assert lock_path(tmp_path / "out").exists()
    assert not lock_path(tmp_path / "out").exists()


def test_successful_calls_leave_every_input_as_it_was(tmp_path):
    # the other half of the rule: a call that works reads its inputs and writes only its outputs
    from _engine_fixtures import tiny_inputs, write_tiny_onnx

    inputs = tmp_path / "inputs"
    files = write_files(inputs, biased=False)
    (inputs / "limits.yaml").write_text(LIMITS_YAML)
    write_tiny_onnx(inputs / "m.onnx")
    ids = np.array([f"s{i}" for i in range(6)])
    np.savez(inputs / "score_data.npz", ids=ids, labels=np.zeros((6, 4), np.uint8),
             split=np.array(["train", "calib", "test"] * 2), group__g=np.array([0, 1] * 3, np.uint8),
             inputs=tiny_inputs(6))
    before = tree_state(inputs)
    gate = ["gate", "--data", str(files["data"]), "--teacher", str(files["teacher"]), "--student",
            str(files["student_0"]), "--limits", str(inputs / "limits.yaml"), "--out", str(tmp_path / "out"),
            "--summary-md", str(tmp_path / "summary.md")]
    for argv in (gate, gate, ["report", str(tmp_path / "out" / "report.json"), "--out", str(tmp_path / "again")],
                 ["score", str(inputs / "m.onnx"), str(inputs / "score_data.npz"), "--out", str(tmp_path / "p")],
                 ["bench", str(inputs / "m.onnx"), "-e", "onnxruntime", "-b", "1", "--iterations", "2",
                  "--warmup", "1", "--out", str(tmp_path / "bench.json")]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 0, (argv[0], result.output)
        assert tree_state(inputs) == before, argv[0]
    assert not list(tmp_path.glob(".*.lock"))                     # every lock released


def test_a_lock_leaves_no_parent_directory_it_made(tmp_path):
    from compress_gate._lock import output_lock

    with output_lock(tmp_path / "a" / "b" / "out"):
        assert (tmp_path / "a" / "b").is_dir()
    assert not (tmp_path / "a").exists()                      # made for the lock, empty again: removed
    with output_lock(tmp_path / "a" / "b" / "out"):
        (tmp_path / "a" / "b" / "out").mkdir()                # the call wrote its output: the parents stay
    assert (tmp_path / "a" / "b" / "out").is_dir()
