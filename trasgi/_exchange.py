"""One request and its response: the ``receive`` and ``send`` given to the app.

An :class:`Exchange` lives for one request on a connection. ``receive()``
pulls body chunks from the connection's inbox only when the application asks
(backpressure; ``100 Continue`` on the first pull), then reports
``http.disconnect``; ``send()`` hands each message to the pure
:class:`~trasgi._cycle.ResponseCycle` and writes the bytes it returns.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import h11
import trio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

from ._asgi import Message
from ._cycle import DISCONNECT, Phase, ResponseCycle, request_message
from ._errors import ASGIProtocolError, ClientDisconnected, PeerError
from ._logging import error_logger, escape

if TYPE_CHECKING:
    from ._connection import _HTTPConnection

#: While a response is being produced, pipelined bytes of the next request are
#: read (to notice a disconnect) only while fewer than this many are held; so
#: at most this plus one read's worth is buffered before reading pauses.
MAX_PIPELINED_BYTES = 64 * 1024

#: The interim response that lets a waiting client send its body.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: What h11.Connection.next_event() returns.
H11Event = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]


def wants_keep_alive(request: h11.Request, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request lets the connection be reused (RFC 9112 section 9.3).

    HTTP/1.1 persists unless ``Connection: close``; HTTP/1.0 connections are
    closed after the response, as h11 treats them.
    """
    if request.http_version != b"1.1":
        return False
    for name, value in headers:
        if name == b"connection" and b"close" in value.lower():
            return False
    return True


