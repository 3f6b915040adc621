"""``map_tasks``: one Ray task per item, results in item order, a killed worker retried to the same
result, an InputError of one item failing the job (not retried) with the item named and no task cancelled.

Skipped when Ray (the ``[ray]`` extra) is absent; slow (a local cluster of 2 CPUs for the module).
"""

from __future__ import annotations

import os
import time

import pytest

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra): Ray tests skipped")

from compress_gate.execution import map_tasks  # noqa: E402
from compress_gate.errors import EXIT_INPUT_ERROR, InputError, RuntimeFailure  # noqa: E402
from tests._ray_fixtures import (RefuseShard, WaitToBeKilled, killing_the_pid_in, local_cluster,  # noqa: E402
                                 refuse_or_sleep, shard_sum)

ITEMS = [5, 3, 8, 0, 13, 2]


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(num_cpus=2):
        yield


def test_results_come_back_in_item_order(cluster):
    assert map_tasks(shard_sum, ITEMS, address=None, what="test") == [shard_sum(i) for i in ITEMS]


def test_no_items_opens_no_session():
    assert map_tasks(shard_sum, [], address="127.0.0.1:1", what="test") == []   # no cluster there: not asked


def test_a_killed_worker_is_retried_and_the_result_is_identical(cluster, tmp_path):
    undisturbed = map_tasks(shard_sum, ITEMS, address=None, what="test")
    with killing_the_pid_in(tmp_path / "pid", timeout=60) as killed:    # the worker of item 8 writes it, then waits
        started = time.monotonic()
        result = map_tasks(WaitToBeKilled(tmp_path, victim=8), ITEMS, address=None, what="test")
    assert killed and killed[0] != os.getpid()
    retried = int((tmp_path / "retried").read_text())            # the retry ran in another process
    assert retried != killed[0]
    assert time.monotonic() - started < 60                        # not the victim's 60 s wait: it was killed
    assert result == undisturbed


def test_an_input_error_fails_the_job_with_the_item_named_and_is_not_retried(cluster, tmp_path):
    shards = ["part-0.npz", "part-1.npz", "part-2.npz"]
    with pytest.raises(InputError) as caught:
        map_tasks(RefuseShard(tmp_path, bad="part-1.npz"), shards, address=None, what="gate statistics")
    message = str(caught.value)
    assert message.startswith("gate statistics: task 2 of 3 (item 1: 'part-1.npz') failed: part-1.npz: not an npz")
    assert caught.value.exit_code == EXIT_INPUT_ERROR
    assert (tmp_path / "calls-part-1.npz").read_text() == "x"     # retry_exceptions=False: one call


def test_a_failed_job_cancels_no_task(cluster, monkeypatch):
    """ray.cancel racing a finishing task aborts the driver (ray-project/ray#54846): never called."""
    cancelled = []
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: cancelled.append(ref))
    with pytest.raises(InputError, match="item 0: 'bad'"):
        map_tasks(refuse_or_sleep, ["bad", "b", "c", "d"], address=None, what="test")   # b, c, d still running
    assert cancelled == []


def test_another_exception_is_a_runtime_failure(cluster):
    with pytest.raises(RuntimeFailure, match=r"^test: task 1 of 1 \(item 0: 'x'\) failed: test failed on Ray"):
        map_tasks(int, ["x"], address=None, what="test")
