"""A two-node Ray cluster on this machine (``ray start --head`` plus a second ``ray start --address``):
tasks pinned to each node give the local results; ``score --backend ray --address`` gives the local shards.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (two nodes start in about 30 s, for the module).
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from compress_gate.execution import map_tasks  # noqa: E402
from compress_gate.cli import app  # noqa: E402
from compress_gate.pipeline.score import score_to_shards  # noqa: E402
from tests._engine_fixtures import write_tiny_onnx  # noqa: E402
from tests._ray_fixtures import shard_sum, shard_sum_and_node, two_node_cluster  # noqa: E402
from tests.test_pipeline_score import make_scoring_data, read_all, write_data_shards  # noqa: E402


@pytest.fixture(scope="module")
def address():
    with two_node_cluster() as found:
        yield found


def test_tasks_pinned_to_each_node_give_the_local_results(address):
    items = list(range(6))
    got = map_tasks(shard_sum_and_node, items, address=address, what="test",
                    resources=lambda item: {"node1" if item % 2 == 0 else "node2": 1})
    assert [result for result, _ in got] == [shard_sum(item) for item in items]
    even, odd = {node for _, node in got[0::2]}, {node for _, node in got[1::2]}
    assert len(even) == len(odd) == 1 and even != odd                # each node ran its own items


def test_score_on_the_cluster_by_address_equals_local(address, tmp_path):
    write_data_shards(tmp_path / "data", make_scoring_data(60), 3)
    model = write_tiny_onnx(tmp_path / "m.onnx")
    local = score_to_shards(model, tmp_path / "data", tmp_path / "local", rows_per_shard=10)
    result = CliRunner().invoke(app, ["score", str(model), str(tmp_path / "data"), "--out", str(tmp_path / "ray"),
                                      "--rows-per-shard", "10", "--backend", "ray", "--address", address,
                                      "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert read_all(tmp_path / "ray") == read_all(local.out)
