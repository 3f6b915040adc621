"""Where work runs, the *execution*: ``local`` (this process) or ``ray`` (Ray tasks, the ``[ray]`` extra).

"Execution" is its own word: a *compression backend* (:mod:`compress_gate.compress.backend`)
is what compresses a model, never where work runs. :data:`Execution` is the typed choice and
:func:`check_execution` its one check; ``--execution`` on the commands (``--backend`` is its old
name, still accepted). Ray is never required: only code paths that the user asks to run on Ray
import it, through :func:`ray_session` (and :func:`map_tasks`, which opens one).
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from compress_gate._signals import Interrupted
from compress_gate.errors import CompressGateError, InputError, RuntimeFailure

__all__ = ["RAY_RETRIES", "CONNECT_TIMEOUT_S", "Execution", "EXECUTIONS", "check_execution", "check_address",
           "require_ray", "ray_session", "map_tasks"]

RAY_RETRIES = 3            # restarts of a dead actor / retries of a task whose worker died
CONNECT_TIMEOUT_S = 10.0   # a cluster address that accepts no connection in this time is refused
Execution = Literal["local", "ray"]
EXECUTIONS: tuple[Execution, ...] = ("local", "ray")
T = TypeVar("T")
R = TypeVar("R")


def require_ray(what: str) -> Any:
    """The ``ray`` module; :class:`InputError` naming the ``[ray]`` extra when it is not installed."""
    try:
        import ray
    except ImportError as err:
        raise InputError(f"{what} on Ray (--execution ray) needs Ray, which is not installed. Install the "
                         "extra: pip install 'compress-gate[ray]' (or drop --execution ray to run in this "
                         "process).") from err
    return ray


def check_execution(execution: str, *, what: str, address: str | None = None) -> Execution:
    """``execution`` as the typed :data:`Execution` when it is one of :data:`EXECUTIONS` (and, for
    ``"ray"``, Ray is installed and ``address``, when given, answers: :func:`check_address`). The
    one check of every command's ``--execution`` and ``--address``, made before anything is written.

    Raises
    ------
    InputError
        An unknown execution (the known ones are listed), ``"ray"`` without the ``[ray]`` extra,
        an ``address`` with another execution than ``"ray"`` (it would be ignored), or an address
        that is malformed or where nothing answers.
    """
    if execution not in EXECUTIONS:
        raise InputError(f"--execution {execution!r} is not known. It should be one of {list(EXECUTIONS)}: "
                         "'local' (this process, the default) or 'ray' (Ray tasks, with the [ray] extra). "
                         "--backend is the old name of --execution and still works.")
    if address is not None and execution != "ray":
        raise InputError(f"--address {address!r} names a Ray cluster, but the execution is {execution!r}, which "
                         "would ignore it. Add --execution ray to run there, or drop --address.")
    if execution == "ray":
        require_ray(what)
        _check_target(address)
    return execution  # type: ignore[return-value]


def _check_target(address: str | None) -> None:
    """:func:`check_address` on the cluster ``ray.init`` would join: ``address``, else ``RAY_ADDRESS``."""
    if address is not None:
        check_address(address)
    elif os.environ.get("RAY_ADDRESS"):
        check_address(os.environ["RAY_ADDRESS"], source="RAY_ADDRESS")


def check_address(address: str, *, source: str = "--address") -> None:
    """Raise unless ``address`` is a Ray cluster address that accepts a TCP connection within
    :data:`CONNECT_TIMEOUT_S` (``ray.init`` itself waits on a silent address forever).

    ``HOST:PORT`` or ``ray://HOST:PORT`` (an IPv6 host in brackets) is probed; ``auto`` and
    ``local`` are left to Ray, which answers them at once. ``source`` names where the address
    came from in the message (``--address``, or ``RAY_ADDRESS``, which ``ray.init`` reads when
    no address is given). Only a connection is opened and
    closed: nothing is sent.

    Raises
    ------
    InputError
        A malformed address, or one where no connection opens in time (refused, unreachable,
        unknown host, timed out), naming the address and the fix.
    """
    if address in ("auto", "local"):
        return
    drop = "drop --address" if source == "--address" else f"unset {source}"
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{source} {address!r} is not a Ray cluster address. Give HOST:PORT (the head node's "
                         "port that `ray start --head` prints, 6379 by default), ray://HOST:PORT for Ray Client, "
                         f"or 'auto' for the cluster started on this machine; or {drop}.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
        raise InputError(f"{source} {address!r}: no Ray cluster answers there (a connection to {host}:{port} "
                         f"failed within {CONNECT_TIMEOUT_S:g} s: {reason}). Check the host and port, start a "
                         f"cluster there with `ray start --head`, or {drop} to start a local one.") from err


@contextlib.contextmanager
def ray_session(address: str | None, *, what: str) -> Iterator[Any]:
    """Yield the ``ray`` module with a connected session; errors inside become ours.

    Joins the cluster at ``address``, or starts a local one when no session is open
    (an open session, e.g. a test's ``ray.init(num_cpus=2)``, is used as it is); a
    session started here is shut down on exit. An :class:`InputError` or
    :class:`RuntimeFailure` raised in a worker comes back as itself; any other failure of
    the job is a :class:`RuntimeFailure` naming ``what``.

    A SIGTERM handler of this process's own is kept (:func:`_init`), so SIGTERM raises
    :class:`~compress_gate._signals.Interrupted` here and the session is shut down on the way out.

    Raises
    ------
    InputError
        Ray is not installed, or no cluster answers at ``address`` (:func:`check_address`).
    """
    ray = require_ray(what)
    started = not ray.is_initialized()
    if started:
        _check_target(address)
        _init(ray, address)
    try:
        yield ray
    except Exception as err:  # Ray wraps what its workers raise: give back ours, else a runtime failure
        if isinstance(err, CompressGateError) and not _wraps(err):
            raise
        raise _unwrap(err, what) from err
    finally:
        if started:
            ray.shutdown()


def _init(ray: Any, address: str | None) -> None:
    """``ray.init``, keeping this process's SIGTERM handler when it has one of its own (the CLI's,
    :func:`~compress_gate._signals.terminate_as_interrupt`). Ray replaces it with ``sys.exit(15)``,
    which skips the CLI's interrupt handling (exit 15, not 143 with its message); a SIGTERM during
    the start itself is that ``SystemExit``, turned into :class:`~compress_gate._signals.Interrupted`
    after the half-started session is shut down."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except SystemExit as err:
        if err.code != signal.SIGTERM:
            raise
        ray.shutdown()
        raise Interrupted(signal.SIGTERM) from None
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise InputError(f"--address {address!r}: cannot reach a Ray cluster there ({err}). Start one "
                         "with `ray start --head`, or drop --address to start a local one.") from err
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


