"""One HTTP/2 connection on trio: a reader, and a task per stream.

The connection's task reads: every chunk goes to the pure
:class:`~trasgi._protocol.h2_adaptor.H2Adaptor`, whose events start streams,
feed their bodies and wake their senders. Reading never waits for an
application, so one slow stream cannot stall its siblings (head-of-line
blocking). Each stream is a task in the connection's nursery running the
same :class:`~trasgi._io.request_stream.RequestStream` as HTTP/1.1, with an
:class:`H2Stream` as its port.

Flow control is the backpressure: a stream's DATA is acknowledged (the
windows opened again) only as its application consumes it through
``receive()``, so a client can be ahead of an application by one stream
window at most, and the connection window bounds a connection's total. A
sender waits for the peer's window, under the write timeout, without
holding anything that other streams need.

All output goes through one lock and one :class:`~trasgi._io.writer.StreamWriter`:
frames leave in the order the adaptor queued them. Senders write behind: a
stream queues its frames and goes on, and the connection's writer task
writes what every stream queued since its last write in one call. Past
:data:`WRITE_BEHIND_BYTES` queued, a sender writes itself, so a peer that
does not read blocks the senders and the reading: it cannot make the server
queue answers (to PINGs, say) without bound.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
from collections.abc import Callable, Sequence

import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._errors import ClientDisconnected, PeerError
from trasgi._io.file_reads import read_region
from trasgi._io.inbox import Inbox, discard
from trasgi._io.request_stream import Outcome, RequestStream, admission, turn_away
from trasgi._io.server_headers import default_headers
from trasgi._io.shared import ServerShared
from trasgi._io.websocket import CLOSE_TIMEOUT, serve_websocket
from trasgi._io.writer import StreamWriter
from trasgi._observe.access import PLAIN, AccessNote, NoRequestLine, RequestLine
from trasgi._observe.logs import error_logger
from trasgi._protocol.extensions import TRAILERS, FileRegion
from trasgi._protocol.h2_adaptor import (
    BodyData,
    BodyEnd,
    ErrorCode,
    Event,
    FloodLimits,
    H2Adaptor,
    H2Settings,
    H2Upgrade,
    PeerReset,
    RequestHead,
    WindowOpened,
)
from trasgi._protocol.h2_cycle import (
    H2Out,
    H2ResponseCycle,
    ResponseHead,
    ResponseTrailers,
)
from trasgi._protocol.h2_request import H2Request, MalformedRequest, parse_h2_request
from trasgi._protocol.scope import ConnectionInfo, build_http_scope
from trasgi._protocol.strict import HeadLimits
from trasgi._protocol.ws_handshake import ConnectHandshake

#: The client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Frames queued past this many bytes make a sender write them itself,
#: waiting for the peer (backpressure). Below it a sender goes on, and the
#: connection's writer carries the frames of every stream that ran since its
#: last write in one write: one system call for many small responses.
WRITE_BEHIND_BYTES = 64 * 1024
#: How much of a file a stream reads at a time: a few frames' worth, so the
#: read in a worker thread is amortised and the memory held stays small.
FILE_CHUNK = 256 * 1024


def settings_of(config: Config) -> H2Settings:
    """What an HTTP/2 connection announces, from the configuration."""
    return H2Settings(
        max_concurrent_streams=config.limit_h2_concurrent_streams,
        stream_window=config.limit_h2_stream_window,
        connection_window=config.limit_h2_connection_window,
        max_header_list_size=config.limit_h2_header_list_size,
        # RFC 8441 section 3: WebSockets over HTTP/2 need extended CONNECT.
        enable_connect_protocol=config.ws != "none",
    )


def floods_of(config: Config) -> FloodLimits:
    """The per-second frame budgets, from the configuration."""
    return FloodLimits(
        resets=config.limit_h2_resets_per_second,
        control_frames=config.limit_h2_control_frames_per_second,
        empty_frames=config.limit_h2_empty_frames_per_second,
    )


class Draining(enum.Enum):
    """Where the connection is in its life."""

    OPEN = "open"
    #: GOAWAY sent: streams in flight finish, new ones are refused.
    DRAINING = "draining"
    #: Nothing more is read: the peer left or the connection failed.
    OVER = "over"


class StreamState(enum.Enum):
    """Where one stream is, as its port sees it."""

    OPEN = "open"
    #: The peer reset the stream, or the connection ended under it.
    GONE = "gone"
    #: The server reset it (an aborted response, a stalled peer).
    RESET = "reset"


class Output(enum.Enum):
    """How far the server's side of a stream is."""

    #: Nothing sent yet (an interim 100 aside).
    NOTHING = "nothing"
    #: A response head was queued: the server's own error answer must not
    #: follow the application's.
    STARTED = "started"
    #: END_STREAM was queued: the server's side is closed.
    ENDED = "ended"


