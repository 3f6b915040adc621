"""Ray, when the ``[ray]`` extra is installed: one session helper, and worker errors mapped back to ours.

Ray is never required: only code paths that the user asks to run on Ray (``--backend ray``)
import it, through :func:`ray_session`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from compress_gate.errors import CompressGateError, InputError, RuntimeFailure

__all__ = ["RAY_RETRIES", "require_ray", "ray_session"]

RAY_RETRIES = 3            # restarts of a dead actor / retries of a task whose worker died


def require_ray(what: str) -> Any:
    """The ``ray`` module; :class:`InputError` naming the ``[ray]`` extra when it is not installed."""
    try:
        import ray
    except ImportError as err:
        raise InputError(f"{what} on Ray (--backend ray) needs Ray, which is not installed. Install the "
                         "extra: pip install 'compress-gate[ray]' (or drop --backend ray to run in this "
                         "process).") from err
    return ray


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
    except CompressGateError:
        raise
    except Exception as err:  # Ray wraps what its workers raise: give back ours, else a runtime failure
        raise _unwrap(err, what) from err
    finally:
        if started:
            ray.shutdown()


def _unwrap(err: BaseException, what: str) -> CompressGateError:
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, CompressGateError):
            return type(seen)(str(seen))
        seen = getattr(seen, "cause", None) or seen.__cause__
    return RuntimeFailure(f"{what} failed on Ray after up to {RAY_RETRIES} retries per task ({err}).")
