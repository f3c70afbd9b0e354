"""Where a connection's protocol is chosen, and its life from accept to close.

:func:`handle_connection` serves one accepted stream: the PROXY protocol
header first (when configured), the per-client count, then the protocol:
HTTP/2 when TLS negotiated ``h2`` by ALPN or the client opened with the
HTTP/2 preface, HTTP/1.1 otherwise (the WebSocket upgrade is one of its
requests). It closes the stream the way the protocol's end asks: at once,
after lingering, or cut.
"""

from __future__ import annotations

from typing import Any

import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._io.http1 import CloseMode, HTTP11Connection, SwitchToH2
from trasgi._io.http2 import HTTP2Connection
from trasgi._io.inbox import discard
from trasgi._io.shared import ServerShared
from trasgi._io.socket_stream import DirectSocketStream
from trasgi._protocol.alpn import ALPN_H2
from trasgi._protocol.h2_adaptor import H2Upgrade
from trasgi._protocol.scope import ConnectionInfo


async def serve_connection(
    stream: trio.abc.Stream,
    app: ASGIApp,
    config: Config | None = None,
    info: ConnectionInfo | None = None,
    *,
    state: dict[str, Any] | None = None,
) -> None:
    """Serve HTTP/1.1 requests arriving on ``stream`` with the ASGI ``app``.

    Returns when the connection is finished: the client closed it, a timeout
    expired, a response asked for ``Connection: close``, or an error ended it.

    Args:
        stream: Any :class:`trio.abc.Stream`: a socket, a TLS stream or an
            in-memory stream; the handler never looks beneath it.
        app: The ASGI 3 application.
        config: Server options; the defaults when omitted.
        info: Client and server addresses and the scheme, for the scope.
        state: The lifespan state to copy into each request's scope.

    Resource handling:
        The stream is always closed on return, gracefully when the last
        response was complete, abruptly when it had to be cut short.

    Error handling:
        Errors of the peer get a 4xx answer and a close; ASGI mistakes and
        exceptions of the application are logged and answered with 500 (or an
        abort once the response started). Cancellation propagates.
    """
    shared = ServerShared(state=state if state is not None else {})
    await handle_connection(
        stream, app, config or Config(), info or ConnectionInfo(), shared
    )


async def handle_connection(
    stream: trio.abc.Stream,
    app: ASGIApp,
    config: Config,
    info: ConnectionInfo,
    shared: ServerShared,
) -> None:
    """Serve one connection of a server whose connections share ``shared``.

    What :func:`serve_connection` does, for the accept loop, the test client
    and the metrics listener, which count connections server-wide.
    """
    connection = HTTP11Connection(stream, app, config, info, shared)
    client_ip: str | None = None
    mode: CloseMode | SwitchToH2
    try:
        # A PROXY protocol header comes first and names the client to count.
        if await connection.accept_proxy_header():
            client = connection.info.client
            client_ip = client[0] if client else None
            if client_ip is not None:
                shared.per_client[client_ip] += 1
            if _over_client_limit(config, shared, client_ip):
                mode = await connection.refuse_busy_client()
            elif config.http2 and _negotiated_h2(stream):
                mode = await serve_http2(connection, b"")
            else:
                mode = await connection.run()
            if isinstance(mode, SwitchToH2):
                mode = await serve_http2(connection, mode.received, mode.upgrade)
            if mode is CloseMode.LINGER:
                await connection.linger()
    finally:
        # The inbox's sink refers back to the connection: break the cycle so
        # that the connection is freed now, not at the next garbage collection.
        connection.inbox.sink = discard
        if client_ip is not None:
            shared.per_client[client_ip] -= 1
            if not shared.per_client[client_ip]:
                del shared.per_client[client_ip]
        if isinstance(stream, DirectSocketStream):
            stream.close()  # cannot block: no cancel scope needed
        else:
            await trio.aclose_forcefully(stream)


def _negotiated_h2(stream: trio.abc.Stream) -> bool:
    """Whether TLS negotiated HTTP/2 by ALPN (RFC 9113 section 3.2)."""
    return (
        isinstance(stream, trio.SSLStream)
        and stream.selected_alpn_protocol() == ALPN_H2
    )


async def serve_http2(
    connection: HTTP11Connection,
    received: bytes,
    upgrade: H2Upgrade | None = None,
) -> CloseMode:
    """Serve the rest of a connection as HTTP/2, with what was read of it."""
    h2_connection = HTTP2Connection(
        connection.stream,
        connection.app,
        connection.config,
        connection.info,
        connection.shared,
        inbox=connection.inbox,
        writer=connection.writer,
        received=received,
        upgrade=upgrade,
    )
    await h2_connection.run()
    if connection.writer.lost:
        return CloseMode.ABORT
    if isinstance(connection.stream, trio.abc.HalfCloseableStream):
        # After a GOAWAY the client may still be sending: shut the write side
        # and read briefly, so what it sends does not reset the connection
        # under the GOAWAY (RFC 9113 section 6.8).
        return CloseMode.LINGER
    # TLS cannot shut one direction (trio's SSLStream has no send_eof): a
    # client waits for the close itself to learn the connection is over.
    return CloseMode.GRACEFUL


def _over_client_limit(
    config: Config, shared: ServerShared, client_ip: str | None
) -> bool:
    limit = config.limit_per_client
    return (
        limit is not None
        and client_ip is not None
        and shared.per_client[client_ip] > limit
    )
