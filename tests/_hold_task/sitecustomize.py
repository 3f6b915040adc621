"""Test-only: hold the sharded gate's first statistics task so a test can kill its worker.

Python imports ``sitecustomize`` at the start of every process whose path holds this folder, so
a test that puts it first on ``PYTHONPATH`` and sets ``COMPRESS_GATE_TEST_HOLD_TASK`` to a folder
(``tests._ray_fixtures.holding_the_first_task``) reaches the Ray workers it starts, which
monkeypatch cannot. In them the body of a statistics task
(``compress_gate.gate._sharded._summed``) is wrapped: the first task to create
``<folder>/claimed`` writes its worker's pid to ``<folder>/pid`` and sleeps 60 s before computing;
every other task, and the retry, computes at once. Nothing of this is in the package.
"""

import os
import time

_FOLDER = os.environ.get("COMPRESS_GATE_TEST_HOLD_TASK")


def _hold(folder: str) -> None:
    try:
        os.close(os.open(os.path.join(folder, "claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    with open(os.path.join(folder, ".pid.tmp"), "w", encoding="utf-8") as tmp:
        tmp.write(str(os.getpid()))
    os.replace(os.path.join(folder, ".pid.tmp"), os.path.join(folder, "pid"))
    time.sleep(60)


if _FOLDER:
    from compress_gate.gate import _sharded

    _summed = _sharded._summed

    def _held_summed(fn, sources):
        _hold(_FOLDER)
        return _summed(fn, sources)

    _sharded._summed = _held_summed
