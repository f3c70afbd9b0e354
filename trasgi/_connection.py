"""The one HTTP module that awaits the stream.

One connection is one task in the server's handler nursery: the request
loop, which reads through the connection's :class:`~trasgi._inbox.Inbox`
only when it needs bytes (backpressure), parses request heads with h11, runs
the application and writes what the pure
:class:`~trasgi._cycle.ResponseCycle` frames. Work that must run beside it
gets a nursery of its own, inside the connection's task: the application's
own tasks, a WebSocket's reader, pinger and shutdown watcher. Every timeout
is a cancel scope around an await; nothing polls.
"""

from __future__ import annotations

import collections
import contextlib
import http
import math
import time
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any

import attrs
import h11
import trio

from ._access import AccessRecord, Observer, ResponseObserver
from ._asgi import ASGIApp
from ._config import Config
from ._cycle import Phase
from ._errors import ClientDisconnected, PeerError
from ._exchange import Exchange, H11Event
from ._inbox import Inbox, discard
from ._logging import error_logger
from ._proxy import apply_proxy_headers
from ._proxy_protocol import accept_proxy_header
from ._scope import ConnectionInfo, build_http_scope
from ._socket_stream import DirectSocketStream, SendStalled
from ._strict import HeadLimits, check_head
from ._websocket import is_websocket_upgrade, serve_websocket

#: Writes are made in slices of this size, each under the write timeout; a
#: response's small pieces (a head, a chunk's size line) are joined with its
#: body up to this size, since copying a few hundred KiB costs less than a
#: system call per piece.
WRITE_SLICE = 256 * 1024
#: Pieces smaller than this together are joined before writing: copying a
#: few KiB costs less than the kernel gathering them (``sendmsg``).
JOIN_BELOW = 16 * 1024
#: After the last response on a connection, how long to keep reading what the
#: client still sends before closing, so that unread bytes do not turn the
#: close into a reset that destroys that response (RFC 9112 section 9.6).
LINGER_SECONDS = 2.0

#: How long a connection accepted just before a graceful shutdown still has
#: to send its first request. A client sends it right after connecting, so it
#: is normally on its way already; closed unanswered, the client could not
#: know whether to retry. Short, so that idle preconnected sockets (browsers
#: open them ahead of need) do not hold the shutdown up.
NEW_CONNECTION_GRACE = 1.0

#: How long a shielded last write (a 503 during shutdown) may take.
_LAST_WORDS_SECONDS = 1.0

_SERVER_HEADER = (b"server", b"trasgi")
#: The fields that give a request a body (RFC 9112 section 6.3).
_BODY_FIELDS = (b"content-length", b"transfer-encoding")


@attrs.define
class ServerShared:
    """What all connections of one server share.

    Attributes:
        state: The lifespan state; each request gets a shallow copy.
        shutting_down: Set by :meth:`begin_shutdown`: responses then carry
            ``Connection: close`` and no connection waits for another request.
        in_flight: Requests currently being handled (``--limit-concurrency``).
        per_client: Open connections per client IP (``--limit-per-client``).
        idle: Cancel scopes of connections idle between requests; shutdown
            cancels them so that those connections close at once.
        new: Cancel scopes of new connections waiting for their first
            request; shutdown gives them :data:`NEW_CONNECTION_GRACE`.
        observer: Told of every finished response (access log, metrics);
            built from the config on first use when the server set none.
        requests: Requests handed to the application, on every connection.
        request_budget: ``requests`` at which the server retires
            (``--limit-max-requests``); None for never.
        budget_spent: Set when ``requests`` reaches ``request_budget``; the
            server then shuts down gracefully.
    """

    state: dict[str, Any] = attrs.field(factory=dict)
    shutting_down: trio.Event = attrs.field(factory=trio.Event)
    in_flight: int = 0
    per_client: collections.Counter[str] = attrs.field(factory=collections.Counter)
    idle: set[trio.CancelScope] = attrs.field(factory=set)
    new: set[trio.CancelScope] = attrs.field(factory=set)
    observer: Observer | None = None
    requests: int = 0
    request_budget: int | None = None
    budget_spent: trio.Event = attrs.field(factory=trio.Event)

    def begin_shutdown(self) -> None:
        """Start a graceful shutdown: flag it, and close idle connections now."""
        self.shutting_down.set()
        for scope in self.idle:
            scope.cancel()
        deadline = trio.current_time() + NEW_CONNECTION_GRACE
        for scope in self.new:
            scope.deadline = min(scope.deadline, deadline)


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
    await _serve(stream, app, config or Config(), info or ConnectionInfo(), shared)


