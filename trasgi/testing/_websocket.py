"""An in-memory WebSocket client, served by trasgi's real connection handler.

The client speaks wsproto over one end of a :func:`trio.testing.memory_stream_pair`;
trasgi serves the other end exactly as it serves a socket, handshake
included. It answers pings while it reads, as browsers do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._protocol.scope import ConnectionInfo
from trasgi._server.interfaces import as_asgi3
from trasgi._server.lifespan import lifespan as run_lifespan

from ._memory import TEST_CLIENT, TEST_SERVER, StreamPair, collapse_single_error

#: How long leaving :func:`open_websocket` waits for the closing handshake and
#: for the server to finish before cancelling it: an application that ignores
#: ``websocket.disconnect`` must not hang the test run.
EXIT_TIMEOUT = 5.0
_READ_SIZE = 64 * 1024

#: Request headers as a mapping, or as ``(name, value)`` pairs of str or bytes.
HeadersLike = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


def encode_headers(headers: HeadersLike) -> list[tuple[bytes, bytes]]:
    """Headers as the ``(name, value)`` bytes pairs wsproto sends.

    Error handling:
        ``TypeError`` for an item that is not a pair of str or bytes.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    encoded = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise TypeError(
                f"websocket headers must be a mapping or (name, value) pairs, "
                f"not {item!r}"
            )
        encoded.append((_as_bytes(item[0]), _as_bytes(item[1])))
    return encoded


def _as_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    if isinstance(text, str):
        # Field values are ISO-8859-1 on the wire (RFC 9110 section 5.5).
        return text.encode("latin-1")
    raise TypeError(f"a header name or value must be str or bytes, not {text!r}")


