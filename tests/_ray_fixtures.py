"""Ray test helpers: a local cluster whose workers import this checkout, and a scoring actor that
kills its own worker once (Ray workers import it by name, so it lives in this module)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from compress_gate.pipeline.score import OrtScorer


class KillOnce(OrtScorer):
    """Kills its own worker process (SIGKILL) the first time it is given part 1; the flag file
    ``killed.flag`` beside the output directory records the pid it killed."""

    def __call__(self, batch):
        flag = self.out.parent / "killed.flag"
        if 1 in batch["index"].tolist() and not flag.exists():
            flag.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


@contextlib.contextmanager
def local_cluster(num_cpus: int = 2) -> Iterator[None]:
    """``ray.init(num_cpus=...)`` with this checkout first on the workers' PYTHONPATH; shut down after."""
    import ray

    root = str(Path(__file__).resolve().parents[1])
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([root] + ([saved] if saved else []))
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
