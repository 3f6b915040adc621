"""``gate --backend ray``: one Ray task per shard, the same report.json as the local streaming gate.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (a local cluster with 2 CPUs, started
and shut down by the test: about 25 s). A bad shard is refused before any task starts
(``open_shards``), so tests/test_gate_shards.py covers it for both backends.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from tests._ray_fixtures import local_cluster  # noqa: E402
from tests import test_gate_shards as local_tests  # noqa: E402
from tests.test_gate_shards import _gate, _report, _write  # noqa: E402

models = local_tests.models                    # the fixture: the data and the models' scores


def test_ray_tasks_give_the_local_report_bit_for_bit(tmp_path, models):
    dirs = _write(tmp_path / "in", models, 5, 3, seed=7)
    local, local_out = _gate(tmp_path, dirs, "local")
    with local_cluster(num_cpus=2):
        on_ray, ray_out = _gate(tmp_path, dirs, "ray", "--backend", "ray")
    assert local.exit_code == on_ray.exit_code and local.exit_code in (0, 1), on_ray.output
    assert _report(ray_out) == _report(local_out)
    assert (ray_out / "overrides.json").read_text() == (local_out / "overrides.json").read_text()

