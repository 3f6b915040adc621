"""Where work runs, the *execution*: ``local`` (this process) or ``ray`` (Ray tasks, the ``[ray]`` extra).

"Execution" is its own word: a *compression backend* (:mod:`compress_gate.compress.backend`)
is what compresses a model, never where work runs. :data:`Execution` is the typed choice and
:func:`check_execution` its one check; ``--execution`` on the commands (``--backend`` is its old
name, still accepted). Ray is never required: only code paths that the user asks to run on Ray
import it, through :func:`ray_session` (and :func:`map_tasks`, which opens one).
"""

from __future__ import annotations

import contextlib
import reprlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from compress_gate.errors import CompressGateError, InputError, RuntimeFailure

__all__ = ["RAY_RETRIES", "Execution", "EXECUTIONS", "check_execution", "require_ray", "ray_session",
           "map_tasks"]

RAY_RETRIES = 3            # restarts of a dead actor / retries of a task whose worker died
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


def check_execution(execution: str, *, what: str) -> Execution:
    """``execution`` as the typed :data:`Execution` when it is one of :data:`EXECUTIONS` (and, for
    ``"ray"``, Ray is installed). The one check of every command's ``--execution``.

    Raises
    ------
    InputError
        An unknown execution (the known ones are listed), or ``"ray"`` without the ``[ray]`` extra.
    """
    if execution not in EXECUTIONS:
        raise InputError(f"--execution {execution!r} is not known. It should be one of {list(EXECUTIONS)}: "
                         "'local' (this process, the default) or 'ray' (Ray tasks, with the [ray] extra). "
                         "--backend is the old name of --execution and still works.")
    if execution == "ray":
        require_ray(what)
    return execution  # type: ignore[return-value]


@contextlib.contextmanager
def ray_session(address: str | None, *, what: str) -> Iterator[Any]:
    """Yield the ``ray`` module with a connected session; errors inside become ours.

    Joins the cluster at ``address``, or starts a local one when no session is open
    (an open session, e.g. a test's ``ray.init(num_cpus=2)``, is used as it is); a
    session started here is shut down on exit. An :class:`InputError` or
    :class:`RuntimeFailure` raised in a worker comes back as itself; any other failure of
    the job is a :class:`RuntimeFailure` naming ``what``.

    Raises
    ------
    InputError
        Ray is not installed, or no cluster answers at ``address``.
    """
    ray = require_ray(what)
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise InputError(f"--address {address!r}: cannot reach a Ray cluster there ({err}). Start one "
                             "with `ray start --head`, or drop --address to start a local one.") from err
    try:
        yield ray
    except Exception as err:  # Ray wraps what its workers raise: give back ours, else a runtime failure
        if isinstance(err, CompressGateError) and not _wraps(err):
            raise
        raise _unwrap(err, what) from err
    finally:
        if started:
            ray.shutdown()


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
