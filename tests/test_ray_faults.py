"""Faults of a Ray job that need no Ray to check: a task killed while it writes an audit cache file
leaves nothing that looks complete, so the retried task (or the next audit) computes it again."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from compress_gate.data.contract import load_predictions, save_predictions


def test_a_writer_killed_mid_write_leaves_no_complete_looking_cache_file(tmp_path):
    target = tmp_path / "audit" / "dense-0123456789abcdef01234567.npz"
    # The worker dies (os._exit, as SIGKILL: no cleanup runs) after half the archive is on disk.
    code = ("import os, sys, numpy as np\n"
            "from compress_gate.data import contract\n"
            "def dying_savez(handle, **columns):\n"
            "    handle.write(b'PK\\x03\\x04' + b'half' * 100); handle.flush(); os._exit(9)\n"
            "np.savez = dying_savez\n"
            "contract.save_predictions(sys.argv[1], np.array(['a', 'b']), np.zeros((2, 3), np.float32))\n")
    died = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert died.returncode == 9, died.stderr
    assert not target.exists()                                       # the cache lookup's exact name
    leftovers = [p.name for p in target.parent.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".") and leftovers[0].endswith(".tmp.npz")
    # the retry writes the same name whole, beside the leftover, and reads back
    save_predictions(target, np.array(["a", "b"]), np.ones((2, 3), np.float32))
    np.testing.assert_array_equal(load_predictions(target).scores, np.ones((2, 3), np.float32))
