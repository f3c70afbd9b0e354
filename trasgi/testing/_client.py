"""An httpx client whose connections are served by trasgi in memory."""

from __future__ import annotations

import contextlib
import itertools
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpcore
import httpx
import trio
import trio.testing

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._protocol.scope import ConnectionInfo
from trasgi._server.interfaces import as_asgi3
from trasgi._server.lifespan import lifespan

from ._memory import TEST_CLIENT, collapse_single_error
from ._websocket import HeadersLike, WebSocketClient, open_websocket


class TestClient(httpx.AsyncClient):
    """The httpx client :func:`open_client` yields, able to open websockets too.

    Its websockets reach the same application with the same lifespan state
    and carry the client's cookies, so a test logs in over HTTP and then
    opens a websocket as that user.
    """

    # Not a test class, though its name starts with "Test".
    __test__ = False

    def __init__(
        self,
        *,
        app: ASGIApp,
        config: Config,
        state: dict[str, Any],
        client: tuple[str, int],
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._served_app = app
        self._server_config = config
        self._lifespan_state = state
        self._client_address = client

    def websocket_connect(
        self,
        path: str = "/",
        *,
        subprotocols: Iterable[str] = (),
        headers: HeadersLike = (),
        compression: bool = True,
    ) -> AbstractAsyncContextManager[WebSocketClient]:
        """Open a websocket with :func:`open_websocket`, as this client.

        The ``Cookie`` header holds the cookies of this client's jar (those
        for its base URL's host); the lifespan that :func:`open_client` ran
        provides the state.
        """
        host = self.base_url.host
        cookies = {
            cookie.name: cookie.value or ""
            for cookie in self.cookies.jar
            # No domain: set by hand with client.cookies.set(name, value).
            if not cookie.domain or cookie.domain.lstrip(".") in (host, f"{host}.local")
        }
        return open_websocket(
            self._served_app,
            path,
            subprotocols=subprotocols,
            headers=headers,
            cookies=cookies,
            compression=compression,
            config=self._server_config,
            state=self._lifespan_state,
            client=self._client_address,
        )


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
    over a socket. The lifespan protocol runs around the client's lifetime
    (``config.lifespan`` decides how).

    Args:
        app: The ASGI application under test.
        config: Server options; the defaults when omitted.
        base_url: Where relative URLs point; an ``https`` URL gives the
            application ``scheme == "https"``.
        client: The client address the application sees.
        http2: Speak HTTP/2 (with prior knowledge) instead of HTTP/1.1: the
            server's HTTP/2 connection serves the requests, many at once over
            one connection. Needs the ``h2`` package (httpx's ``http2``
            extra, which ``trasgi[testing]`` installs).
        **client_options: Passed to :class:`httpx.AsyncClient` (headers,
            cookies, timeout, follow_redirects...).

    Error handling:
        :class:`~trasgi.LifespanFailure` if the application's startup fails.
        Transport errors are raised as httpx's exceptions.

    Resource handling:
        On exit the client is closed, the lifespan shutdown runs and any
        connection still being served is cancelled.
    """
    config = config or Config()
    app = as_asgi3(app, config.interface)  # --interface, as the server does
    shared = ServerShared()
    with collapse_single_error():
        async with (
            lifespan(app, config.lifespan, shared.state),
            trio.open_nursery() as nursery,
        ):
            backend = _MemoryBackend(app, config, shared, nursery, client)
            pool = httpcore.AsyncConnectionPool(
                network_backend=backend, http1=not http2, http2=http2
            )
            async with TestClient(
                app=app,
                config=config,
                state=shared.state,
                client=client,
                transport=_MemoryTransport(pool),
                base_url=base_url,
                **client_options,
            ) as http_client:
                yield http_client
            # Connections still being served (a streaming response the test
            # did not read to the end) end here, before the lifespan shutdown.
            nursery.cancel_scope.cancel()


class _MemoryBackend(httpcore.AsyncNetworkBackend):
    """Makes a served in-memory stream wherever httpcore would open a socket."""

    def __init__(
        self,
        app: ASGIApp,
        config: Config,
        shared: ServerShared,
        nursery: trio.Nursery,
        client: tuple[str, int],
    ) -> None:
        self._app = app
        self._config = config
        self._shared = shared
        self._nursery = nursery
        self._client = client
        self._ports = itertools.count(client[1])

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        client_end, server_end = trio.testing.memory_stream_pair()
        info = ConnectionInfo(
            client=(self._client[0], next(self._ports)), server=(host, port)
        )
        return _MemoryStream(client_end, server_end, self, info)

    def serve(self, stream: trio.abc.Stream, info: ConnectionInfo) -> None:
        self._nursery.start_soon(
            handle_connection, stream, self._app, self._config, info, self._shared
        )

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class _MemoryStream(httpcore.AsyncNetworkStream):
    """httpcore's view of the client end; the server starts on first use.

    Starting lazily lets ``start_tls`` (for an ``https`` base URL) mark the
    connection as https before the server computes its scopes.
    """

    def __init__(
        self,
        client_end: trio.abc.Stream,
        server_end: trio.abc.Stream,
        backend: _MemoryBackend,
        info: ConnectionInfo,
    ) -> None:
        self._stream = client_end
        self._server_end = server_end
        self._backend = backend
        self._info = info
        self._started = False

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._backend.serve(self._server_end, self._info)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._start()
        with trio.move_on_after(_seconds(timeout)) as scope:
            try:
                return bytes(await self._stream.receive_some(max_bytes))
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise httpcore.ReadError(str(exc)) from exc
        assert scope.cancelled_caught
        raise httpcore.ReadTimeout("the server did not answer in time")

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._start()
        with trio.move_on_after(_seconds(timeout)):
            try:
                await self._stream.send_all(buffer)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise httpcore.WriteError(str(exc)) from exc
            return
        raise httpcore.WriteTimeout("the server did not read in time")

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self._stream)
        if not self._started:
            await trio.aclose_forcefully(self._server_end)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # No encryption in memory: only the scope's scheme changes.
        self._info = ConnectionInfo(
            client=self._info.client, server=self._info.server, scheme="https"
        )
        return self

    def get_extra_info(self, info: str) -> Any:
        return None


def _seconds(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout


class _MemoryTransport(httpx.AsyncBaseTransport):
    """Adapts httpx requests to the httpcore pool over in-memory streams."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=_as_async_iterable(request.stream),
            extensions=request.extensions,
        )
        with _httpx_errors(request):
            core_response = await self._pool.handle_async_request(core_request)
        assert isinstance(core_response.stream, AsyncIterable)
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream, request),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _as_async_iterable(stream: Any) -> AsyncIterable[bytes]:
    assert isinstance(stream, AsyncIterable)
    return stream


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors(self._request):
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


@contextlib.contextmanager
def _httpx_errors(request: httpx.Request) -> Iterator[None]:
    """Re-raise httpcore's exceptions as httpx's, as httpx's own transport does."""
    try:
        yield
    except Exception as exc:
        if not type(exc).__module__.startswith("httpcore"):
            raise
        replacement = getattr(httpx, type(exc).__name__, httpx.TransportError)
        raise replacement(str(exc), request=request) from exc