async def _serve(
    stream: trio.abc.Stream,
    app: ASGIApp,
    config: Config,
    info: ConnectionInfo,
    shared: ServerShared,
) -> None:
    connection = _HTTPConnection(stream, app, config, info, shared)
    client_ip: str | None = None
    try:
        # A PROXY protocol header comes first and names the client to count.
        if await accept_proxy_header(connection):
            client = connection.info.client
            client_ip = client[0] if client else None
            if client_ip is not None:
                shared.per_client[client_ip] += 1
            if _over_client_limit(config, shared, client_ip):
                await connection.refuse_busy_client()
                await connection.linger()
            elif await connection.run():
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


def _over_client_limit(
    config: Config, shared: ServerShared, client_ip: str | None
) -> bool:
    limit = config.limit_per_client
    return (
        limit is not None
        and client_ip is not None
        and shared.per_client[client_ip] > limit
    )


class _DateHeader:
    """The Date header value (RFC 9110 section 6.6.1), formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


_date_header = _DateHeader()


class _HTTPConnection:
    """The request loop of one connection."""

    # Slots: an idle connection is mostly this object and its parser, and
    # thousands may be open at once.
    __slots__ = (
        "_current_parser",
        "answered_error",
        "app",
        "asks_upgrade",
        "body_less",
        "config",
        "direct_stream",
        "headers",
        "inbox",
        "info",
        "limits",
        "peer_gone",
        "requests_served",
        "shared",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: ASGIApp,
        config: Config,
        info: ConnectionInfo,
        shared: ServerShared,
    ) -> None:
        self.stream = stream
        #: The stream, when it is a direct socket stream that enforces the
        #: write timeout itself, setting a deadline only when a write has to
        #: wait (most never do), and that can gather a response's pieces.
        self.direct_stream = (
            stream
            if isinstance(stream, DirectSocketStream)
            and stream.send_timeout == config.timeout_write
            else None
        )
        self.app = app
        self.config = config
        self.info = info
        self.shared = shared
        #: The parser of the current request, made when its bytes arrive (see
        #: :attr:`parser`).
        self._current_parser: h11.Connection | None = None
        self.inbox = Inbox(stream, self.feed_parser)
        self.limits = _head_limits(config)
        self.requests_served = 0
        #: Set once the server wrote an error answer of its own (4xx, 5xx).
        self.answered_error = False
        #: The current request's headers as a list, made once per request.
        self.headers: list[tuple[bytes, bytes]] = []
        #: Whether the current request has no body: it ends with its head.
        self.body_less = False
        #: Whether the current request has an Upgrade header.
        self.asks_upgrade = False
        #: Set when a write failed: the client cannot receive anything more.
        self.peer_gone = False

    async def run(self) -> bool:
        """Serve requests until the connection ends; return whether to linger."""
        first = True
        while True:
            request = await self._next_request(first=first)
            if request is None or not await self._handle(request):
                return self._should_linger()
            first = False
            self._next_cycle()

    def _should_linger(self) -> bool:
        """Whether closing at once could reset the connection under a response.

        Closing a socket with unread bytes in the kernel makes it send a
        reset, which can destroy a response the client has not read yet (RFC
        9112 section 9.6). That risk exists after an error answer (the client
        may still be sending) or when input was left unread; a connection
        whose input was consumed to its end closes at once, saving a round
        trip per connection.
        """
        if self.peer_gone:
            return False
        if self.answered_error or not self._read_to_the_end():
            return True
        return bool(self.buffered())  # the start of a request never answered

    def _read_to_the_end(self) -> bool:
        """Whether the request was read to its end, taking an end already buffered.

        A request without a body ends where its head does, but h11 reports
        that end only when asked: asking here (no waiting) spares a body-less
        request answered with ``Connection: close`` the linger.
        """
        parser = self.parser
        while parser.their_state is h11.SEND_BODY:
            try:
                if parser.next_event() is h11.NEED_DATA:
                    return False
            except h11.RemoteProtocolError:
                return False
        return parser.their_state is not h11.ERROR

    def _next_cycle(self) -> None:
        """Start parsing the next request with a fresh h11 connection.

        Responses are framed by :class:`~trasgi._cycle.ResponseCycle`, not
        sent through h11, so h11's own cycle cannot be restarted; a new parser
        takes over whatever the client already pipelined. With nothing
        pipelined, none is made until bytes arrive: an idle kept-alive
        connection holds no parser.
        """
        leftover, closed = self.parser.trailing_data
        self._current_parser = None
        self.headers = []  # not held while the connection waits
        if leftover:
            self.parser.receive_data(bytes(leftover))
        if closed:
            self.parser.receive_data(b"")
        self.inbox.sink = self.feed_parser

    @property
    def parser(self) -> h11.Connection:
        """The h11 parser of the current request, made on first use."""
        parser = self._current_parser
        if parser is None:
            parser = self._current_parser = _parser(self.config)
        return parser

    def feed_parser(self, data: bytes) -> None:
        """The inbox's sink while parsing HTTP: bytes (or b"" at the end) to h11."""
        self.parser.receive_data(data)

    # -- reading -----------------------------------------------------------

    def buffered(self) -> int:
        parser = self._current_parser
        return 0 if parser is None else len(parser.trailing_data[0])

    async def _next_request(self, *, first: bool) -> h11.Request | None:
        """Read the next request head; None when the connection should close.

        A kept-alive connection may stay idle (no byte of a next request) for
        the keep-alive timeout. The header-read deadline then bounds the head
        itself: from the accept for a new connection, from the first byte of
        the head on a kept-alive one, so that raising the keep-alive timeout
        (above a load balancer's idle timeout, say) is never silently capped.
        """
        # Usually the request is here already (it came with the connection,
        # or while the previous response was written): take it without the
        # cancel scope that waiting for it needs.
        if (
            not self.buffered()
            and not self.inbox.fill_nowait()
            and not first
            and not await self._wait_while_idle(first)
        ):
            return None
        try:
            # Usually the whole head came in the read that ended the idle
            # wait: then no deadline scope is needed at all.
            event = self._try_head()
            if event is None or isinstance(event, h11.Request):
                return event
            # A CancelScope with a deadline: move_on_after's generator-based
            # context manager costs more, on a path taken by every request.
            deadline = trio.current_time() + self.config.timeout_header_read
            with trio.CancelScope(deadline=deadline):
                return await self._read_head(first=first)
        except PeerError as error:
            await self.refuse(error, method=None)
            return None
        if self.buffered():
            # A head began but did not finish in time (RFC 9110 section 15.5.9).
            await self.refuse(PeerError(408, "request head not received in time"), None)
        return None

    def _try_head(self) -> h11.Request | type[h11.NEED_DATA] | None:
        """Parse a head from what is buffered: a request, NEED_DATA, or None (closed).

        Error handling:
            Raises :class:`PeerError` for a malformed or refused head.
        """
        buffered = self.parser.trailing_data[0]
        try:
            event = self.parser.next_event()
        except h11.RemoteProtocolError as exc:
            raise PeerError(exc.error_status_hint, _peer_reason(exc)) from None
        if isinstance(event, h11.Request):
            self._check_head(event, buffered[: len(buffered) - self.buffered()])
            return event
        if event is h11.NEED_DATA:
            return h11.NEED_DATA
        return None  # ConnectionClosed: the client left between requests.

    async def _read_head(self, *, first: bool) -> h11.Request | None:
        while True:
            event = self._try_head()
            if event is None or isinstance(event, h11.Request):
                return event
            if self.buffered() or self.inbox.eof:
                await self.inbox.fill()
            elif not await self._wait_while_idle(first):
                return None

    def _check_head(self, request: h11.Request, head: bytes) -> None:
        # h11 enforces its size limit only while a head is incomplete: a large
        # head that arrives in one read would pass. Measure what it consumed.
        if len(head) > self.config.h11_max_incomplete_event_size:
            raise PeerError(431, "request head too large")
        # Once, for every later reader; lowering the raw names is the same as
        # h11's normalised names, and cheaper than iterating its Headers.
        self.headers = [
            (name.lower(), value) for name, value in request.headers.raw_items()
        ]
        check_head(request, head, self.limits, self.headers)
        self.body_less = True
        self.asks_upgrade = False
        for name, _ in self.headers:
            if name in _BODY_FIELDS:
                self.body_less = False
            elif name == b"upgrade":
                self.asks_upgrade = True

    async def _wait_while_idle(self, first: bool) -> bool:
        """Wait for a request's first bytes; False when the connection should close."""
        if first:
            return await self._wait_for_first_request()
        if self.shared.shutting_down.is_set():
            return False
        # A new connection is bounded by the header-read deadline around this
        # wait; between requests, the keep-alive timeout applies.
        timeout = float("inf") if first else self.config.timeout_keep_alive
        # A cancel scope that shutdown can cancel, rather than a task waiting
        # on the shutdown event: this wait happens once per request.
        with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
            self.shared.idle.add(scope)
            try:
                await self.inbox.fill()
                return True
            finally:
                self.shared.idle.discard(scope)
        return False

    async def _wait_for_first_request(self) -> bool:
        """Wait for a new connection's first bytes, briefly once shutting down.

        The header-read deadline around this wait bounds it otherwise.
        """
        shared = self.shared
        grace = NEW_CONNECTION_GRACE if shared.shutting_down.is_set() else math.inf
        with trio.CancelScope(deadline=trio.current_time() + grace) as scope:
            shared.new.add(scope)
            try:
                await self.inbox.fill()
                return True
            finally:
                shared.new.discard(scope)
        return False

    async def next_body_event(self) -> H11Event:
        """Read the next request body event, asking the inbox for bytes as needed.

        Error handling:
            Raises :class:`PeerError` when the body is malformed.
        """
        while True:
            try:
                event = self.parser.next_event()
            except h11.RemoteProtocolError as exc:
                raise PeerError(exc.error_status_hint, _peer_reason(exc)) from None
            if event is not h11.NEED_DATA:
                return event
            await self.inbox.fill()

    # -- writing -----------------------------------------------------------

    async def write(self, data: bytes) -> None:
        """Write bytes; a failed write means the client is gone.

        Error handling:
            Raises :class:`ClientDisconnected` (an :class:`OSError`) when the
            stream is broken, after telling h11 the send failed.
        """
        if len(data) <= WRITE_SLICE:
            await self._write_slice((data,))
            return
        # The timeout bounds each slice, not the whole write: a slow but
        # steady reader of a large body keeps going; a stalled one is dropped.
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            await self._write_slice((view[start : start + WRITE_SLICE],))

    async def write_pieces(self, pieces: list[bytes]) -> None:
        """Write a response's pieces: small ones together, in one system call.

        Pieces that fit one slice go out in one write: joined when they are
        small or the stream cannot gather them, gathered by the kernel
        otherwise (no copy of a body). A large body is written as it is,
        never copied.
        """
        size = sum(len(piece) for piece in pieces)
        if size > WRITE_SLICE:
            for piece in pieces:
                await self.write(piece)
            return
        if len(pieces) > 1 and (size <= JOIN_BELOW or self.direct_stream is None):
            pieces = [b"".join(pieces)]
        await self._write_slice(pieces)

    async def _write_slice(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Write at most a slice, in one piece unless the stream gathers them."""
        try:
            if self.direct_stream is not None:
                # The stream bounds the write itself: no scope unless it waits.
                await self.direct_stream.send_all_pieces(pieces)
                return
            (data,) = pieces  # other streams get what write_pieces joined
            deadline = trio.current_time() + self.config.timeout_write
            with trio.CancelScope(deadline=deadline):
                await self.stream.send_all(data)
                return
        except SendStalled:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self._lose_peer()
            raise ClientDisconnected("the client closed the connection") from exc
        # The client stopped reading: holding the response (and the task) for
        # it forever is how slow readers exhaust a server.
        self._lose_peer()
        raise ClientDisconnected("the client stopped reading the response")

    def _lose_peer(self) -> None:
        self.peer_gone = True
        self.parser.send_failed()

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        headers = []
        if self.config.date_header:
            headers.append((b"date", _date_header.value()))
        if self.config.server_header:
            headers.append(_SERVER_HEADER)
        return headers

    async def refuse(self, error: PeerError, method: bytes | None) -> None:
        """Answer a request the server will not pass on, then close."""
        await self.write_error(error.status_code, error.reason, method=method)

    async def write_error(
        self,
        status: int,
        reason: str,
        *,
        method: bytes | None,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        """Write a complete plain-text error response; the connection then closes.

        The bytes are built here rather than through h11 because h11 may be
        in a state (a protocol error, a failed response) that forbids a new
        response, and this response always ends the connection.
        """
        body = reason.encode("utf-8") + b"\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *extra,
            *self.default_headers(),
        ]
        phrase = http.HTTPStatus(status).phrase.encode("ascii")
        head = b"HTTP/1.1 %d %s\r\n" % (status, phrase)
        head += b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n"
        # RFC 9110 section 9.3.2: a response to HEAD carries no body.
        data = head if method == b"HEAD" else head + body
        self.answered_error = True
        with contextlib.suppress(ClientDisconnected):
            await self.write(data)

    # -- one request -------------------------------------------------------

    async def _handle(self, request: h11.Request) -> bool:
        """Run the app for one request; return whether to keep the connection."""
        headers = self.headers
        if (
            self.asks_upgrade
            and self.config.ws != "none"
            and is_websocket_upgrade(request, headers)
        ):
            return await serve_websocket(self, request)
        try:
            scope = build_http_scope(
                request,
                self.info,
                root_path=self.config.root_path,
                state=self.shared.state,
                headers=headers,
            )
        except PeerError as error:
            await self.refuse(error, request.method)
            return False
        apply_proxy_headers(scope, self.info, self.config)
        limit = self.config.limit_concurrency
        if limit is not None and self.shared.in_flight >= limit:
            await self.write_error(
                503,
                "the server is at its concurrency limit; retry shortly",
                method=request.method,
                extra=((b"retry-after", b"1"),),
            )
            self.log_access(request, 503, 0, time.perf_counter())
            return False
        # --limit-max-requests: one increment and one comparison per request
        # (an int never equals None, the budget when there is no limit).
        shared = self.shared
        shared.requests += 1
        if shared.requests == shared.request_budget:
            shared.budget_spent.set()
        self.requests_served += 1
        exchange = Exchange(self, request, headers)
        if self.requests_served >= self.config.limit_requests_per_connection:
            exchange.cycle.close_after = True
        self.shared.in_flight += 1
        returned = False
        try:
            await exchange.run(scope)
            returned = True
        finally:
            self.shared.in_flight -= 1
            if not returned:
                await self._answer_cancelled(exchange)
        return await self._finish(exchange)

    async def _answer_cancelled(self, exchange: Exchange) -> None:
        """Tell a client whose request was cancelled by shutdown, if still possible.

        Runs while the cancellation propagates (it is re-raised after): a
        shielded, short write of a 503, so the client learns to retry rather
        than seeing the connection drop.
        """
        if not self.shared.shutting_down.is_set():
            return
        if exchange.cycle.wrote_anything or self.peer_gone:
            return
        with trio.CancelScope(shield=True), trio.move_on_after(_LAST_WORDS_SECONDS):
            await self.write_error(
                503,
                "the server is shutting down; retry",
                method=exchange.request.method,
                extra=((b"retry-after", b"1"),),
            )

    async def refuse_busy_client(self) -> None:
        """Answer a client over its connection limit: read one head, say 503."""
        request = await self._next_request(first=True)
        if request is not None:
            await self.write_error(
                503,
                "too many connections from this client",
                method=request.method,
                extra=((b"retry-after", b"1"),),
            )

    async def _finish(self, exchange: Exchange) -> bool:
        cycle = exchange.cycle
        request = exchange.request
        if cycle.phase is Phase.COMPLETE:
            self.log_access(
                request, cycle.status or 0, cycle.body_bytes, exchange.started
            )
            if exchange.failed or exchange.peer_error or cycle.close_after:
                return False
            return await self._recycle(exchange)
        if self.peer_gone:
            return False
        if cycle.wrote_anything:
            # A partial response cannot be finished or replaced: cut it, so
            # the client sees a truncated message rather than a wrong one.
            if not exchange.failed:
                error_logger.error(
                    "ASGI application returned before completing the response to %s",
                    exchange.describe(),
                )
            self.peer_gone = True  # no graceful close: abort
            return False
        if exchange.peer_error is not None:
            return False  # answered when the error was found
        if not exchange.failed:
            if self.inbox.eof:
                error_logger.debug(
                    "client left before a response to %s", exchange.describe()
                )
                return False
            error_logger.error(
                "ASGI application returned without sending a response to %s",
                exchange.describe(),
            )
        await self.write_error(500, "Internal Server Error", method=request.method)
        self.log_access(request, 500, 0, exchange.started)
        return False

    async def _recycle(self, exchange: Exchange) -> bool:
        """Make the connection ready for the next request, if it can be reused."""
        if exchange.cycle.must_close:
            return False  # HTTP/1.0, Connection: close, or a close-delimited body.
        if self.parser.their_state is h11.SEND_BODY:
            if exchange.expected_continue and not exchange.sent_continue:
                # The client is waiting for 100 Continue before sending its
                # body; it may never send it, so the stream cannot be reused.
                return False
            if self.body_less:
                # Without Content-Length or Transfer-Encoding a request has no
                # body (RFC 9112 section 6.3): it ended with its head, and
                # asking h11 to say so costs an event. The next request's
                # parser takes over whatever follows.
                return True
            if not await self._drain():
                return False
        # DONE, or MIGHT_SWITCH_PROTOCOL: an Upgrade request answered with an
        # ordinary response, which declines the switch (RFC 9110 section 7.8).
        return self.parser.their_state not in (h11.SEND_BODY, h11.ERROR, h11.CLOSED)

    async def _drain(self) -> bool:
        """Read and discard an unread request body, up to a bound.

        The end of a body-less request is usually already buffered: it is
        taken without awaiting, and a deadline scope is opened only when the
        body must really be read from the client.
        """
        budget = self.config.max_drain_bytes
        deadline = trio.current_time() + self.config.timeout_keep_alive
        while True:
            try:
                event = self.parser.next_event()
            except h11.RemoteProtocolError:
                return False
            if event is h11.NEED_DATA:
                if self.inbox.eof:
                    return False
                with trio.CancelScope(deadline=deadline) as scope:
                    await self.inbox.fill()
                if scope.cancelled_caught:
                    return False
                continue
            if isinstance(event, h11.EndOfMessage):
                return True
            if not isinstance(event, h11.Data):
                return False
            budget -= len(event.data)
            if budget < 0:
                return False

    def log_access(
        self, request: h11.Request, status: int, body_bytes: int, started: float
    ) -> None:
        observer = self.shared.observer
        if observer is None:
            observer = ResponseObserver.for_format(self.config.access_log_format)
            self.shared.observer = observer
        if observer.enabled():
            record = AccessRecord.of(
                request, self.info.client, status, body_bytes, started
            )
            observer.on_response(record)

    async def linger(self) -> None:
        """Close the write side, then read until the client closes, briefly."""
        if isinstance(self.stream, trio.abc.HalfCloseableStream):
            try:
                await self.stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return
        self.inbox.sink = discard
        with trio.CancelScope(deadline=trio.current_time() + LINGER_SECONDS):
            while not self.inbox.eof:
                await self.inbox.fill()


def _head_limits(config: Config) -> HeadLimits:
    """The head limits of a config.

    Made per connection: building them costs less than hashing a Config to
    look them up in a cache.
    """
    return HeadLimits(
        max_target=config.limit_request_line,
        max_fields=config.limit_request_fields,
        max_body=config.limit_request_body,
    )


def _parser(config: Config) -> h11.Connection:
    """A new h11 parser for a request, with the configured head size limit."""
    return h11.Connection(
        h11.SERVER, max_incomplete_event_size=config.h11_max_incomplete_event_size
    )


def _peer_reason(exc: h11.RemoteProtocolError) -> str:
    """A short reason for a malformed request, from h11's message."""
    if exc.error_status_hint == 431:
        return "request head too large"
    text = str(exc) or "malformed request"
    return f"malformed request: {text}"