class HTTP2Connection:
    """One HTTP/2 connection: its reader, its streams, its single writer.

    Args:
        stream: The connection's stream.
        inbox: The connection's reader, if bytes were already read through it
            (the preface of a prior-knowledge connection).
        writer: The connection's writer, when it has one already.
        received: Bytes already read and not yet parsed.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: ASGIApp,
        config: Config,
        info: ConnectionInfo,
        shared: ServerShared,
        *,
        inbox: Inbox | None = None,
        writer: StreamWriter | None = None,
        received: bytes = b"",
        upgrade: H2Upgrade | None = None,
    ) -> None:
        self.stream = stream
        self._upgrade = upgrade
        self.app = app
        self.config = config
        self.info = info
        self.shared = shared
        self.writer = writer or StreamWriter(stream, config.timeout_write)
        self.inbox = inbox or Inbox(stream, discard)
        self.adaptor = H2Adaptor(settings_of(config), floods_of(config))
        self.limits = HeadLimits(
            max_target=config.limit_request_line,
            max_fields=config.limit_request_fields,
            max_body=config.limit_request_body,
        )
        self.streams: dict[int, H2Stream] = {}
        self.draining = Draining.OPEN
        self._received = received
        self._write_lock = trio.Lock()
        #: Frames taken from the adaptor, waiting for the writer.
        self._outbox = bytearray()
        #: Where the writer waits for frames to write.
        self._frames_queued = trio.lowlevel.ParkingLot()
        #: Woken whenever a stream ends, for the wait for the last one.
        self.streams_changed = trio.lowlevel.ParkingLot()
        self._nursery: trio.Nursery | None = None
        self._reading = trio.CancelScope()
        #: The scope of the read under way, to make it idle time when the
        #: last stream ends.
        self._fill_scope: trio.CancelScope | None = None
        #: Stream identifiers above this were opened after GOAWAY: refused.
        self._last_accepted = 2**31 - 1

    # -- the connection's life -------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves, an error, or shutdown."""
        upgrade = self._upgrade
        self.adaptor.start(upgrade.settings if upgrade is not None else None)
        self.inbox.sink = self._on_bytes
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._goaway_on_shutdown)
            nursery.start_soon(self._write_behind)
            if upgrade is not None:
                self._serve_upgrade(upgrade)
            if self._received:
                self._on_bytes(self._received)
                self._received = b""
            with contextlib.suppress(ClientDisconnected), self._reading:
                await self.flush()
                await self._read()
            self._over()
            self._count_ending()
            await self._flush_quietly()  # the GOAWAY of a failure, if any
            if not self.writer.lost and not self._failed():
                await self._close_when_idle()
            # A connection error abandons its streams (RFC 9113 5.4.1); the
            # shutdown watcher is no longer needed either way.
            nursery.cancel_scope.cancel()
        self.inbox.sink = discard

    def _count_ending(self) -> None:
        ended = self.adaptor.ended
        if ended is not None and ended.by_peer:
            self.shared.h2.goaways_received += 1
        elif ended is not None:
            self.shared.h2.goaways_sent += 1

    def _failed(self) -> bool:
        ended = self.adaptor.ended
        if ended is None or ended.error_code == ErrorCode.NO_ERROR:
            return False
        error_logger.debug("closing HTTP/2 connection: %s", ended.reason)
        return True

    async def _read(self) -> None:
        """Read until the connection ends; wait idle for the keep-alive timeout."""
        while self.adaptor.ended is None and not self.inbox.eof:
            with trio.CancelScope() as scope:
                self._fill_scope = scope
                if not self.streams:
                    self._arm_idle(scope)
                try:
                    await self.inbox.fill()
                finally:
                    self._fill_scope = None
                    self.shared.idle.discard(scope)
            if scope.cancelled_caught:
                # Idle for the keep-alive timeout, or shutdown closed it.
                self.adaptor.goaway(ErrorCode.NO_ERROR)
                return
            await self.send_soon()

    def _arm_idle(self, scope: trio.CancelScope) -> None:
        """No stream open: the wait is idle time (shutdown may end it)."""
        scope.deadline = trio.current_time() + self.config.timeout_keep_alive
        self.shared.idle.add(scope)

    def _over(self) -> None:
        """Nothing more is read: every stream still open learns its peer left."""
        self.draining = Draining.OVER
        for stream in self.streams.values():
            stream.gone()
        self.streams_changed.unpark_all()

    async def _close_when_idle(self) -> None:
        """After the reading: let the streams finish, then say goodbye."""
        while self.streams:
            await self.streams_changed.park()
        with contextlib.suppress(ClientDisconnected):
            self.adaptor.goaway(ErrorCode.NO_ERROR)
            self.shared.h2.goaways_sent += 1
            await self.flush()

    async def _goaway_on_shutdown(self) -> None:
        """Graceful shutdown: GOAWAY, then refuse new streams (RFC 9113 6.8)."""
        await self.shared.shutting_down.wait()
        if self.draining is not Draining.OPEN:
            return
        self.draining = Draining.DRAINING
        self._last_accepted = self.adaptor.last_stream_id
        self.adaptor.announce_goaway()
        self.shared.h2.goaways_sent += 1
        await self._flush_quietly()
        if not self.streams:
            self._reading.cancel()

    def stream_done(self, stream: H2Stream) -> None:
        """A stream's task ended: it no longer counts, and may be the last."""
        self.streams.pop(stream.stream_id, None)
        if self.streams_changed:
            self.streams_changed.unpark_all()
        if self.streams:
            return
        if self.draining is Draining.DRAINING:
            self._reading.cancel()
        elif self._fill_scope is not None:
            self._arm_idle(self._fill_scope)

    # -- reading ---------------------------------------------------------------

    def _on_bytes(self, data: bytes) -> None:
        """The inbox's sink: every event of what arrived, handled at once."""
        for event in self.adaptor.receive(data, trio.current_time()):
            self._on_event(event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, RequestHead):
            self._open_stream(event)
        elif isinstance(event, BodyData):
            stream = self.streams.get(event.stream_id)
            if stream is None:
                # A stream already answered: its data is never read, but its
                # bytes must still be given back to the connection's window.
                self.adaptor.acknowledge(event.stream_id, event.flow_length)
            else:
                stream.feed(event.data, event.flow_length)
        elif isinstance(event, BodyEnd):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.end_of_body()
        elif isinstance(event, PeerReset):
            if event.by_peer:
                self.shared.h2.resets_received += 1
            else:
                self.shared.h2.resets_sent += 1  # h2's answer to a stream error
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.gone()
        elif isinstance(event, WindowOpened):
            self._window_opened(event.stream_id)
        # ConnectionEnded: the read loop sees adaptor.ended and stops.

    def _serve_upgrade(self, upgrade: H2Upgrade) -> None:
        """The request that upgraded is stream 1, complete, its body known."""
        self.shared.h2.streams += 1
        stream = H2Stream(self, 1, body_ended=True)
        if upgrade.body:
            stream.feed(upgrade.body, 0)  # not flow-controlled: read already
        self.streams[1] = stream
        assert self._nursery is not None
        self._nursery.start_soon(
            self._serve_stream, stream, RequestHead(1, upgrade.fields, True)
        )

    def _window_opened(self, stream_id: int) -> None:
        """Wake the senders the WINDOW_UPDATE concerns: one stream, or all."""
        if stream_id:
            stream = self.streams.get(stream_id)
            if stream is not None:
                stream.window.unpark_all()
        else:
            for stream in self.streams.values():
                stream.window.unpark_all()

    def _open_stream(self, head: RequestHead) -> None:
        counts = self.shared.h2
        counts.streams += 1
        refusal = self._refusal(head)
        if refusal is not None:
            counts.resets_sent += 1
            self.adaptor.refuse(head.stream_id, refusal, trio.current_time())
            return
        stream = H2Stream(self, head.stream_id, body_ended=head.end_stream)
        self.streams[head.stream_id] = stream
        assert self._nursery is not None
        self._nursery.start_soon(self._serve_stream, stream, head)

    def _refusal(self, head: RequestHead) -> ErrorCode | None:
        """Why a new stream is refused, if it is (RFC 9113 sections 5.1.2, 8.7)."""
        if head.stream_id > self._last_accepted:
            return ErrorCode.REFUSED_STREAM  # opened after our GOAWAY
        if len(self.streams) >= self.config.limit_h2_concurrent_streams:
            # A stream counts until its task ends, not until the peer resets
            # it: resetting does not make room (rapid reset, CVE-2023-44487).
            return ErrorCode.REFUSED_STREAM
        return None

    # -- one stream ------------------------------------------------------------

    async def _serve_stream(self, stream: H2Stream, head: RequestHead) -> None:
        try:
            await self._answer(stream, head)
        except ClientDisconnected:
            pass  # a refusal the client did not stay for
        finally:
            if stream.body_pending and stream.state is StreamState.OPEN:
                # The response is complete before the request: the client
                # may stop sending (RFC 9113 section 8.1).
                stream.reset(ErrorCode.NO_ERROR)
            self.stream_done(stream)
            with contextlib.suppress(ClientDisconnected):
                await self.send_soon()

    async def _answer(self, stream: H2Stream, head: RequestHead) -> None:
        config = self.config
        try:
            request = parse_h2_request(head.headers, self.limits)
            stream.request = request
            scope = build_http_scope(
                request,
                self.info,
                root_path=config.root_path,
                state=self.shared.state,
                headers=list(request.headers),
                http_version="2",
            )
        except PeerError as error:
            await turn_away(stream, stream.request or NoRequestLine(b"2"), error)
            return
        except MalformedRequest:
            stream.reset_malformed()
            return
        if request.protocol is not None:
            await self._serve_extended_connect(stream, request)
            return
        refusal = admission(stream, scope)
        if refusal is not None:
            await turn_away(stream, request, refusal)
            return
        cycle = H2ResponseCycle(
            request.method,
            self.default_headers(),
            trailers_accepted=TRAILERS in scope["extensions"],
        )
        exchange = RequestStream(
            stream,
            request,
            cycle,
            # RFC 9113 section 8.1: an interim 100 as a HEADERS frame.
            expects_continue=request.expects_continue,
        )
        outcome = await exchange.run(self.app, scope)
        if outcome is Outcome.ABORT:
            # A partial response cannot be finished: reset the stream only;
            # the connection and its other streams carry on.
            stream.reset(ErrorCode.INTERNAL_ERROR)

    async def _serve_extended_connect(
        self, stream: H2Stream, request: H2Request
    ) -> None:
        """An extended CONNECT (RFC 8441): a WebSocket over this stream."""
        assert request.protocol is not None
        if self.config.ws == "none":
            # Not announced in SETTINGS: no client may send one (section 4).
            error = PeerError(400, "extended CONNECT is not enabled on this server")
            await turn_away(stream, request, error)
            return
        handshake = functools.partial(
            ConnectHandshake, request.protocol, request.headers
        )
        await serve_websocket(stream, self.app, request, handshake, http_version="2")
        # RFC 8441 section 5: END_STREAM stands for the TCP FIN, and a reset
        # for an abnormal close, so the client's END_STREAM is awaited (as
        # its close frame was) before a reset would end the stream.
        await stream.end_output()
        with trio.move_on_after(CLOSE_TIMEOUT):
            await stream.drain_request()

    # -- writing -----------------------------------------------------------------

    def stop_reading_if_ended(self) -> None:
        """After a send: if it ended the connection, stop reading at once."""
        if self.adaptor.ended is not None:
            self._reading.cancel()

    async def flush(self) -> None:
        """Write whatever was queued, in order, now.

        Error handling:
            Raises :class:`ClientDisconnected` once the peer is gone.
        """
        async with self._write_lock:
            self._outbox += self.adaptor.data_to_send()
            if self._outbox:
                data = bytes(self._outbox)
                self._outbox.clear()
                await self.writer.write(data)

    async def send_soon(self) -> None:
        """Hand what the adaptor queued to the writer; wait only past the bound.

        Below :data:`WRITE_BEHIND_BYTES` of queued frames the caller goes on
        at once, without yielding to the scheduler (a cancellation is still
        delivered here); above, it writes them itself, which yields. So a
        response of many small pieces yields at least once per bound, a peer
        that does not read makes its senders wait, and the server's memory
        stays bounded.

        Error handling:
            Raises :class:`ClientDisconnected` once the peer is gone.
        """
        self._outbox += self.adaptor.data_to_send()
        if self.writer.lost:
            raise ClientDisconnected("the client closed the connection")
        if len(self._outbox) >= WRITE_BEHIND_BYTES:
            await self.flush()
            return
        if self._outbox and self._frames_queued:
            self._frames_queued.unpark_all()
        await trio.lowlevel.checkpoint_if_cancelled()

    async def _write_behind(self) -> None:
        """The connection's writer: one write for what every sender queued."""
        try:
            while True:
                while not self._outbox:
                    await self._frames_queued.park()
                await self.flush()
        except ClientDisconnected:
            # Nothing more reaches the peer: reading on is pointless.
            self._reading.cancel()

    async def _flush_quietly(self) -> None:
        with contextlib.suppress(ClientDisconnected):
            await self.flush()

    # -- shared with the streams' ports ---------------------------------------

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


