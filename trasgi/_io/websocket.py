"""The ASGI side of one WebSocket: a connection upgraded with wsproto.

An upgrade request leaves the HTTP request loop for :func:`serve_websocket`.
The session reaches the wire only through its
:class:`~trasgi._io.ports.WebSocketPort`. From then on the port feeds the pure
:class:`~trasgi._protocol.ws_cycle.WebSocketCycle`, and one nursery runs the
application beside three small tasks: the reader (reads only while the
application keeps up), the keepalive (pings, and the pong deadline), and the
shutdown watcher (a close frame when graceful shutdown begins). Every write
goes through one lock, so frames leave in the order the cycle produced them
(which permessage-deflate's shared compression context requires).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

import h11
import trio

from trasgi._asgi import ASGIApp, Message, Scope
from trasgi._errors import ASGIProtocolError, ClientDisconnected, PeerError
from trasgi._io.faults import AppFaults, Raised
from trasgi._io.ports import WebSocketPort
from trasgi._io.request_stream import turn_away
from trasgi._io.shared import RETRY_AFTER
from trasgi._observe.access import AccessNote, Address, RequestLine, SessionRecord
from trasgi._observe.logs import error_logger
from trasgi._protocol.forwarded import apply_proxy_headers
from trasgi._protocol.scope import build_websocket_scope
from trasgi._protocol.ws_cycle import Ending, Phase, WebSocketCycle
from trasgi._protocol.ws_handshake import Handshake

#: What the port writes: bytes over HTTP/1.1, an HTTP/2 stream's pieces.
Piece = TypeVar("Piece")

#: How long the server waits for the client's close frame after sending its
#: own, and for that close frame to be written. RFC 6455 section 7.1.1 wants
#: the closing handshake complete before the TCP close; a client that does
#: not answer in 10 s (the websockets library's default) is not going to.
CLOSE_TIMEOUT = 10.0
#: The close code sent to open websockets when graceful shutdown begins.
#: RFC 6455 section 7.4.1 defines 1001 "going away" for "a server going
#: down". 1012 "service restart" (IANA registry only) would tell clients the
#: server will be back, which a process being stopped cannot know.
SHUTDOWN_CLOSE_CODE = 1001
SHUTDOWN_CLOSE_REASON = "server shutting down"
#: Sent when a ping gets no pong in time (RFC 6455 section 7.4.1, 1011: an
#: unexpected condition; the websockets library uses the same code).
PING_TIMEOUT_CLOSE_CODE = 1011
#: The code a session that ended without a closing handshake is logged with
#: (RFC 6455 section 7.1.5: "the WebSocket Connection Close Code is 1006").
NO_CLOSE_FRAME = 1006


def is_websocket_upgrade(
    request: h11.Request, headers: Iterable[tuple[bytes, bytes]] | None = None
) -> bool:
    """Whether a request asks to become a WebSocket (RFC 6455 section 4.1).

    That is an HTTP/1.1 ``GET`` whose ``Upgrade`` header names ``websocket``
    and whose ``Connection`` header names ``upgrade``. Anything else, even
    with an ``Upgrade`` header, is served as plain HTTP.
    """
    if request.method != b"GET" or request.http_version != b"1.1":
        return False
    fields = request.headers if headers is None else headers
    upgrade = _tokens(fields, b"upgrade")
    return "websocket" in upgrade and "upgrade" in _tokens(fields, b"connection")


def _tokens(headers: Iterable[tuple[bytes, bytes]], wanted: bytes) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name == wanted:
            text = value.decode("latin-1").lower()
            tokens.update(token.strip() for token in text.split(","))
    return tokens


async def serve_websocket(
    port: WebSocketPort[Piece],
    app: ASGIApp,
    request: RequestLine,
    handshake: Callable[[], Handshake[Piece]],
    *,
    http_version: str | None = None,
) -> None:
    """Serve one opening request as a WebSocket, until it closes.

    Over HTTP/1.1 a connection that was upgraded, or whose upgrade was
    refused, is never reused for HTTP; over HTTP/2 only the stream ends.

    Args:
        port: The wire under the WebSocket.
        app: The application.
        request: The opening request.
        handshake: Checks the opening request (raising
            :class:`~trasgi._protocol.ws_handshake.HandshakeError`) and
            returns its protocol's handshake.
        http_version: The scope's ``http_version``, when it is not the
            request's own (``"2"`` for HTTP/2).

    Error handling:
        An invalid handshake gets 400 (or 426 for an unsupported version);
        a full or stopping server gets 503. Exceptions of the application are
        logged and become 500 before the accept, close 1011 after it.
        Cancellation propagates.
    """
    started = time.perf_counter()
    shared = port.shared
    config = port.config
    try:
        _check_room(port)
        cycle = WebSocketCycle(
            handshake(),
            max_size=config.ws_max_size,
            max_queue=config.ws_max_queue,
            compression=config.ws_per_message_deflate,
            default_headers=port.default_headers(),
        )
        scope = build_websocket_scope(
            request,
            port.info,
            root_path=config.root_path,
            state=shared.state,
            http_version=http_version,
        )
        apply_proxy_headers(scope, port.info, config)
    except PeerError as error:
        # Through the connection's observer: the chosen access-log format (text
        # or JSON) and the metrics see handshakes as they see other responses.
        await turn_away(port, request, error, started)
        return
    session = WebSocketSession(port, cycle, request, started)
    session.client = scope.get("client")
    shared.in_flight += 1
    try:
        await session.run(app, scope)
    except trio.Cancelled:
        if shared.shutting_down.is_set():
            shared.cancelled += 1
        raise
    finally:
        shared.in_flight -= 1
        session.log_end()


def _check_room(port: WebSocketPort[Any]) -> None:
    """Refuse a WebSocket the server has no room for (raises a 503 PeerError)."""
    if port.shared.shutting_down.is_set():
        raise PeerError(503, "the server is shutting down", RETRY_AFTER)
    refusal = port.shared.busy_refusal(port.config)
    if refusal is not None:
        raise refusal


class WebSocketSession(Generic[Piece]):
    """One accepted (or being accepted) WebSocket: the app's receive and send."""

    def __init__(
        self,
        port: WebSocketPort[Piece],
        cycle: WebSocketCycle[Piece],
        request: RequestLine,
        started: float,
    ) -> None:
        self.port = port
        self.cycle = cycle
        self.request = request
        self.started = started
        self.faults = AppFaults(request, "websocket ")
        self._write_lock = trio.Lock()
        # Every task that waits for the cycle to change parks here; anything
        # that changes it unparks them all, and each re-checks its condition.
        self._changed = trio.lowlevel.ParkingLot()
        self._logged = False
        self._nursery: trio.Nursery | None = None
        #: The client as the scope names it (a trusted proxy may have named it).
        self.client: Address | None = None
        #: Message bytes received and sent by the application (text as UTF-8).
        self.bytes_in = 0
        self.bytes_out = 0
        #: The code of the close frame the application sent, if it did.
        self.app_close_code: int | None = None

    async def run(self, app: ASGIApp, scope: Any) -> None:
        self.port.take_over(self._on_bytes)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._read)
            nursery.start_soon(self._close_on_shutdown)
            failed = await self._run_app(app, scope)
            await self._finish(failed)
            nursery.cancel_scope.cancel()

    def _on_bytes(self, data: bytes) -> None:
        self.cycle.receive_data(data)
        self._changed.unpark_all()

    async def _wait_for_change(self) -> None:
        await self._changed.park()

    # -- the application ---------------------------------------------------

    async def _run_app(self, app: ASGIApp, scope: Scope) -> bool:
        """Run the application; return whether it failed."""
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            return self.faults.classify(exc) is not Raised.CLIENT_LEFT
        return False

    async def receive(self) -> Message:
        """Give the application the next message (ASGI ``receive``)."""
        while True:
            message = self.cycle.next_message()
            if message is not None:
                self._changed.unpark_all()  # room in the queue: reading resumes
                self.bytes_in += _payload_size(message)
                return message
            await self._wait_for_change()

    async def send(self, message: Message) -> None:
        """Take one message from the application (ASGI ``send``).

        Returns once the bytes are written: a client that does not read slows
        the application down instead of filling the server's memory.

        Error handling:
            Raises :class:`ClientDisconnected` once the connection is over,
            and :class:`ASGIProtocolError` for an out-of-order or malformed
            message (after logging the mistake and closing with 1011).
        """
        accepted = self.cycle.accepted
        try:
            self.cycle.send(message)
        except ASGIProtocolError as mistake:
            self.faults.record_mistake(mistake)
            self._changed.unpark_all()
            await self._flush_quietly()
            raise
        finally:
            self._log_handshake()
        kind = message.get("type")
        if kind == "websocket.send":
            self.bytes_out += _payload_size(message)
        elif kind == "websocket.close" and self.app_close_code is None:
            self.app_close_code = message.get("code", 1000)
        self._changed.unpark_all()
        await self._flush()
        if not accepted and self.cycle.accepted:
            self._start_keepalive()

    def _log_handshake(self) -> None:
        cycle = self.cycle
        if not self._logged and cycle.handshake_answered and cycle.status:
            self._logged = True
            self.port.log_access(
                self.request,
                cycle.status,
                cycle.body_bytes,
                self.started,
                AccessNote(self.client),
            )

    def log_end(self) -> None:
        """The access line of a session that was accepted, once it is over.

        Its close code is the one the closing handshake settled (the
        client's, or the server's when the client never answered), else the
        application's close frame, else 1006: no close frame at all.
        """
        if not self.cycle.accepted:
            return  # refused or denied: the handshake's line says it all
        ending = self.cycle.next_message()
        if ending is not None and ending.get("type") == "websocket.disconnect":
            code = int(ending.get("code", NO_CLOSE_FRAME))
        else:
            code = self.app_close_code or NO_CLOSE_FRAME
        port = self.port
        record = SessionRecord(
            client=self.client or port.info.client,
            peer=port.info.client,
            target=self.request.target,
            duration=time.perf_counter() - self.started,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            close_code=code,
        )
        port.shared.observer_for(port.config).on_session_end(record)

    async def _finish(self, failed: bool) -> None:
        """Close what the application left open, then end the closing handshake."""
        phase = self.cycle.phase
        ending = self.cycle.app_returned(failed=failed)
        self._changed.unpark_all()
        if ending is Ending.REFUSED and not failed and phase is Phase.CONNECTING:
            error_logger.error(
                "ASGI application returned without accepting or closing websocket %s",
                self.faults.describe(),
            )
        self._log_handshake()
        if ending is Ending.ABORT:
            if not failed:
                error_logger.error(
                    "ASGI application returned before completing the denial "
                    "response to %s",
                    self.faults.describe(),
                )
            self._abort_soon()
            return
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._flush_quietly()
            while not self.cycle.reading_done:
                await self._wait_for_change()
            return
        self._abort_soon()

    # -- writing -----------------------------------------------------------

    async def _flush(self) -> None:
        """Write what the cycle produced, in order, one writer at a time.

        Error handling:
            Raises :class:`ClientDisconnected` when the stream is broken.
        """
        lock = self._write_lock
        try:
            # Uncontended (the usual case), the write below is the yield:
            # trio's acquire would add a trip through the scheduler per message.
            lock.acquire_nowait()
        except trio.WouldBlock:
            await lock.acquire()
        try:
            await self._write_pending()
        finally:
            lock.release()

    async def _write_pending(self) -> None:
        if self.port.peer_lost:
            raise ClientDisconnected("the client closed the connection")
        pieces = self.cycle.data_to_send()
        if not pieces:
            await trio.lowlevel.checkpoint()
            return
        try:
            await self.port.write(pieces)
        except ClientDisconnected:
            self.cycle.transport_lost()
            self._changed.unpark_all()
            raise

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(ClientDisconnected):
            await self._flush()

    def _abort_soon(self) -> None:
        """Give up on a graceful close: the connection closes without lingering."""
        self.port.abort()

    # -- the helper tasks --------------------------------------------------

    async def _read(self) -> None:
        """Read from the client while the cycle wants bytes (backpressure)."""
        cycle = self.cycle
        while not cycle.reading_done:
            if cycle.wants_data:
                await self.port.fill()
            else:
                await self._wait_for_change()
            # Pongs and the answer to a close frame; most reads bring none.
            if cycle.has_data_to_send:
                await self._flush_quietly()

    async def _close_on_shutdown(self) -> None:
        await self.port.shared.shutting_down.wait()
        while self.cycle.phase is Phase.CONNECTING and not self.cycle.reading_done:
            await self._wait_for_change()
        await self._close(SHUTDOWN_CLOSE_CODE, SHUTDOWN_CLOSE_REASON)

    def _start_keepalive(self) -> None:
        interval = self.port.config.ws_ping_interval
        if interval is not None and self._nursery is not None:
            self._nursery.start_soon(self._keepalive, interval)

    async def _keepalive(self, interval: float) -> None:
        """Ping every ``interval`` seconds; close with 1011 past the pong deadline."""
        timeout = self.port.config.ws_ping_timeout
        while True:
            await trio.sleep(interval)
            if not self.cycle.ping():
                return
            if timeout is None:
                await self._flush_quietly()
                continue
            with trio.move_on_after(timeout):
                await self._flush_quietly()
                while self.cycle.awaiting_pong:
                    await self._wait_for_change()
                continue
            error_logger.info(
                "closing websocket %s: no pong within %gs",
                self.faults.describe(),
                timeout,
            )
            await self._close(PING_TIMEOUT_CLOSE_CODE, "keepalive ping timeout")
            return

    async def _close(self, code: int, reason: str) -> None:
        """Send a close frame on the server's behalf, if the websocket is open."""
        if not self.cycle.close(code, reason):
            return
        self._changed.unpark_all()
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._flush_quietly()
            return
        # The close frame cannot even be written: the client stopped reading.
        self._abort_soon()
        await self.port.close_now()


def _payload_size(message: Message) -> int:
    """Bytes of a message's payload: its bytes, or its text as UTF-8."""
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text")
    if not isinstance(text, str):
        return 0
    # isascii() reads a flag CPython keeps: no encoding for the usual text.
    return len(text) if text.isascii() else len(text.encode("utf-8"))
