"""DeepSparse compiled and run in a worker process, so that its aborts cannot kill the run.

DeepSparse can end the whole process on a failed C++ assertion (SIGABRT). Here the
engine lives in a child started with ``multiprocessing``'s *spawn* method; the
parent talks to it over a pipe (small messages pickled, input arrays sent as raw
bytes) and waits for every answer with a deadline, checking that the child is still
alive. A dead child becomes :class:`RuntimeFailure` naming the model and the signal;
a silent one is stopped after ``timeout_s`` and reported the same way. Never a hang.
The child never outlives the parent: closing the engine (also on SIGINT/SIGTERM, which
``run`` turns into an exception) terminates, kills and joins it, and on Linux the
kernel kills it when the parent dies (``PR_SET_PDEATHSIG``).

Protocol (parent -> worker): ``("run", shape, dtype)`` followed by the array bytes,
or ``("run", None, None)`` to rerun the array sent last; ``("close",)``. The worker
answers ``("ready", details)`` or ``("error", message)`` after compiling, then
``("ok", scores, seconds)`` or ``("error", message)`` per run, where ``seconds`` is
measured around the engine call inside the worker (no pipe time).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from compress_gate.engines._base import Engine, ModelInfo, default_num_threads, read_model_info
from compress_gate.errors import RuntimeFailure

__all__ = ["DeepSparseEngine", "WorkerProcess", "serve_requests"]

_POLL_S = 0.05
_JOIN_S = 5.0


class WorkerProcess:
    """A spawned child that serves requests over a pipe; every receive has a deadline.

    ``target(connection, *args)`` runs in the child. ``label`` names the model in
    every error message.
    """

    def __init__(self, target: Callable[..., None], args: tuple, *, label: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.label = label
        self._conn, child_conn = context.Pipe(duplex=True)
        self._process = context.Process(target=_worker_entry, args=(os.getpid(), target, child_conn, *args),
                                        daemon=True, name=f"compress-gate-worker[{label}]")
        self._process.start()
        child_conn.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def send(self, message: tuple, array: np.ndarray | None = None, *, doing: str) -> None:
        """Send ``message`` (and the raw bytes of a C-contiguous ``array``)."""
        try:
            self._conn.send(message)
            if array is not None:
                self._conn.send_bytes(array.reshape(-1).view(np.uint8))
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as err:
            raise self._death(doing) from err

    def receive(self, timeout_s: float, *, doing: str) -> tuple:
        """The worker's next answer; RuntimeFailure if it dies or is silent for ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop(graceful=False)
                raise RuntimeFailure(
                    f"{self.label}: the worker gave no answer within {timeout_s:g} s while {doing}, so it was "
                    "stopped. Pass a larger timeout_s for very large models, or use --engine onnxruntime."
                )
            if self._conn.poll(min(_POLL_S, remaining)):
                try:
                    return self._conn.recv()
                except (EOFError, ConnectionResetError, OSError) as err:
                    raise self._death(doing) from err
            if not self._process.is_alive():
                raise self._death(doing)

    def _death(self, doing: str) -> RuntimeFailure:
        self._process.join(_JOIN_S)
        code = self._process.exitcode
        if code is None:
            self.stop(graceful=False)
            how = "closed its pipe and stopped answering"
        elif code < 0:
            how = f"was killed by {_signal_name(-code)} (signal {-code})"
        else:
            how = f"exited with code {code}"
        return RuntimeFailure(
            f"{self.label}: the worker process {how} while {doing}. DeepSparse ends the process on C++ "
            "assertions it cannot recover from; the run continues only on another engine "
            "(--engine onnxruntime, or open_engine_with_fallback)."
        )

    def stop(self, *, graceful: bool = True) -> None:
        """Ask the child to close (if ``graceful``), then terminate and kill it (idempotent)."""
        if graceful and self._process.is_alive():
            try:
                self._conn.send(("close",))
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            self._process.join(_JOIN_S)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(_JOIN_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(_JOIN_S)
        self._conn.close()


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux ``PR_SET_PDEATHSIG``).

    A parent killed outright (SIGKILL) cannot stop its worker; with this guard the worker
    never outlives it, even mid-compile. If the parent is already gone, exit at once.
    Elsewhere than Linux the guard is skipped (the worker still exits on the pipe's EOF).
    The signal follows the *thread* that started the worker, so start workers from a
    thread that lives as long as the engine (the main thread, as compress-gate does).
    """
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


def _worker_entry(parent_pid: int, target: Callable[..., None], conn: Connection, *args: Any) -> None:
    """The child's entry point: the parent-death guard, then ``target(conn, *args)``."""
    _die_with_parent(parent_pid)
    target(conn, *args)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def serve_requests(conn: Connection, run: Callable[[np.ndarray], np.ndarray]) -> None:
    """Worker side of the protocol: answer ``run`` requests until ``close`` or EOF."""
    staged: np.ndarray | None = None
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "run":
            return
        _, shape, dtype = message
        if shape is not None:
            staged = np.frombuffer(conn.recv_bytes(), dtype=np.dtype(dtype)).reshape(shape)
        try:
            start = time.perf_counter()
            scores = run(staged)
            seconds = time.perf_counter() - start
            conn.send(("ok", np.asarray(scores, dtype=np.float32), seconds))
        except Exception as err:  # reported to the parent, which raises RuntimeFailure
            conn.send(("error", f"{type(err).__name__}: {err}"))


def _deepsparse_worker_main(conn: Connection, model_path: str, batch_size: int, num_cores: int,
                            output_index: int) -> None:
    """Compile ``model_path`` with DeepSparse, report ``ready``, then serve runs.

    The worker's stdout is pointed at stderr first, so DeepSparse's banner and logs
    never mix into a parent's machine-readable stdout (``bench --json``).
    """
    os.dup2(2, 1)
    os.environ["NM_DISABLE_ANALYTICS"] = "1"
    try:
        import deepsparse

        engine = deepsparse.compile_model(model_path, batch_size=batch_size, num_cores=num_cores)
        details: dict[str, Any] = {
            "version": deepsparse.__version__,
            "cpu_avx_type": engine.cpu_avx_type,
            "cpu_vnni": bool(engine.cpu_vnni),
            "fraction_of_supported_ops": float(engine.fraction_of_supported_ops),
            "num_cores": engine.num_cores,
        }
    except Exception as err:
        conn.send(("error", f"{type(err).__name__}: {err}"))
        return
    conn.send(("ready", details))
    serve_requests(conn, lambda batch: engine.run([batch], val_inp=False)[output_index])


class DeepSparseEngine(Engine):
    """DeepSparse (CPU) in a worker process; ``fixed_batch`` is true (DeepSparse compiles per batch size).

    ``timeout_s`` bounds the compile and every run; ``worker_target`` is the function
    the child runs (default: compile with DeepSparse and serve; a test passes one that
    aborts). ``details`` holds what DeepSparse reports (version, AVX type, VNNI,
    fraction of supported ops). Repeated ``time_run`` calls with the same read-only
    array send it once.
    """

    kind = "deepsparse"
    fixed_batch = True

    def __init__(self, model_path: str | os.PathLike[str] | ModelInfo, *, batch_size: int,
                 num_threads: int | None = None, timeout_s: float = 600.0,
                 worker_target: Callable[..., None] | None = None) -> None:
        self.info = read_model_info(model_path)
        self.batch_size = batch_size
        self.num_threads = num_threads or default_num_threads()
        self._timeout_s = timeout_s
        self._staged: np.ndarray | None = None
        target = worker_target if worker_target is not None else _deepsparse_worker_main
        self._worker = WorkerProcess(
            target, (str(self.model_path), batch_size, self.num_threads, self.info.output_index),
            label=f"DeepSparse on {self.model_path}",
        )
        try:
            reply = self._worker.receive(timeout_s, doing="compiling the model")
        except BaseException:  # a failure, or SIGINT/SIGTERM mid-compile: never leave the worker running
            self._worker.stop(graceful=False)
            raise
        if reply[0] != "ready":
            self._worker.stop()
            raise RuntimeFailure(f"DeepSparse could not compile {self.model_path}: {reply[1]}")
        self.details: dict[str, Any] = reply[1]

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, float]:
        if self._worker is None:
            raise RuntimeFailure(f"{self!r} is closed; open a new engine.")
        reuse = batch is self._staged and not batch.flags.writeable
        doing = f"running a batch of {batch.shape[0]}"
        if reuse:
            self._worker.send(("run", None, None), doing=doing)
        else:
            self._worker.send(("run", batch.shape, batch.dtype.str), batch, doing=doing)
            self._staged = None if batch.flags.writeable else batch
        reply = self._worker.receive(self._timeout_s, doing=doing)
        if reply[0] != "ok":
            raise RuntimeFailure(f"DeepSparse failed running {self.model_path}: {reply[1]}")
        return reply[1].reshape(reply[1].shape[0], -1), float(reply[2])

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
            self._staged = None