class H2Stream:
    """One HTTP/2 stream: the :class:`~trasgi._io.ports.RequestPort` of its request.

    Args:
        connection: The connection carrying it.
        stream_id: Its identifier.
        body_ended: Whether the request came without a body.
    """

    __slots__ = (
        "_body",
        "_changed",
        "_sink",
        "body_pending",
        "connection",
        "output",
        "request",
        "state",
        "stream_id",
        "window",
    )

    def __init__(
        self, connection: HTTP2Connection, stream_id: int, *, body_ended: bool
    ) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.state = StreamState.OPEN
        self.request: H2Request | None = None
        #: Body pieces received and not yet read, with their flow lengths.
        self._body: collections.deque[tuple[bytes, int]] = collections.deque()
        #: Whether the client may still send body (no END_STREAM yet).
        self.body_pending = not body_ended
        self.output = Output.NOTHING
        self._changed = trio.lowlevel.ParkingLot()
        #: Where a WebSocket's DATA goes, once it took the stream over.
        self._sink: Callable[[bytes], None] | None = None
        #: Where this stream's sender waits for the peer to open a window.
        self.window = trio.lowlevel.ParkingLot()

    # -- fed by the connection's reader -----------------------------------------

    def feed(self, data: bytes, flow_length: int) -> None:
        if self.state is StreamState.OPEN:
            self._body.append((data, flow_length))
            self._changed.unpark_all()
        else:
            self.connection.adaptor.acknowledge(self.stream_id, flow_length)

    def end_of_body(self) -> None:
        self.body_pending = False
        self._changed.unpark_all()

    def gone(self) -> None:
        """The peer reset the stream, or the connection ended under it."""
        if self.state is StreamState.OPEN:
            self.state = StreamState.GONE
        self._changed.unpark_all()
        self.window.unpark_all()

    def reset_malformed(self) -> None:
        """Reset a stream whose request is malformed, before any response.

        RFC 9113 section 8.1.1: a stream error of type PROTOCOL_ERROR. The
        client caused it, so it counts against the client's reset budget
        (MadeYouReset), as a refused stream does.
        """
        self.state = StreamState.RESET
        self.connection.shared.h2.resets_sent += 1
        adaptor = self.connection.adaptor
        adaptor.refuse(self.stream_id, ErrorCode.PROTOCOL_ERROR, trio.current_time())

    def reset(self, code: ErrorCode) -> None:
        """Reset the stream from the server's side."""
        if self.state is StreamState.OPEN:
            self.state = StreamState.RESET
            self.connection.shared.h2.resets_sent += 1
            self.connection.adaptor.reset(self.stream_id, code)
        self._changed.unpark_all()
        self.window.unpark_all()

    # -- ports.ConnectionFacts ---------------------------------------------------

    @property
    def config(self) -> Config:
        return self.connection.config

    @property
    def shared(self) -> ServerShared:
        return self.connection.shared

    @property
    def info(self) -> ConnectionInfo:
        return self.connection.info

    @property
    def peer_lost(self) -> bool:
        return self.state is not StreamState.OPEN or self.connection.writer.lost

    @property
    def peer_closed(self) -> bool:
        return self.state is StreamState.GONE

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        return self.connection.default_headers()

    def log_access(
        self,
        head: RequestLine,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> None:
        self.connection.log_access(head, status, body_bytes, started, note)

    # -- ports.RequestPort ---------------------------------------------------------

    async def read_body(self) -> tuple[bytes, bool] | None:
        while not self._body and self.body_pending:
            if self.state is not StreamState.OPEN:
                return None
            await self._changed.park()
        if self.state is not StreamState.OPEN:
            return None
        if not self._body:
            return b"", False
        data, flow_length = self._body.popleft()
        # Consumed: the window opens again (backpressure, RFC 9113 5.2).
        self.connection.adaptor.acknowledge(self.stream_id, flow_length)
        await self.connection.send_soon()
        return data, bool(self._body) or self.body_pending

    async def send_continue(self) -> None:
        self.connection.adaptor.send_head(self.stream_id, 100, (), end_stream=False)
        await self.connection.send_soon()

    async def write(self, pieces: Sequence[H2Out]) -> None:
        for piece in pieces:
            if self.peer_lost:
                raise ClientDisconnected("the client reset the stream")
            if isinstance(piece, ResponseHead):
                if piece.status >= 200:  # not an interim 1xx, a final head
                    self.output = Output.ENDED if piece.end_stream else Output.STARTED
                try:
                    self.connection.adaptor.send_head(
                        self.stream_id,
                        piece.status,
                        piece.headers,
                        end_stream=piece.end_stream,
                    )
                finally:
                    self.connection.stop_reading_if_ended()
                await self.connection.send_soon()
            elif isinstance(piece, ResponseTrailers):
                self.output = Output.ENDED
                self.connection.adaptor.send_trailers(self.stream_id, piece.headers)
                await self.connection.send_soon()
            elif isinstance(piece.data, FileRegion):
                await self._send_file(piece.data, end_stream=piece.end_stream)
            else:
                await self._send_data(piece.data, end_stream=piece.end_stream)

    async def _send_file(self, region: FileRegion, *, end_stream: bool) -> None:
        """Send a file's region as DATA, read a chunk at a time."""
        left = region.count
        if not left:
            await self._send_data(b"", end_stream=end_stream)
            return
        async with contextlib.aclosing(read_region(region, FILE_CHUNK)) as chunks:
            async for chunk in chunks:
                left -= len(chunk)
                await self._send_data(chunk, end_stream=end_stream and not left)

    async def _send_data(self, data: bytes, *, end_stream: bool) -> None:
        """Send body bytes as the peer's windows allow, each wait bounded."""
        adaptor = self.connection.adaptor
        view = memoryview(data)
        #: When a closed window stops being waited for; set when it closes.
        stalled_until: float | None = None
        while True:
            if self.peer_lost:
                raise ClientDisconnected("the client reset the stream")
            if not view:
                if end_stream:
                    self.output = Output.ENDED
                    adaptor.send_data(self.stream_id, b"", end_stream=True)
                    await self.connection.send_soon()
                return
            window = adaptor.send_window(self.stream_id)
            if window <= 0:
                if stalled_until is None:
                    stalled_until = trio.current_time() + self.config.timeout_write
                await self._wait_for_window(stalled_until)
                continue
            stalled_until = None
            chunk, view = view[:window], view[window:]
            if end_stream and not view:
                self.output = Output.ENDED
            adaptor.send_data(
                self.stream_id, bytes(chunk), end_stream=end_stream and not view
            )
            await self.connection.send_soon()
            if not view:
                return

    async def _wait_for_window(self, deadline: float) -> None:
        """Wait for the peer to open a window, until ``deadline``.

        The HTTP/1.1 write timeout's twin: a peer that keeps a stream's
        window closed for the write timeout gets the stream reset, however
        busy the connection's other streams are; it holds that stream's
        task, never its siblings'.
        """
        with trio.CancelScope(deadline=deadline):
            await self.window.park()
            return
        self.reset(ErrorCode.CANCEL)
        raise ClientDisconnected("the client stopped reading the response")

    async def wait_for_disconnect(self) -> None:
        while self.state is StreamState.OPEN:
            await self._changed.park()

    async def refuse(self, error: PeerError, head: RequestLine | None) -> int:
        """Answer on this stream with the server's own plain-text response.

        Returns the bytes of body written: none for HEAD, a client gone, or
        a stream whose response had started.
        """
        if self.peer_lost or self.output is not Output.NOTHING:
            return 0
        body = error.reason.encode("utf-8") + b"\n"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            *error.headers,
            *self.default_headers(),
        ]
        # RFC 9110 section 9.3.2: a response to HEAD carries no body.
        bodiless = head is not None and head.method == b"HEAD"
        self.output = Output.ENDED if bodiless else Output.STARTED
        self.connection.adaptor.send_head(
            self.stream_id, error.status_code, headers, end_stream=bodiless
        )
        try:
            await self.connection.send_soon()
            if not bodiless:
                await self._send_data(body, end_stream=True)
        except ClientDisconnected:
            return 0
        return 0 if bodiless else len(body)

    async def drain_request(self) -> None:
        """Read and drop what the client still sends, until it ends or resets."""
        while await self.read_body() not in (None, (b"", False)):
            pass

    async def end_output(self) -> None:
        """End the server's side of the stream (END_STREAM), if still open."""
        if self.peer_lost or self.output is Output.ENDED:
            return
        with contextlib.suppress(ClientDisconnected):
            await self._send_data(b"", end_stream=True)

    # -- ports.WebSocketPort ---------------------------------------------------------

    def take_over(self, sink: Callable[[bytes], None]) -> None:
        """From now on the stream's DATA goes to ``sink``, as it is read."""
        self._sink = sink

    async def fill(self) -> None:
        """Hand the next piece of DATA to the sink; ``b""`` once it ended.

        The piece's bytes are acknowledged as they are handed over, so a
        WebSocket whose application lags holds at most a stream window.
        """
        sink = self._sink
        assert sink is not None
        piece = await self.read_body()
        if piece is None:
            sink(b"")  # reset, or the connection ended under the stream
            return
        data, more = piece
        if data:
            sink(data)
        if not more:
            sink(b"")  # END_STREAM: the client's side is closed

    def abort(self) -> None:
        """Give up on a graceful close: reset the stream (CANCEL)."""
        self.reset(ErrorCode.CANCEL)

    async def close_now(self) -> None:
        """Reset the stream at once: its waiting sender wakes and gives up."""
        self.reset(ErrorCode.CANCEL)
