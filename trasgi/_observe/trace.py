"""``--log-level trace``: every ASGI message and connection, on ``trasgi.error``.

Below DEBUG, as uvicorn's ``trace`` level: a line when a connection opens
and closes, when the application is called for a scope, for each message it
receives and sends, and when it returns or raises. The server wraps the
application (and its connection handler) only when the level is on at
startup, so with any other level a message costs nothing more.

Bodies and WebSocket payloads are not written out, only their sizes: a
trace shows the exchange, not the data (which may hold passwords).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from trasgi._asgi import ASGIApp, Message, Receive, Scope, Send
from trasgi._observe.logs import TRACE, error_logger, format_client

#: The scope keys a trace line shows: what names the exchange.
_SCOPE_KEYS = ("type", "http_version", "method", "scheme", "path", "client")
#: Message keys whose value is data: shown as a size.
_DATA_KEYS = frozenset({"body", "bytes", "text"})

Stream = TypeVar("Stream")


def describe_message(message: Message) -> str:
    """A message for a trace line, its payloads replaced by their sizes."""
    shown = {
        key: f"<{len(value)} {'chars' if key == 'text' else 'bytes'}>"
        if key in _DATA_KEYS and isinstance(value, (bytes, bytearray, str))
        else value
        for key, value in message.items()
    }
    return repr(shown)  # repr escapes control characters


def describe_scope(scope: Scope) -> str:
    """The scope's type, version, method, scheme, path and client."""
    return repr({key: scope[key] for key in _SCOPE_KEYS if key in scope})


def trace_asgi(app: ASGIApp) -> ASGIApp:
    """``app``, with every call and message written at the TRACE level.

    Each call gets a number, so that the lines of concurrent exchanges can
    be told apart.
    """
    numbers = itertools.count(1)

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        number = next(numbers)
        error_logger.log(TRACE, "ASGI [%d] called: %s", number, describe_scope(scope))

        async def traced_receive() -> Message:
            message = await receive()
            error_logger.log(
                TRACE, "ASGI [%d] receive %s", number, describe_message(message)
            )
            return message

        async def traced_send(message: Message) -> None:
            error_logger.log(
                TRACE, "ASGI [%d] send %s", number, describe_message(message)
            )
            await send(message)

        try:
            await app(scope, traced_receive, traced_send)
        except BaseException as exc:
            error_logger.log(TRACE, "ASGI [%d] raised %s", number, type(exc).__name__)
            raise
        error_logger.log(TRACE, "ASGI [%d] returned", number)

    return traced


def trace_connections(
    handle: Callable[[Stream], Awaitable[None]],
    client_of: Callable[[Stream], tuple[str, int] | None],
) -> Callable[[Stream], Coroutine[Any, Any, None]]:
    """``handle``, with a TRACE line when each connection opens and closes."""

    async def traced(stream: Stream) -> None:
        client = format_client(client_of(stream))
        error_logger.log(TRACE, "connection from %s opened", client)
        try:
            await handle(stream)
        finally:
            error_logger.log(TRACE, "connection from %s closed", client)

    return traced