def cookie_header(cookies: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """A ``Cookie`` request header for ``cookies`` (RFC 6265 section 5.4), if any."""
    if not cookies:
        return []
    pairs = "; ".join(f"{name}={value}" for name, value in cookies.items())
    return [(b"cookie", pairs.encode("latin-1"))]


class WebSocketDenied(Exception):
    """The server answered the handshake with an HTTP response, not a 101.

    Attributes:
        status_code: The response status (403 for a close before the accept).
        headers: The response headers, names lower-cased.
        body: The complete response body.
    """

    def __init__(
        self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        super().__init__(f"websocket handshake denied with HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body


class WebSocketClosed(Exception):
    """The websocket is closed; ``code`` and ``reason`` are the server's.

    ``code`` is 1005 when the server's close frame carried no code, and 1006
    when the connection ended without a close frame (RFC 6455 section 7.1.5).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"websocket closed with code {code} {reason!r}")
        self.code = code
        self.reason = reason


class WebSocketClient:
    """The client end of one in-memory websocket.

    Attributes:
        subprotocol: The subprotocol the server chose, or ``None``.
        extensions: Names of the negotiated extensions
            (``["permessage-deflate"]`` when compression was agreed).
        headers: The other headers of the server's 101 response.
        close_code: The server's close code once the websocket is closed.
        close_reason: The server's close reason once the websocket is closed.
    """

    def __init__(
        self, stream: trio.abc.Stream, ws: WSConnection, accept: AcceptConnection
    ) -> None:
        self._stream = stream
        self._ws = ws
        self.subprotocol = accept.subprotocol
        self.extensions = [extension.name for extension in accept.extensions]
        self.headers = list(accept.extra_headers)
        self.close_code: int | None = None
        self.close_reason: str | None = None

    async def send_text(self, text: str) -> None:
        """Send a text message."""
        await self._send(TextMessage(data=text))

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self._send(BytesMessage(data=data))

    async def receive(self) -> str | bytes:
        """Wait for the next message: ``str`` for text, ``bytes`` for binary.

        Error handling:
            Raises :class:`WebSocketClosed` once the server closed the
            websocket (after answering its close frame).
        """
        text: list[str] = []
        data = bytearray()
        while True:
            event = await self._next_event()
            if isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    return "".join(text)
            elif isinstance(event, BytesMessage):
                data += event.data
                if event.message_finished:
                    return bytes(data)

    async def receive_text(self) -> str:
        """Wait for the next message, which must be text.

        Error handling:
            Raises :class:`TypeError` for a binary message, and
            :class:`WebSocketClosed` as :meth:`receive` does.
        """
        message = await self.receive()
        if not isinstance(message, str):
            raise TypeError(f"expected a text message, got bytes {message[:40]!r}")
        return message

    async def receive_bytes(self) -> bytes:
        """Wait for the next message, which must be binary.

        Error handling:
            Raises :class:`TypeError` for a text message, and
            :class:`WebSocketClosed` as :meth:`receive` does.
        """
        message = await self.receive()
        if not isinstance(message, bytes):
            raise TypeError(f"expected a binary message, got text {message[:40]!r}")
        return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the websocket and wait for the server's close frame.

        Messages still arriving before that close frame are discarded; the
        server's answer is then in :attr:`close_code` and :attr:`close_reason`.
        Does nothing when the websocket is already closed.
        """
        if self._ws.state is not ConnectionState.OPEN:
            return
        await self._send(CloseConnection(code=code, reason=reason))
        try:
            while True:
                await self._next_event()
        except WebSocketClosed:
            pass

    @property
    def closed(self) -> bool:
        """Whether the closing handshake is over (or the stream ended)."""
        return self.close_code is not None

    async def _send(self, event: Event) -> None:
        if self.closed:
            raise WebSocketClosed(self.close_code or 1006, self.close_reason or "")
        await self._stream.send_all(self._ws.send(event))

    async def _next_event(self) -> Event:
        """The next data event; pings are answered, a close frame raises."""
        while True:
            for event in self._ws.events():
                if isinstance(event, Ping):
                    if self._ws.state is ConnectionState.OPEN:
                        await self._answer(event.response())
                elif isinstance(event, CloseConnection):
                    await self._on_close(event)
                else:
                    return event
            if self.closed:
                raise WebSocketClosed(self.close_code or 1006, self.close_reason or "")
            self._ws.receive_data(await _read(self._stream) or None)

    async def _answer(self, event: Event) -> None:
        """Send a pong or a close reply; a server that hung up needs neither."""
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._stream.send_all(self._ws.send(event))

    async def _on_close(self, event: CloseConnection) -> None:
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            # RFC 6455 section 5.5.1: answer the server's close frame.
            await self._answer(event.response())
        self.close_code = int(event.code)
        self.close_reason = event.reason or ""
        raise WebSocketClosed(self.close_code, self.close_reason)


async def _read(stream: trio.abc.Stream) -> bytes:
    try:
        return bytes(await stream.receive_some(_READ_SIZE))
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return b""


async def connect_websocket(
    stream: trio.abc.Stream,
    path: str = "/",
    *,
    subprotocols: Iterable[str] = (),
    headers: HeadersLike = (),
    compression: bool = True,
    host: str = TEST_SERVER[0],
) -> WebSocketClient:
    """Perform the client's handshake over ``stream``; return the open client.

    Error handling:
        Raises :class:`WebSocketDenied` when the server answers with an HTTP
        response instead of switching protocols.
    """
    ws = WSConnection(ConnectionType.CLIENT)
    extensions: list[Extension] = [PerMessageDeflate()] if compression else []
    request = Request(
        host=host,
        target=path,
        subprotocols=list(subprotocols),
        extensions=extensions,
        extra_headers=encode_headers(headers),
    )
    await stream.send_all(ws.send(request))
    rejection: RejectConnection | None = None
    body = bytearray()
    while True:
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                return WebSocketClient(stream, ws, event)
            if isinstance(event, RejectConnection):
                rejection = event
                if not event.has_body:
                    raise WebSocketDenied(event.status_code, list(event.headers), b"")
            elif isinstance(event, RejectData) and rejection is not None:
                body += event.data
                if event.body_finished:
                    raise WebSocketDenied(
                        rejection.status_code, list(rejection.headers), bytes(body)
                    )
        data = await _read(stream)
        if not data:
            raise WebSocketDenied(0, [], b"")  # the server closed without answering
        ws.receive_data(data)


@asynccontextmanager
async def open_websocket(
    app: ASGIApp,
    path: str = "/",
    *,
    subprotocols: Iterable[str] = (),
    headers: HeadersLike = (),
    cookies: Mapping[str, str] | None = None,
    compression: bool = True,
    config: Config | None = None,
    state: dict[str, Any] | None = None,
    lifespan: bool = False,
    client: tuple[str, int] = TEST_CLIENT,
    stream_pair: Callable[[], StreamPair] = trio.testing.memory_stream_pair,
) -> AsyncIterator[WebSocketClient]:
    """Open a websocket to ``app`` served by trasgi in memory; yield the client.

    Args:
        app: The ASGI application under test.
        path: The request target: path and optional query string.
        subprotocols: Offered in ``Sec-WebSocket-Protocol``, in this order.
        headers: More request headers: a mapping, or ``(name, value)``
            pairs of ``str`` or ``bytes``.
        cookies: Sent in a ``Cookie`` header (an httpx client's
            ``cookies`` will do; :meth:`~trasgi.testing.TestClient.websocket_connect`
            passes them).
        compression: Offer permessage-deflate, as browsers do (RFC 7692).
        config: Server options (``ws_max_size``, ping interval...); the
            defaults when omitted.
        state: The lifespan state copied into the scope.
        lifespan: Run the application's lifespan around the websocket
            (``config.lifespan`` decides how), as :func:`~trasgi.testing.open_client`
            does, so that what its startup stores reaches
            ``websocket.state``. Off by default: a bare ASGI callable need
            not speak the lifespan protocol.
        client: The client address the application sees.
        stream_pair: Makes the (client, server) streams. The default buffers
            without limit; :func:`trio.testing.lockstep_stream_pair` makes the
            server's writes wait for the client to read, to test backpressure.

    Error handling:
        Raises :class:`WebSocketDenied` when the application refuses the
        handshake (a close before the accept, a denial response, a failure);
        :class:`~trasgi.LifespanFailure` if the application's startup fails.

    Resource handling:
        On exit an open websocket is closed with 1000, the stream is closed,
        and the server gets up to :data:`EXIT_TIMEOUT` seconds to finish
        before it is cancelled; then the lifespan shutdown runs.
    """
    config = config or Config()
    app = as_asgi3(app, config.interface)  # --interface, as the server does
    with collapse_single_error():
        async with AsyncExitStack() as stack:
            state = {} if state is None else state
            if lifespan:
                await stack.enter_async_context(
                    run_lifespan(app, config.lifespan, state)
                )
            async with _open_served_websocket(
                app,
                path,
                subprotocols=subprotocols,
                headers=[*encode_headers(headers), *cookie_header(cookies or {})],
                compression=compression,
                config=config,
                state=state,
                client=client,
                stream_pair=stream_pair,
            ) as websocket:
                yield websocket


@asynccontextmanager
async def _open_served_websocket(
    app: ASGIApp,
    path: str,
    *,
    subprotocols: Iterable[str],
    headers: list[tuple[bytes, bytes]],
    compression: bool,
    config: Config,
    state: dict[str, Any],
    client: tuple[str, int],
    stream_pair: Callable[[], StreamPair],
) -> AsyncIterator[WebSocketClient]:
    """One websocket over one served connection (no lifespan)."""
    client_end, server_end = stream_pair()
    shared = ServerShared(state=state)
    info = ConnectionInfo(client=client, server=TEST_SERVER)
    served = trio.Event()
    # Exceptions leave the nursery's body in an exception group; they are
    # kept here and raised once the server is stopped, as themselves.
    error: Exception | None = None

    async def serve() -> None:
        try:
            await handle_connection(server_end, app, config, info, shared)
        finally:
            served.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        websocket: WebSocketClient | None = None
        try:
            websocket = await connect_websocket(
                client_end,
                path,
                subprotocols=subprotocols,
                headers=headers,
                compression=compression,
            )
        except WebSocketDenied as denied:
            error = denied
        try:
            if websocket is not None:
                yield websocket
        except Exception as exc:
            error = exc
        finally:
            await _leave(websocket, client_end, served)
            nursery.cancel_scope.cancel()
    if error is not None:
        raise error


async def _leave(
    websocket: WebSocketClient | None, stream: trio.abc.Stream, served: trio.Event
) -> None:
    """Close the websocket and the stream, and let the server finish, briefly."""
    with trio.move_on_after(EXIT_TIMEOUT):
        if websocket is not None:
            with contextlib.suppress(trio.BrokenResourceError, WebSocketClosed):
                await websocket.close()
        await trio.aclose_forcefully(stream)
        await served.wait()
    await trio.aclose_forcefully(stream)