class Exchange:
    """One request and its response: the ``receive`` and ``send`` given to the app."""

    def __init__(
        self,
        connection: _HTTPConnection,
        request: h11.Request,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.connection = connection
        self.request = request
        self.cycle = ResponseCycle(
            request.method,
            request.http_version,
            keep_alive=wants_keep_alive(request, headers),
            extra_headers=connection.default_headers(),
        )
        self.started = time.perf_counter()
        self.body_done = False
        self.response_done = False
        self._watches: set[trio.CancelScope] = set()
        self.expected_continue = connection.parser.client_is_waiting_for_100_continue
        self.sent_continue = False
        self.peer_error: PeerError | None = None
        self.mistake: ASGIProtocolError | None = None
        self.failed = False
        self.body_bytes = 0
        self._stash: H11Event | None = None

    def describe(self) -> str:
        return f'"{escape(self.request.method)} {escape(self.request.target)}"'

    async def run(self, scope: Any) -> None:
        try:
            await self.connection.app(scope, self.receive, self.send)
        except Exception as exc:
            self.failed = True
            if _is_disconnect(exc):
                # The client left and the app let send()'s OSError propagate:
                # expected, not an application error worth a traceback.
                error_logger.debug("client left during %s", self.describe())
            elif exc is not self.mistake:
                error_logger.exception(
                    "exception in ASGI application while serving %s", self.describe()
                )
        finally:
            self._response_is_done()

    # -- receive -----------------------------------------------------------

    async def receive(self) -> Message:
        """Give the application the next request message (ASGI ``receive``)."""
        connection = self.connection
        if self.response_done or connection.peer_gone or self.peer_error:
            return dict(DISCONNECT)
        if not self.body_done:
            return await self._receive_body()
        # The body is complete: block until the response is done or the
        # client leaves (ASGI HTTP spec, "Disconnect").
        while not (self.response_done or connection.inbox.eof):
            with trio.CancelScope() as watch:
                self._watches.add(watch)
                try:
                    if connection.buffered() > MAX_PIPELINED_BYTES:
                        await trio.sleep_forever()  # until the response is done
                    await connection.inbox.fill()
                finally:
                    self._watches.discard(watch)
        return dict(DISCONNECT)

    def _response_is_done(self) -> None:
        """Wake every receive() waiting for the end of the exchange."""
        self.response_done = True
        for watch in self._watches:
            watch.cancel()

    async def _receive_body(self) -> Message:
        connection = self.connection
        if (
            self.expected_continue
            and not self.sent_continue
            and not self.cycle.wrote_anything
        ):
            # RFC 9110 section 10.1.1: the client waits for 100 Continue before
            # sending the body; send it only now that the body is wanted.
            self.sent_continue = True
            try:
                await connection.write(CONTINUE)
            except ClientDisconnected:
                return dict(DISCONNECT)
        try:
            event = self._stash or await self._next_body_event()
            self._stash = None
            if isinstance(event, h11.Data):
                return self._body_message(event)
        except PeerError as error:
            if not connection.inbox.eof:
                await self._refuse_mid_body(error)
            return dict(DISCONNECT)
        if isinstance(event, h11.EndOfMessage):
            self.body_done = True
            return request_message(event)
        return dict(DISCONNECT)  # ConnectionClosed mid-body

    async def _refuse_mid_body(self, error: PeerError) -> None:
        """The body broke HTTP or a limit: answer now and end the exchange.

        The client gets the 4xx at once (if no response started) rather than
        whatever the application would make of a truncated body; the
        application sees ``http.disconnect`` and its later sends raise.
        """
        self.peer_error = error
        connection = self.connection
        if not self.cycle.wrote_anything and not connection.peer_gone:
            await connection.refuse(error, self.request.method)
            connection.log_access(self.request, error.status_code, 0, self.started)

    async def _next_body_event(self) -> H11Event:
        connection = self.connection
        with trio.move_on_after(connection.config.timeout_body_read):
            return await connection.next_body_event()
        raise PeerError(408, "request body not received in time")

    def _body_message(self, event: h11.Data) -> Message:
        """An ``http.request`` message for a chunk, checked against the limit.

        Error handling:
            Raises :class:`PeerError` (413) once the body passes the limit:
            a chunked body declares no length to check up front.
        """
        self.body_bytes += len(event.data)
        limit = self.connection.config.limit_request_body
        if limit is not None and self.body_bytes > limit:
            raise PeerError(413, "request body too large")
        # Coalesce with the end of the body when it is already buffered, so a
        # small body arrives in one message.
        try:
            following = self.connection.parser.next_event()
        except h11.RemoteProtocolError:
            following = h11.NEED_DATA  # reported by the next receive()
        if isinstance(following, h11.EndOfMessage):
            self.body_done = True
            return {
                "type": "http.request",
                "body": bytes(event.data),
                "more_body": False,
            }
        if following is not h11.NEED_DATA:
            self._stash = following
        return request_message(event)

    # -- send --------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Take one response message from the application (ASGI ``send``).

        Error handling:
            Raises :class:`ClientDisconnected` once the client is gone, and
            :class:`ASGIProtocolError` for an out-of-order or malformed message
            (after logging the mistake).
        """
        connection = self.connection
        if connection.peer_gone:
            raise ClientDisconnected("the client closed the connection")
        if self.peer_error is not None:
            raise ClientDisconnected(
                f"the request failed ({self.peer_error.status_code}); "
                "the connection is closing"
            )
        if (
            connection.shared.shutting_down.is_set()
            and self.cycle.phase is Phase.AWAITING_START
        ):
            self.cycle.close_after = True
        try:
            data = self.cycle.send(message)
        except ASGIProtocolError as mistake:
            self._record_mistake(mistake)
            raise
        if data:
            await connection.write_pieces(data)
        if self.cycle.phase is Phase.COMPLETE:
            self._response_is_done()

    def _record_mistake(self, mistake: ASGIProtocolError) -> None:
        self.failed = True
        if self.mistake is None:
            self.mistake = mistake
            error_logger.error(
                "ASGI protocol error while serving %s: the application %s",
                self.describe(),
                mistake,
            )


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` is ClientDisconnected, alone or as all of a group."""
    if isinstance(exc, ClientDisconnected):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_disconnect(inner) for inner in exc.exceptions)
    return False
