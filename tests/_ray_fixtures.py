"""A scoring actor that kills its own worker once: imported by Ray workers by name, so it lives here."""

from __future__ import annotations

import os
import signal

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
