"""`compress-gate bench`: table or JSON, exit 2 on bad input, exit 3 when an engine crashes."""

from __future__ import annotations

import json

import _engine_fixtures as fx
import pytest
from typer.testing import CliRunner

from _worlds import needs_deepsparse

from compress_gate.cli import app
from compress_gate.engines import ds_worker

runner = CliRunner()
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return fx.write_tiny_onnx(tmp_path_factory.mktemp("cli") / "tiny.onnx")


def test_bench_json_and_out_file(tiny, tmp_path):
    out = tmp_path / "results.json"
    result = runner.invoke(app, ["bench", str(tiny), "-e", "onnxruntime", "-b", "2", "--iterations", "2",
                                 "--warmup", "0", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads(out.read_text())
    (row,) = printed["results"]
    assert (row["model"], row["engine"], row["batch_size"], row["status"]) == ("tiny", "onnxruntime", 2, "ok")


def test_bench_table_lists_skipped_gpu_engines_with_reason(tiny):
    result = runner.invoke(app, ["bench", str(tiny), "-e", "onnxruntime", "-e", "onnxruntime-cuda",
                                 "-b", "1", "--iterations", "2", "--warmup", "0"])
    if result.exit_code == 0:  # a GPU machine
        assert "onnxruntime-cuda" in result.stdout
        return
    assert result.exit_code == 3
    assert "onnxruntime-cuda: skipped, no CUDA device" in " ".join(result.stdout.split())
    assert "onnxruntime-cuda was requested but is not available" in " ".join(result.stderr.split())


def test_bench_missing_model_exits_2(tmp_path):
    result = runner.invoke(app, ["bench", str(tmp_path / "absent.onnx"), "-e", "onnxruntime"])
    assert result.exit_code == 2
    assert "no such ONNX model" in result.stderr
    assert "Traceback" not in result.output


@needs_deepsparse
def test_bench_deepsparse_crash_exits_3_and_keeps_other_engines(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(ds_worker, "_deepsparse_worker_main", fx.abort_on_first_run)
    out = tmp_path / "results.json"
    result = runner.invoke(app, ["bench", str(tiny), "-e", "deepsparse", "-e", "onnxruntime", "-b", "1",
                                 "--iterations", "2", "--warmup", "1", "--out", str(out)])
    assert result.exit_code == 3
    stderr = " ".join(result.stderr.split())
    assert f"tiny on deepsparse at batch 1: DeepSparse on {tiny}: the worker process was killed by SIGABRT" in stderr
    rows = {row["engine"]: row for row in json.loads(out.read_text())["results"]}
    assert rows["deepsparse"]["status"] == "failed" and rows["onnxruntime"]["status"] == "ok"


def test_bench_unknown_engine_exits_2(tiny):
    result = runner.invoke(app, ["bench", str(tiny), "-e", "tensorflow"])
    assert result.exit_code == 2
    assert "unknown engine(s) ['tensorflow']" in result.stderr
