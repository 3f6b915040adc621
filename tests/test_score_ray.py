"""Scoring on Ray: the same shards as the local path, and a killed worker retried to the same result.

Skipped when Ray (the ``[ray]`` extra) is absent. One local cluster with 2 CPUs for the module.
"""

from __future__ import annotations

import json
import os

import pytest

pytestmark = pytest.mark.slow           # a Ray cluster start and Ray Data jobs: about 20 s a test

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")
pytest.importorskip("ray.data", reason="Ray Data is not installed (the [ray] extra): Ray tests skipped")

import compress_gate.pipeline.score as score_module  # noqa: E402
from compress_gate.data.shards import read_prediction_shard  # noqa: E402
from compress_gate.pipeline.score import score_to_shards  # noqa: E402
from tests._engine_fixtures import write_tiny_onnx  # noqa: E402
from tests._ray_fixtures import KillOnce, local_cluster  # noqa: E402
from tests.test_pipeline_score import make_scoring_data, write_data_shards  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(num_cpus=2):
        yield


def _shards(out) -> dict[str, tuple[list, bytes]]:
    files = sorted(p.name for p in out.glob("part-*.npz"))
    return {name: (read_prediction_shard(out / name).ids.tolist(), read_prediction_shard(out / name).scores.tobytes())
            for name in files}


@pytest.fixture()
def inputs(tmp_path):
    data = make_scoring_data(60)
    write_data_shards(tmp_path / "data", data, 3)
    model = write_tiny_onnx(tmp_path / "m.onnx")
    local = score_to_shards(model, tmp_path / "data", tmp_path / "local", rows_per_shard=10)
    return model, tmp_path / "data", _shards(local.out)


def test_ray_scores_equal_local_scores(cluster, inputs, tmp_path):
    model, data, expected = inputs
    written = score_to_shards(model, data, tmp_path / "ray", rows_per_shard=10, execution="ray", workers=2)
    assert written.n_shards == len(expected) == 6
    assert _shards(written.out) == expected                         # bit-identical scores, same shards
    manifests = [json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("ray", "local")]
    assert manifests[0]["shards"] == manifests[1]["shards"]


def test_a_killed_worker_is_retried_with_the_same_result(cluster, inputs, tmp_path, monkeypatch):
    model, data, expected = inputs
    monkeypatch.setattr(score_module, "OrtScorer", KillOnce)
    written = score_to_shards(model, data, tmp_path / "ray", rows_per_shard=10, execution="ray", workers=2)
    killed = tmp_path / "killed.flag"
    assert killed.exists() and int(killed.read_text()) != os.getpid()   # a worker died mid-job
    assert _shards(written.out) == expected


def test_ray_input_errors_come_back_as_input_errors(cluster, tmp_path):
    from compress_gate.errors import InputError
    data = make_scoring_data(12)
    write_data_shards(tmp_path / "data", data, 2)
    with pytest.raises(InputError, match="missing"):
        score_to_shards(tmp_path / "missing.onnx", tmp_path / "data", tmp_path / "p", execution="ray")
