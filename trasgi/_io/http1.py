"""One HTTP/1.1 connection on trio: the request loop and the wire under it.

One connection is one task in the server's handler nursery. The request
loop reads through the connection's :class:`~trasgi._io.inbox.Inbox` only
when it needs bytes (backpressure), parses request heads with the
configured parser (h11, or httptools under h11's rules: see
:mod:`trasgi._protocol.h1_parsers`), checks them strictly, and hands each
request to a :class:`~trasgi._io.request_stream.RequestStream`, which runs
the application. The connection is that stream's
:class:`~trasgi._io.ports.RequestPort` (and a WebSocket session's
:class:`~trasgi._io.ports.WebSocketPort`): the body read on demand, the
framed response written through one :class:`~trasgi._io.writer.StreamWriter`.
Every timeout is a cancel scope around an await; nothing polls.
"""

from __future__ import annotations

import enum
import functools
import http
import math
import re
from collections.abc import Callable, Sequence

import attrs
import h11
import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._errors import ClientDisconnected, PeerError
from trasgi._io.inbox import Inbox, discard
from trasgi._io.proxy_protocol import read_proxy_header
from trasgi._io.request_stream import Outcome, RequestStream, admission, turn_away
from trasgi._io.server_headers import default_headers
from trasgi._io.shared import NEW_CONNECTION_GRACE, RETRY_AFTER, ServerShared
from trasgi._io.websocket import is_websocket_upgrade, serve_websocket
from trasgi._io.writer import StreamWriter, WriterState
from trasgi._observe.access import PLAIN, AccessNote, RequestLine
from trasgi._observe.logs import error_logger
from trasgi._protocol.cycle import H1Out, ResponseCycle
from trasgi._protocol.extensions import TRAILERS
from trasgi._protocol.h1_parsers import H1Event, H1Parser, parser_factory
from trasgi._protocol.h2_adaptor import H2Upgrade
from trasgi._protocol.h2c import (
    SWITCHING_TO_H2C,
    asks_h2c,
    h2_fields,
    settings_payload,
)
from trasgi._protocol.scope import ConnectionInfo, build_http_scope
from trasgi._protocol.strict import (
    ChunkedFraming,
    HeadLimits,
    check_head,
    readable_parser_message,
)
from trasgi._protocol.ws_handshake import UpgradeHandshake

#: After the last response on a connection, how long to keep reading what the
#: client still sends before closing, so that unread bytes do not turn the
#: close into a reset that destroys that response (RFC 9112 section 9.6).
LINGER_SECONDS = 2.0

#: While a response is being produced, pipelined bytes of the next request are
#: read (to notice a disconnect) only while fewer than this many are held; so
#: at most this plus one read's worth is buffered before reading pauses.
MAX_PIPELINED_BYTES = 64 * 1024

#: The interim response that lets a waiting client send its body.
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: The fields that give a request a body (RFC 9112 section 6.3).
_BODY_FIELDS = (b"content-length", b"transfer-encoding")


class CloseMode(enum.Enum):
    """How a finished connection is closed."""

    #: The input was read to its end: close at once.
    GRACEFUL = "graceful"
    #: Input may still be on its way (an error answer, an unread body): shut
    #: the write side, then read and discard briefly before closing, so that
    #: unread bytes do not reset the last response (RFC 9112 section 9.6).
    LINGER = "linger"
    #: The client is gone or a response was cut: close without waiting.
    ABORT = "abort"


@attrs.frozen
class SwitchToH2:
    """The connection goes on as HTTP/2.

    Either the client opened with the HTTP/2 preface (prior knowledge, RFC
    9113 section 3.3) or an ``Upgrade: h2c`` request was accepted.

    Attributes:
        received: Every byte read and not yet parsed (the preface first).
        upgrade: The request that upgraded, to answer as stream 1.
    """

    received: bytes
    upgrade: H2Upgrade | None = None


