"""Issue 22, resume end to end: `compress-gate run` stopped by SIGTERM during the student's fine-tuning,
then `run --resume`, ends with the student weights of an uninterrupted run (torch.equal on every tensor);
and `--resume` refuses, exit 2, a directory it may not continue.

Both runs are child processes with one thread each (the same kernels, in the same order).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from compress_gate._outdir import MARKER
from compress_gate.cli import app
from compress_gate.config.run import load_run_config, recipe_hash

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")   # the torch backend's extra

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 12
_CLI = "import sys; from compress_gate.cli import main; sys.argv = ['compress-gate', *sys.argv[1:]]; main()"


def _recipe(tmp_path: Path, output: str) -> Path:
    recipe = {
        "seed": 0, "output": output,
        "model": {"arch": "resnet", "width": 4, "depth": 1, "cache_dir": "cache",
                  "train": {"epochs": 2, "lr": 0.05, "batch_size": 64}},
        "data": {"kind": "demo", "image_size": 8},
        "augment": {"hflip": True, "crop_scale": [0.6, 1.0]},
        "compression": {"backend": "torch", "epochs": EPOCHS, "lr": 0.02, "batch_size": 32,
                        "pruning": {"params": ["re:^layer\\d+\\..*conv\\d+\\.weight$"], "final_sparsity": 0.5,
                                    "end_epoch": 8.0, "update_frequency": 1.0},
                        "distillation": {"hardness": 0.5, "temperature": 2.0}},
        "engines": {"deployment": "onnxruntime", "check": [], "benchmark": {"enabled": False}},
        "gate": {"n_resamples": 200, "mitigation": {"calibrate_thresholds": False, "override_budget": 0.0},
                 "limits": [{"metric": "accuracy", "change": "absolute", "min": -1.0, "bound": "point"}]},
    }
    path = tmp_path / f"{output}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _run(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CLI, "run", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    try:
        _, stderr = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return proc.returncode, stderr


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigterm_during_fine_tuning_then_resume_gives_the_uninterrupted_weights(tmp_path):
    code, stderr = _finish(_run(str(_recipe(tmp_path, "full"))))
    assert code == 0, stderr
    cut = tmp_path / "cut"
    recipe = _recipe(tmp_path, "cut")
    proc = _run(str(recipe))
    _wait_for(cut / "checkpoints" / "student.pt", proc)      # at least one fine-tuning epoch finished
    proc.send_signal(signal.SIGTERM)
    code, stderr = _finish(proc)
    assert code == 128 + signal.SIGTERM, stderr
    record = json.loads((cut / "run.json").read_text())
    assert record["status"] == "interrupted" and record["interrupted_stage"] == "compress"
    saved = torch.load(cut / "checkpoints" / "student.pt", weights_only=True)["state_dict"]
    split = np.load(cut / "data.npz")["split"]
    per_epoch = math.ceil(int((split == "train").sum()) / 32)
    assert saved["step"] % per_epoch == 0 and 0 < saved["step"] < EPOCHS * per_epoch   # stopped mid-training
    assert not (cut / "student.pt").exists()
    code, stderr = _finish(_run(str(recipe), "--resume"))
    assert code == 0, stderr
    record = json.loads((cut / "run.json").read_text())
    assert record["status"] == "released"
    assert record["device"] == {"device": "cpu", "name": record["machine"]["cpu_model"], "amp": None}
    assert record["machine"]["versions"]["torch"] == torch.__version__
    assert record["resumed_from"]["status"] == "interrupted" and record["resumed_from"]["stage"] == "compress"
    assert not (cut / "checkpoints").exists()                 # a finished run keeps none
    full = torch.load(tmp_path / "full" / "student.pt", weights_only=True)
    resumed = torch.load(cut / "student.pt", weights_only=True)
    assert list(full) == list(resumed)
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


def _run_dir(tmp_path: Path, recipe: Path, **facts) -> Path:
    run_dir = tmp_path / "cut"
    run_dir.mkdir()
    (run_dir / MARKER).write_text("made by compress-gate\n")
    (run_dir / "run.json").write_text(json.dumps(facts))
    return run_dir


def _resume_exit(recipe: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", str(recipe), "--resume"])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def test_resume_without_a_run_is_refused(tmp_path):
    code, message = _resume_exit(_recipe(tmp_path, "cut"))
    assert code == 2 and "--resume found no run to continue" in message and "without --resume" in message


def test_resume_of_a_finished_run_is_refused_and_keeps_it(tmp_path):
    recipe = _recipe(tmp_path, "cut")
    run_dir = _run_dir(tmp_path, recipe, status="released", recipe_hash=recipe_hash(recipe, load_run_config(recipe)))
    code, message = _resume_exit(recipe)
    assert code == 2 and "this run's status is 'released' (it finished)" in message
    assert (run_dir / "run.json").is_file()


def test_resume_of_another_recipes_run_is_refused_and_keeps_it(tmp_path):
    recipe = _recipe(tmp_path, "cut")
    run_dir = _run_dir(tmp_path, recipe, status="interrupted", recipe_hash="0" * 64)
    code, message = _resume_exit(recipe)
    assert code == 2 and "was made by another recipe" in message and "recipe_hash 0000000000000000..." in message
    assert (run_dir / "run.json").is_file()


def _sweep_exit(recipe: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["sweep", str(recipe), "--sparsity", "0.3", "0.6", *extra])
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def test_sweep_resume_without_a_sweep_or_of_a_finished_one_is_refused(tmp_path):
    recipe = _recipe(tmp_path, "cut")
    code, message = _sweep_exit(recipe, "--resume")
    assert code == 2 and "--resume found no sweep to continue" in message
    _run_dir(tmp_path, recipe, status="released")
    (tmp_path / "cut" / "sweep.json").write_text("{}")
    code, message = _sweep_exit(recipe, "--resume")
    assert code == 2 and "sweep.json: --resume continues an interrupted sweep, but this one finished" in message
    assert (tmp_path / "cut" / "sweep.json").is_file()


@pytest.mark.slow
def test_sweep_resume_keeps_finished_students_and_resumes_the_interrupted_one(tmp_path):
    recipe = _recipe(tmp_path, "sweep")
    raw = yaml.safe_load(recipe.read_text())
    raw["compression"]["epochs"] = 2
    raw["compression"]["pruning"]["end_epoch"] = 1.0
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, message = _sweep_exit(recipe)
    assert code in (0, 1), message
    sweep = tmp_path / "sweep"
    first, second = sweep / "sparsity-0.3", sweep / "sparsity-0.6"
    kept = (first / "run.json").read_bytes()
    students = [torch.load(d / "student.pt", weights_only=True) for d in (first, second)]
    (sweep / "sweep.json").unlink()                        # as if the sweep stopped during the second student
    record = json.loads((second / "run.json").read_text())
    record.update(status="interrupted", interrupted_stage="compress")
    (second / "run.json").write_text(json.dumps(record))
    code, message = _sweep_exit(recipe, "--resume")
    assert code in (0, 1), message
    assert (first / "run.json").read_bytes() == kept        # read back, not run again
    resumed = json.loads((second / "run.json").read_text())
    assert resumed["resumed_from"]["stage"] == "compress" and resumed["status"] in ("released", "refused")
    for directory, before in zip((first, second), students):      # the retrained student: the same weights
        after = torch.load(directory / "student.pt", weights_only=True)
        assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
    rows = json.loads((sweep / "sweep.json").read_text())["students"]
    assert [row["student"] for row in rows] == ["sparsity-0.3", "sparsity-0.6"]
