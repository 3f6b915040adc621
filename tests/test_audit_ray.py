"""The audit's populations as Ray tasks: seeded and cached as the local default is.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (it trains 2 tiny model pairs).
Training is not bit-reproducible across processes even locally (two local runs of one seed
differ), so the check is that the Ray tasks write the cache the local default then reads.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from compress_gate.audit.population import obtain_populations  # noqa: E402
from compress_gate.config.audit import AuditConfig  # noqa: E402
from compress_gate.data.sources import load_dataset  # noqa: E402
from compress_gate.errors import InputError  # noqa: E402
from tests._ray_fixtures import local_cluster  # noqa: E402
from tests.test_audit import _tiny_recipe  # noqa: E402


def test_populations_trained_on_ray_are_the_ones_the_local_default_caches(tmp_path):
    audit = AuditConfig(population=2, top_k=8)
    config = _tiny_recipe(tmp_path, epochs=1)
    data = load_dataset(config.data, base_dir=config.output.parent)
    mask = data.mask(*audit.splits)
    with local_cluster(num_cpus=2):
        on_ray = obtain_populations(config, audit, data, mask, execution="ray")
    assert len(list((config.cache_dir / "audit").glob("*.npz"))) == 4      # one dense + one compressed per seed
    messages: list[str] = []
    local = obtain_populations(config, audit, data, mask, say=messages.append)
    assert sum("cached predictions" in m for m in messages) == 2          # nothing retrained
    for remote, here in zip(on_ray, local):
        assert remote.sources == here.sources == ("seed 0", "seed 1")
        assert remote.scores.shape == (2, int(mask.sum()), data.n_attributes)
        np.testing.assert_array_equal(remote.scores, here.scores)
    with pytest.raises(InputError, match="execution 'spark' is not known"):
        obtain_populations(config, audit, data, mask, execution="spark")
