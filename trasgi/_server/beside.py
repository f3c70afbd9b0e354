"""Helper tasks that run beside a block of code and end with it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio


@contextlib.asynccontextmanager
async def tasks_beside() -> AsyncIterator[trio.Nursery]:
    """A nursery for helper tasks beside the body, cancelled when the body ends.

    For services that live exactly as long as a block: the metrics listener,
    the systemd watchdog, the signal watcher of :func:`trasgi.run`.

    Error handling:
        An exception of the body, ``Cancelled`` included, leaves as itself
        rather than inside an exception group, so that callers catch it by
        its type. An exception of a helper task propagates as trio's nursery
        raises it.

    Resource handling:
        The helpers are cancelled, and have finished, before this returns.
    """
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            yield nursery
        except BaseException as exc:  # re-raised below, Cancelled included
            failure = exc
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
