"""An httpx client whose connections are served by trasgi in memory.

httpx is an optional dependency (the ``testing`` extra): this module imports
it only when a client is opened, and says which extra to install when it is
missing, so that ``import trasgi.testing`` and its raw and WebSocket clients
work without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._io.shared import ServerShared
from trasgi._server.interfaces import as_asgi3
from trasgi._server.lifespan import lifespan

from ._memory import TEST_CLIENT, collapse_single_error

if TYPE_CHECKING:
    from ._httpx_client import TestClient

#: How to install what :func:`open_client` needs, from a checkout of trasgi.
TESTING_EXTRA = "pip install -e '.[testing]'"
#: The distributions the client is built on; one missing is the extra missing.
_CLIENT_PACKAGES = frozenset({"httpx", "httpcore"})


@asynccontextmanager
async def open_client(
    app: ASGIApp,
    *,
    config: Config | None = None,
    base_url: str = "http://testserver",
    client: tuple[str, int] = TEST_CLIENT,
    http2: bool = False,
    **client_options: Any,
) -> AsyncIterator[TestClient]:
    """Run ``app`` in trasgi and yield an httpx client connected to it in memory.

    The client is a :class:`TestClient`: its
    :meth:`~TestClient.websocket_connect` opens websockets that share its
    cookies and the lifespan state.

    Each connection the client opens is a :func:`trio.testing.memory_stream_pair`
    whose server end is handled by trasgi's real connection handler, so
    keep-alive, streaming in both directions, timeouts and errors behave as
    over a socket. A kept-alive connection that the server has closed is
    dropped before the next request, which opens a new one, as httpx does
    over a socket: before reusing one, the client waits until every task of
    the test's trio run is blocked (:func:`trio.testing.wait_all_tasks_blocked`),
    so that a server about to close it has done so. The lifespan protocol
    runs around the client's lifetime (``config.lifespan`` decides how).

    Args:
        app: The ASGI application under test.
        config: Server options; the defaults when omitted.
        base_url: Where relative URLs point; an ``https`` URL gives the
            application ``scheme == "https"``.
        client: The client address the application sees.
        http2: Speak HTTP/2 (with prior knowledge) instead of HTTP/1.1: the
            server's HTTP/2 connection serves the requests, many at once over
            one connection. Needs the ``h2`` package (httpx's ``http2``
            extra, which the ``testing`` extra installs).
        **client_options: Passed to :class:`httpx.AsyncClient` (headers,
            cookies, timeout, follow_redirects...).

    Error handling:
        :class:`ModuleNotFoundError` naming the ``testing`` extra (``pip
        install -e '.[testing]'`` from a checkout) when httpx is not
        installed. :class:`~trasgi.LifespanFailure` if the application's
        startup fails. Transport errors are raised as httpx's exceptions.

    Resource handling:
        On exit the client is closed, the lifespan shutdown runs and any
        connection still being served is cancelled.
    """
    with _missing_extra_named():
        from ._httpx_client import new_test_client
    config = config or Config()
    app = as_asgi3(app, config.interface)  # --interface, as the server does
    shared = ServerShared()
    options = {"base_url": base_url, **client_options}
    with collapse_single_error():
        async with (
            lifespan(app, config.lifespan, shared.state),
            trio.open_nursery() as nursery,
        ):
            async with new_test_client(
                app,
                config,
                shared,
                nursery,
                client=client,
                http2=http2,
                options=options,
            ) as http_client:
                yield http_client
            # Connections still being served (a streaming response the test
            # did not read to the end) end here, before the lifespan shutdown.
            nursery.cancel_scope.cancel()


def client_class() -> type[TestClient]:
    """:class:`TestClient`, imported on first use.

    Error handling:
        :class:`ModuleNotFoundError` naming the ``testing`` extra when httpx
        is not installed.
    """
    with _missing_extra_named():
        from ._httpx_client import TestClient

    return TestClient


@contextmanager
def _missing_extra_named() -> Iterator[None]:
    """Re-raise httpx (or httpcore) missing as the extra to install."""
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in _CLIENT_PACKAGES:
            raise
        message = (
            f"trasgi.testing.open_client needs httpx ({missing} is not "
            f"installed): install the testing extra, {TESTING_EXTRA}"
        )
        raise ModuleNotFoundError(message, name=exc.name) from exc
