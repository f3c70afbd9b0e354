"""One in-memory connection served by the real connection handler."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import trio
import trio.testing

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._protocol.scope import ConnectionInfo
from trasgi._server.interfaces import as_asgi3

StreamPair = tuple[trio.abc.Stream, trio.abc.Stream]

#: The client address tests see unless they choose one (as Starlette's TestClient).
TEST_CLIENT = ("testclient", 50000)
#: The server address tests see unless they choose one.
TEST_SERVER = ("testserver", 80)


@asynccontextmanager
async def open_connection(
    app: ASGIApp,
    *,
    config: Config | None = None,
    info: ConnectionInfo | None = None,
    state: dict[str, Any] | None = None,
    stream_pair: Callable[[], StreamPair] = trio.testing.memory_stream_pair,
) -> AsyncIterator[trio.abc.Stream]:
    """Open one connection to ``app`` served by trasgi; yield the client's end.

    Write request bytes to the yielded stream and read the response bytes
    from it. No lifespan runs: pass ``state`` to set what requests see.

    Args:
        app: The ASGI application.
        config: Server options (timeouts, limits); the defaults when omitted.
        info: Client, server and scheme for the scope.
        state: The lifespan state copied into each request's scope.
        stream_pair: Makes the (client, server) pair; use
            :func:`trio.testing.lockstep_stream_pair` to make every write wait
            for the reader, or wrap streams to split or slow bytes.

    Resource handling:
        On exit the client stream is closed and the server task is cancelled
        if it has not finished.
    """
    app = as_asgi3(app, (config or Config()).interface)  # as the server does
    client, server = stream_pair()
    shared = ServerShared(state=state if state is not None else {})
    info = info or ConnectionInfo(client=TEST_CLIENT, server=TEST_SERVER)
    with collapse_single_error():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                handle_connection, server, app, config or Config(), info, shared
            )
            try:
                yield client
            finally:
                await trio.aclose_forcefully(client)
                nursery.cancel_scope.cancel()


@contextmanager
def collapse_single_error() -> Iterator[None]:
    """Re-raise a lone exception from the test's body as itself.

    The helpers hold a nursery open around the test's code, so trio would
    wrap a failing ``assert`` in an exception group; a test author wants the
    ``AssertionError`` itself. Groups of several exceptions stay groups.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        error: BaseException = group
        while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
            error = error.exceptions[0]
        if error is group:
            raise
        raise error from None
