"""Errors that users read, and the exit codes ``cli.py`` maps them to.

Library code raises these; only ``cli.py`` turns them into exit codes:

====  ==================================================================
exit  meaning
====  ==================================================================
0     passed / released
1     the gate refused release: a limit failed, or none failed and a limit
      has not enough evidence (report.json's ``outcome`` says which; no
      separate code, so every "1 = refused" consumer stays right)
2     :class:`InputError`: a bad file, key or value (message, no traceback)
3     :class:`RuntimeFailure`: an engine crashed, out of memory; completed
      work stays on disk
====  ==================================================================
"""

from __future__ import annotations

__all__ = ["CompressGateError", "InputError", "RuntimeFailure", "EXIT_PASSED", "EXIT_REFUSED",
           "EXIT_INPUT_ERROR", "EXIT_RUNTIME_FAILURE"]

EXIT_PASSED = 0
EXIT_REFUSED = 1
EXIT_INPUT_ERROR = 2
EXIT_RUNTIME_FAILURE = 3


class CompressGateError(Exception):
    """Base class of the errors compress-gate reports to users."""

    exit_code: int = EXIT_RUNTIME_FAILURE


class InputError(CompressGateError, ValueError):
    """Bad input or configuration: the message names the file, the key and the fix."""

    exit_code = EXIT_INPUT_ERROR


class RuntimeFailure(CompressGateError, RuntimeError):
    """Something failed while running (an engine crash, out of memory).

    The message says what failed and what was kept on disk.
    """

    exit_code = EXIT_RUNTIME_FAILURE