class _PriorKnowledge(Exception):
    """Raised from deep in the head parsing when the preface is recognised."""

    def __init__(self, received: bytes) -> None:
        super().__init__("HTTP/2 connection preface")
        self.received = received


class _Upgraded(Exception):
    """Raised from a request's handling once ``101 Switching Protocols`` is sent."""

    def __init__(self, switch: SwitchToH2) -> None:
        super().__init__("upgraded to h2c")
        self.switch = switch


class _InvalidPreface(Exception):
    """A new connection's first bytes are neither HTTP/1.x nor the HTTP/2 preface."""


#: The end of an HTTP/1.x request line: " HTTP/" and a version.
_HTTP1_LINE_END = re.compile(rb" HTTP/[0-9]")


class ConnectionPhase(enum.Enum):
    """Where a connection is between requests; it decides how long to wait."""

    #: Accepted, no request yet: bounded by the header deadline from the
    #: accept, and by a short grace once shutdown begins.
    NEW = "new"
    #: At least one response sent: idle time is bounded by the keep-alive
    #: timeout, and shutdown ends the wait at once.
    KEPT_ALIVE = "kept alive"


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


class HTTP11Connection:
    """The request loop of one HTTP/1.1 connection, and the port of its requests."""

    # Slots: an idle connection is mostly this object and its parser, and
    # thousands may be open at once.
    __slots__ = (
        "_chunks",
        "_current_parser",
        "_new_parser",
        "_stashed",
        "answered_error",
        "app",
        "asks_upgrade",
        "body_less",
        "closing",
        "config",
        "headers",
        "inbox",
        "info",
        "limits",
        "phase",
        "requests_served",
        "shared",
        "stream",
        "writer",
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
        self.writer = StreamWriter(stream, config.timeout_write)
        self.app = app
        self.config = config
        self.info = info
        self.shared = shared
        self.phase = ConnectionPhase.NEW
        #: Set when the connection must end without a graceful close.
        self.closing: CloseMode | None = None
        #: The parser of the current request, made when its bytes arrive (see
        #: :attr:`parser`).
        self._current_parser: H1Parser | None = None
        self._new_parser = parser_factory(
            config.http, config.h11_max_incomplete_event_size
        )
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
        #: A body event read ahead while coalescing a body's last piece.
        self._stashed: H1Event | None = None
        #: The strict check of the current request's chunked framing, if
        #: chunked: it sees every byte the parser is fed.
        self._chunks: ChunkedFraming | None = None

    # -- the connection's facts (ports.ConnectionFacts) ----------------------

    @property
    def peer_lost(self) -> bool:
        # The state itself, not the writer's property: read on every send().
        return self.writer.state is WriterState.LOST

    @property
    def peer_closed(self) -> bool:
        return self.inbox.eof

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        return default_headers(self.config)

    def log_access(
        self,
        head: RequestLine,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> None:
        self.shared.log_access(
            self.config, self.info.client, head, status, body_bytes, started, note
        )

    # -- the connection's life -----------------------------------------------

    async def accept_proxy_header(self) -> bool:
        """Read the PROXY protocol header, if configured; False to close."""
        if self.config.proxy_protocol == "off":
            return True
        received = await read_proxy_header(self.inbox, self.config, self.info)
        self.inbox.sink = self.feed_parser
        if received is None:
            return False
        self.info, rest = received
        if rest:
            self.parser.receive_data(rest)
        if self.inbox.eof:
            self.parser.receive_data(b"")
        return True

    async def run(self) -> CloseMode | SwitchToH2:
        """Serve requests until the connection ends; return how to close it.

        A client that opens with the HTTP/2 preface gets :class:`SwitchToH2`.
        """
        try:
            request = await self._next_request()
        except _PriorKnowledge as preface:
            return SwitchToH2(preface.received)
        try:
            while request is not None and await self._handle(request):
                self._next_cycle()
                request = await self._next_request()
        except _Upgraded as upgraded:
            return upgraded.switch
        return self._close_mode()

    async def refuse_busy_client(self) -> CloseMode:
        """Answer a client over its connection limit: read one head, say 503."""
        try:
            request = await self._next_request()
        except _PriorKnowledge:
            return CloseMode.LINGER  # not worth an HTTP/2 session to refuse
        if request is not None:
            await turn_away(
                self,
                request,
                PeerError(503, "too many connections from this client", RETRY_AFTER),
            )
        return CloseMode.LINGER

    def _close_mode(self) -> CloseMode:
        """How to close: at once, after lingering, or cut.

        Closing a socket with unread bytes in the kernel makes it send a
        reset, which can destroy a response the client has not read yet (RFC
        9112 section 9.6). That risk exists after an error answer (the client
        may still be sending) or when input was left unread; a connection
        whose input was consumed to its end closes at once, saving a round
        trip per connection.
        """
        if self.writer.lost or self.closing is CloseMode.ABORT:
            return CloseMode.ABORT
        if self.answered_error or not self._read_to_the_end() or self.buffered():
            # The last case: the start of a request never answered.
            return CloseMode.LINGER
        return CloseMode.GRACEFUL

    def _read_to_the_end(self) -> bool:
        """Whether the request was read to its end, taking an end already buffered.

        A request without a body ends where its head does, but h11 reports
        that end only when asked: asking here (no waiting) spares a body-less
        request answered with ``Connection: close`` the linger.
        """
        parser = self.parser
        if self._framing_fault() is not None:
            return False
        while parser.their_state is h11.SEND_BODY:
            try:
                if parser.next_event() is h11.NEED_DATA:
                    return False
            except h11.RemoteProtocolError:
                return False
        return parser.their_state is not h11.ERROR

    def _next_cycle(self) -> None:
        """Start parsing the next request with a fresh h11 connection.

        Responses are framed by :class:`~trasgi._protocol.cycle.ResponseCycle`,
        not sent through h11, so h11's own cycle cannot be restarted; a new
        parser takes over whatever the client already pipelined. With nothing
        pipelined, none is made until bytes arrive: an idle kept-alive
        connection holds no parser.
        """
        leftover, closed = self.parser.trailing_data
        self._current_parser = None
        self._chunks = None
        self.phase = ConnectionPhase.KEPT_ALIVE
        self.headers = []  # not held while the connection waits
        if leftover:
            self.parser.receive_data(bytes(leftover))
        if closed:
            self.parser.receive_data(b"")
        self.inbox.sink = self.feed_parser

    @property
    def parser(self) -> H1Parser:
        """The parser of the current request, made on first use."""
        parser = self._current_parser
        if parser is None:
            parser = self._current_parser = self._new_parser()
        return parser

    def feed_parser(self, data: bytes) -> None:
        """The inbox's sink while parsing HTTP: bytes, or b"" at the end."""
        if self._chunks is not None:
            self._chunks.feed(data)
        self.parser.receive_data(data)

    def _framing_fault(self) -> str | None:
        """Why the current chunked body is refused, once it is."""
        chunks = self._chunks
        return None if chunks is None else chunks.fault

    def buffered(self) -> int:
        parser = self._current_parser
        return 0 if parser is None else len(parser.trailing_data[0])

    # -- reading a head ------------------------------------------------------

    async def _next_request(self) -> h11.Request | None:
        """Read the next request head; None when the connection should close.

        A kept-alive connection may stay idle (no byte of a next request) for
        the keep-alive timeout. The header-read deadline then bounds the head
        itself: from the accept for a new connection, from the first byte of
        the head on a kept-alive one, so that raising the keep-alive timeout
        (above a load balancer's idle timeout, say) is never silently capped.
        """
        # Usually the request is here already (it came with the connection,
        # or while the previous response was written): take it without the
        # cancel scope that waiting for it needs. A new connection waits for
        # its first bytes under the header deadline instead.
        if (
            not self.buffered()
            and not self.inbox.fill_nowait()
            and self.phase is ConnectionPhase.KEPT_ALIVE
            and not await self._wait_for_bytes()
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
                return await self._read_head()
        except _InvalidPreface:
            # Closed without an answer, see _is_invalid_preface.
            error_logger.debug(
                "closing connection: its first bytes are neither HTTP/1.x nor "
                "the HTTP/2 preface"
            )
            return None
        except PeerError as error:
            await turn_away(self, None, error)
            return None
        if self.buffered():
            # A head began but did not finish in time (RFC 9110 section 15.5.9).
            late = PeerError(408, "request head not received in time")
            await turn_away(self, None, late)
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
            if self._is_invalid_preface(buffered):
                raise _InvalidPreface from None
            raise PeerError(exc.error_status_hint, _peer_reason(exc)) from None
        if isinstance(event, h11.Request):
            if (
                event.method == b"PRI"
                and self.phase is ConnectionPhase.NEW
                and self.config.http2
            ):
                # "PRI * HTTP/2.0" parses as a request line: the HTTP/2
                # connection preface (RFC 9113 section 3.4).
                raise _PriorKnowledge(bytes(buffered))
            self._check_head(event, buffered[: len(buffered) - self.buffered()])
            return event
        if event is h11.NEED_DATA:
            return h11.NEED_DATA
        return None  # ConnectionClosed: the client left between requests.

    def _is_invalid_preface(self, buffered: bytes) -> bool:
        """Whether a new connection's first line is not HTTP/1.x at all.

        With HTTP/2 on, a plain-port client may be speaking HTTP/2 with prior
        knowledge: to it, anything but a request line of HTTP/1.x is an
        invalid connection preface, a connection error (RFC 9113 section
        3.4) after which the connection closes. An HTTP/1.1 400 would be
        noise on its wire; a request line that names an HTTP/1 version
        still gets its 400.
        """
        if self.phase is not ConnectionPhase.NEW or not self.config.http2:
            return False
        line = bytes(buffered).partition(b"\n")[0]
        return _HTTP1_LINE_END.search(line) is None

    async def _read_head(self) -> h11.Request | None:
        while True:
            event = self._try_head()
            if event is None or isinstance(event, h11.Request):
                return event
            if self.buffered() or self.inbox.eof:
                await self.inbox.fill()
            elif not await self._wait_for_bytes():
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
                if name == b"transfer-encoding":
                    # h11 has made sure it is exactly "chunked": read the
                    # framing strictly beside it, from the body's first byte.
                    self._chunks = ChunkedFraming(
                        self.config.h11_max_incomplete_event_size
                    )
                    self._chunks.feed(self.parser.trailing_data[0])
            elif name == b"upgrade":
                self.asks_upgrade = True

    async def _wait_for_bytes(self) -> bool:
        """Wait for a request's first bytes; False when the connection should close.

        A new connection is bounded by the header-read deadline around this
        wait, and by :data:`NEW_CONNECTION_GRACE` once shutting down; between
        requests, the keep-alive timeout applies, and shutdown ends the wait.
        A cancel scope that shutdown can cancel (or shorten), rather than a
        task waiting on the shutdown event: this wait happens once per request.
        """
        shared = self.shared
        if self.phase is ConnectionPhase.NEW:
            waiting = shared.new
            grace = NEW_CONNECTION_GRACE if shared.shutting_down.is_set() else math.inf
        elif shared.shutting_down.is_set():
            return False
        else:
            waiting = shared.idle
            grace = self.config.timeout_keep_alive
        with trio.CancelScope(deadline=trio.current_time() + grace) as scope:
            waiting.add(scope)
            try:
                await self.inbox.fill()
                return True
            finally:
                waiting.discard(scope)
        return False

    # -- one request -----------------------------------------------------------

    async def _handle(self, request: h11.Request) -> bool:
        """Run the app for one request; return whether to keep the connection."""
        headers = self.headers
        config = self.config
        if self.asks_upgrade and config.http2 and asks_h2c(headers):
            upgrade = await self._read_h2c_upgrade(request)
            if upgrade is None:
                return False  # refused (400, 408, 413), or the client left
            await self.writer.write(SWITCHING_TO_H2C)
            raise _Upgraded(SwitchToH2(bytes(self.parser.trailing_data[0]), upgrade))
        if (
            self.asks_upgrade
            and config.ws != "none"
            and is_websocket_upgrade(request, headers)
        ):
            await serve_websocket(
                self, self.app, request, functools.partial(UpgradeHandshake, request)
            )
            return False  # an upgraded or refused connection is never reused
        try:
            scope = build_http_scope(
                request,
                self.info,
                root_path=config.root_path,
                state=self.shared.state,
                headers=headers,
            )
        except PeerError as error:
            await turn_away(self, request, error)
            return False
        refusal = admission(self, scope)
        if refusal is not None:
            await turn_away(self, request, refusal)
            return False
        self.requests_served += 1
        cycle = ResponseCycle(
            request.method,
            request.http_version,
            keep_alive=wants_keep_alive(request, headers),
            extra_headers=self.default_headers(),
            trailers_accepted=TRAILERS in scope["extensions"],
        )
        if self.requests_served >= config.limit_requests_per_connection:
            cycle.close_after = True
        stream = RequestStream(
            self,
            request,
            cycle,
            expects_continue=self.parser.client_is_waiting_for_100_continue,
        )
        self._stashed = None
        outcome = await stream.run(self.app, scope)
        if outcome is Outcome.REUSABLE:
            return await self._recycle(stream, cycle)
        if outcome is Outcome.ABORT:
            self.closing = CloseMode.ABORT
        return False

    async def _read_h2c_upgrade(self, request: h11.Request) -> H2Upgrade | None:
        """Read an ``Upgrade: h2c`` request whole; None when it is refused.

        RFC 7540 section 3.2: the body comes before any HTTP/2 frame, so it
        is read here, within the body limit and the body-read timeout, and
        becomes stream 1's body. An ``HTTP2-Settings`` that is not exactly one
        valid SETTINGS payload gets 400 (section 3.2.1).
        """
        settings = settings_payload(self.headers)
        if settings is None:
            invalid = PeerError(400, "invalid HTTP2-Settings header")
            await turn_away(self, request, invalid)
            return None
        try:
            body = await self._read_whole_body()
        except PeerError as error:
            await turn_away(self, request, error)
            return None
        if body is None:
            return None  # the client left
        fields = h2_fields(request, self.headers, self.info.scheme)
        return H2Upgrade(settings, fields, body)

    async def _read_whole_body(self) -> bytes | None:
        """The request body, whole; None if the client left before its end.

        Error handling:
            Raises :class:`PeerError`: 413 past the body limit, 408 when it
            does not arrive within the body-read timeout, 400 if malformed.
        """
        body = bytearray()
        limit = self.config.limit_request_body
        with trio.move_on_after(self.config.timeout_body_read):
            while True:
                event = await self._next_body_event()
                if isinstance(event, h11.EndOfMessage):
                    return bytes(body)
                if not isinstance(event, h11.Data):
                    return None
                body += event.data
                if limit is not None and len(body) > limit:
                    raise PeerError(413, "request body too large")
        raise PeerError(408, "request body not received in time")

    async def _recycle(
        self, stream: RequestStream[H1Out], cycle: ResponseCycle
    ) -> bool:
        """Make the connection ready for the next request, if it can be reused."""
        if cycle.must_close:
            return False  # HTTP/1.0, Connection: close, or a close-delimited body.
        if self.parser.their_state is h11.SEND_BODY:
            if stream.continue_withheld:
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
            if self._framing_fault() is not None:
                return False
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

    # -- the request port (ports.RequestPort) ----------------------------------

    async def read_body(self) -> tuple[bytes, bool] | None:
        """The next piece of the request body, and whether more follows.

        The end of the body is taken with the last piece when it is already
        buffered, so a small body arrives in one message.

        Error handling:
            Raises :class:`PeerError` when the body is malformed.
        """
        event = self._stashed or await self._next_body_event()
        self._stashed = None
        if isinstance(event, h11.EndOfMessage):
            return b"", False
        if not isinstance(event, h11.Data):
            return None  # ConnectionClosed mid-body
        try:
            following = self.parser.next_event()
        except h11.RemoteProtocolError:
            following = h11.NEED_DATA  # reported by the next read
        if isinstance(following, h11.EndOfMessage):
            return bytes(event.data), False
        if following is not h11.NEED_DATA:
            self._stashed = following
        return bytes(event.data), True

    async def _next_body_event(self) -> H1Event:
        """Read the next request body event, asking the inbox for bytes as needed.

        Error handling:
            Raises :class:`PeerError` when the body is malformed.
        """
        while True:
            fault = self._framing_fault()
            if fault is not None:
                raise PeerError(400, f"malformed request: {fault}")
            try:
                event = self.parser.next_event()
            except h11.RemoteProtocolError as exc:
                raise PeerError(exc.error_status_hint, _peer_reason(exc)) from None
            if event is not h11.NEED_DATA:
                return event
            await self.inbox.fill()

    async def send_continue(self) -> None:
        await self.writer.write(CONTINUE)

    async def write(self, pieces: Sequence[H1Out]) -> None:
        await self.writer.write_out(pieces)

    async def wait_for_disconnect(self) -> None:
        """Read on until the client closes, holding at most a bounded backlog.

        Pipelined bytes of a next request are kept for it; past
        :data:`MAX_PIPELINED_BYTES` reading pauses until the caller (the
        request stream, when its response is done) cancels this wait.
        """
        while not self.inbox.eof:
            if self.buffered() > MAX_PIPELINED_BYTES:
                await trio.sleep_forever()
            await self.inbox.fill()

    async def refuse(self, error: PeerError, head: RequestLine | None) -> int:
        """Write a complete plain-text error response; the connection then closes.

        Returns the bytes of body written: none for HEAD or a client gone.

        The bytes are built here rather than through h11 because h11 may be
        in a state (a protocol error, a failed response) that forbids a new
        response, and this response always ends the connection.
        """
        body = error.reason.encode("utf-8") + b"\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *error.headers,
            *self.default_headers(),
        ]
        phrase = http.HTTPStatus(error.status_code).phrase.encode("ascii")
        data = b"HTTP/1.1 %d %s\r\n" % (error.status_code, phrase)
        data += b"".join(b"%s: %s\r\n" % pair for pair in headers) + b"\r\n"
        # RFC 9110 section 9.3.2: a response to HEAD carries no body.
        if head is None or head.method != b"HEAD":
            data += body
        else:
            body = b""
        self.answered_error = True
        try:
            await self.writer.write(data)
        except ClientDisconnected:
            return 0
        return len(body)

    # -- the WebSocket port (ports.WebSocketPort) ------------------------------

    def take_over(self, sink: Callable[[bytes], None]) -> None:
        """Hand the stream to ``sink``, with what h11 read past the head."""
        trailing, closed = self.parser.trailing_data
        self.inbox.sink = sink
        if trailing:
            sink(bytes(trailing))
        if closed:
            sink(b"")

    async def fill(self) -> None:
        await self.inbox.fill()

    def abort(self) -> None:
        self.closing = CloseMode.ABORT

    async def close_now(self) -> None:
        await trio.aclose_forcefully(self.stream)

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


def _peer_reason(exc: h11.RemoteProtocolError) -> str:
    """A short reason for a malformed request, from h11's message."""
    if exc.error_status_hint == 431:
        return "request head too large"
    text = readable_parser_message(str(exc)) or "malformed request"
    return f"malformed request: {text}"