def map_tasks(fn: Callable[[T], R], items: Sequence[T], *, address: str | None, what: str,
              num_cpus_per_task: float = 1,
              resources: Callable[[T], Mapping[str, float]] | None = None) -> list[R]:
    """``[fn(item) for item in items]``, computed as one Ray task per item; results in item order.

    Each task asks for ``num_cpus_per_task`` CPUs (and ``resources(item)``, custom resources
    that pin it to the nodes offering them, e.g. ``{"node2": 1}``). A task whose worker
    process dies is retried up to :data:`RAY_RETRIES` times (``max_retries``); an exception
    that ``fn`` raises is never retried (``retry_exceptions=False``): an :class:`InputError`
    is as bad the second time. ``fn`` and the items must pickle (``fn`` is stored once in
    the object store), and a retried ``fn(item)`` must give the same result, so a job's
    result does not depend on which worker died.

    The job stops at the first failed task. The others are not cancelled: Ray's
    ``ray.cancel`` can abort this process (exit 1, no traceback) when it races a task that is
    finishing (ray-project/ray#54846; ``RAY_CHECK ... Tried to complete task that was not
    pending``, seen with Ray 2.60). They finish and their results are dropped; a session that
    this call started is shut down, which stops them. Its error comes back as
    :func:`ray_session` maps it (ours as ours, anything else a
    :class:`RuntimeFailure`), prefixed with ``what`` and the failed item's index and
    short ``repr``. No items: no Ray session is opened, ``[]``. Every result is held in the
    returned list, so for many large results give each task a group of items whose results
    it adds (docs/scaling.md: bytes moved per merge).

    Raises
    ------
    InputError
        Ray is not installed, no cluster answers at ``address``, or ``fn`` raised one.
    RuntimeFailure
        ``fn`` raised anything else, or a task's worker died more than RAY_RETRIES times.
    """
    if not items:
        return []
    with ray_session(address, what=what) as ray:
        call, fn_ref = ray.remote(_call), ray.put(fn)
        options = {"num_cpus": num_cpus_per_task, "max_retries": RAY_RETRIES, "retry_exceptions": False}
        refs = [call.options(**options, resources=dict(resources(item)) if resources else None).remote(fn_ref, item)
                for item in items]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:        # whatever finished within a second: one wait per second, not per task
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
            for ref in done:
                i = index[ref]
                try:
                    results[i] = ray.get(ref)
                except Exception as err:  # noqa: BLE001 - Ray's wrappers of the worker's error
                    cause = _unwrap(err, what)
                    raise type(cause)(f"{what}: task {i + 1} of {len(refs)} (item {i}: "
                                      f"{reprlib.repr(items[i])}) failed: {cause}") from err
        return results


def _call(fn: Callable[[T], R], item: T) -> R:
    """The body of a :func:`map_tasks` task (Ray resolves ``fn`` from its object reference)."""
    return fn(item)


def _wraps(err: BaseException) -> bool:
    """Whether ``err`` is Ray's wrapper of a worker's exception (a ``RayTaskError``, whose class Ray
    derives from the cause's class too, and whose message is the worker's traceback)."""
    return isinstance(getattr(err, "cause", None), BaseException)


def _unwrap(err: BaseException, what: str) -> CompressGateError:
    """Ours (with its own message) when ``err`` wraps one of our errors, else a :class:`RuntimeFailure`."""
    seen: BaseException | None = err
    while seen is not None:
        if _wraps(seen):
            seen = seen.cause
        elif isinstance(seen, CompressGateError):
            return type(seen)(str(seen))
        else:
            seen = seen.__cause__
    return RuntimeFailure(f"{what} failed on Ray ({err}); a task whose worker died was retried up to "
                          f"{RAY_RETRIES} times.")
