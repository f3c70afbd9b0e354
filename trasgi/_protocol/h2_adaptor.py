"""The sans-I/O HTTP/2 core: bytes in, neutral events out; calls in, bytes out.

:class:`H2Adaptor` wraps the ``h2`` library's connection object in the shape
of this layer's other cores (h11's too): :meth:`H2Adaptor.receive` takes the
bytes a peer sent and returns small events of trasgi's own
(:class:`RequestHead`, :class:`BodyData`, :class:`BodyEnd`,
:class:`PeerReset`, :class:`WindowOpened`, :class:`ConnectionEnded`), and
the ``send_*`` calls queue frames that :meth:`H2Adaptor.data_to_send` hands
out. It does no I/O, starts no task and reads no clock: the caller passes
the time to :meth:`H2Adaptor.receive`, which counts the frames that the
known HTTP/2 floods are made of against per-second budgets
(:class:`FloodLimits`).

Error handling: a peer's connection error (RFC 9113 section 5.4.1) makes
:meth:`H2Adaptor.receive` queue a GOAWAY and return :class:`ConnectionEnded`
with the reason; nothing here raises for what a peer sends.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Sequence

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

from trasgi._errors import ClientDisconnected
from trasgi._protocol.h2_request import malformed_trailers

#: RFC 9113 section 6.9.1: the largest flow-control window.
MAX_WINDOW = 2**31 - 1
#: The initial window of a connection before any WINDOW_UPDATE (section 6.9.2).
DEFAULT_WINDOW = 65_535


class ErrorCode(enum.IntEnum):
    """The error codes trasgi sends (RFC 9113 section 7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    ENHANCE_YOUR_CALM = 0xB


@attrs.frozen
class H2Settings:
    """What an HTTP/2 connection announces and enforces.

    Attributes:
        max_concurrent_streams: Streams the peer may have open at once
            (``SETTINGS_MAX_CONCURRENT_STREAMS``).
        stream_window: The initial window of each request body
            (``SETTINGS_INITIAL_WINDOW_SIZE``): what one stream may have in
            flight before its application reads.
        connection_window: The window shared by every request body of the
            connection.
        max_header_list_size: The decoded size of a request's header list
            (``SETTINGS_MAX_HEADER_LIST_SIZE``; RFC 9113 section 6.5.2).
        enable_connect_protocol: Announce extended CONNECT (RFC 8441), for
            WebSockets over HTTP/2.
    """

    max_concurrent_streams: int = 100
    stream_window: int = 1024 * 1024
    connection_window: int = 4 * 1024 * 1024
    max_header_list_size: int = 16 * 1024
    enable_connect_protocol: bool = False


@attrs.frozen
class FloodLimits:
    """Per-second budgets of the frames the known HTTP/2 floods are made of.

    Attributes:
        resets: Streams reset per second, by the peer (rapid reset,
            CVE-2023-44487) or by the server because of what the peer sent
            (MadeYouReset).
        control_frames: PING and SETTINGS frames per second: each obliges the
            server to answer (CVE-2019-9512, CVE-2019-9515).
        empty_frames: DATA frames without data or end of stream, per second
            (CVE-2019-9518). CONTINUATION floods are bounded by h2 itself (64
            frames a header block) and by the header list size.
    """

    resets: int = 200
    control_frames: int = 200
    empty_frames: int = 200


@attrs.frozen
class H2Upgrade:
    """An HTTP/1.1 request that upgraded its connection (``Upgrade: h2c``).

    RFC 7540 section 3.2 (dropped from RFC 9113, still what clients send):
    the request becomes stream 1, already complete, and is answered over
    HTTP/2.

    Attributes:
        settings: The ``HTTP2-Settings`` header, base64url with its padding.
        fields: The request as HTTP/2 header fields, pseudo-header fields
            first.
        body: The request body, read whole before the switch.
    """

    settings: bytes
    fields: Sequence[tuple[bytes, bytes]]
    body: bytes


@attrs.frozen
class RequestHead:
    """A request's header block arrived: a new stream.

    Attributes:
        stream_id: The stream's identifier.
        headers: The fields as received, pseudo-header fields first, names
            in lower case (h2 checks both, RFC 9113 section 8.2).
        end_stream: Whether the request has no body.
    """

    stream_id: int
    headers: Sequence[tuple[bytes, bytes]]
    end_stream: bool


@attrs.frozen
class BodyData:
    """A piece of a request body.

    Attributes:
        stream_id: The stream's identifier.
        data: The bytes.
        flow_length: What the frame counted against the windows (with its
            padding): the amount to acknowledge once the data is consumed.
    """

    stream_id: int
    data: bytes
    flow_length: int


@attrs.frozen
class BodyEnd:
    """The request body ended (END_STREAM; trailers, if any, are dropped)."""

    stream_id: int


@attrs.frozen
class PeerReset:
    """The stream was reset, by the peer or by h2 for the peer's stream error."""

    stream_id: int
    error_code: int
    by_peer: bool


@attrs.frozen
class WindowOpened:
    """The peer opened a window; ``stream_id`` 0 for the connection's."""

    stream_id: int


@attrs.frozen
class ConnectionEnded:
    """The connection is over: the peer's GOAWAY, or a GOAWAY queued here.

    Attributes:
        error_code: The GOAWAY's error code.
        reason: Why, for the log.
        by_peer: Whether the peer ended it.
    """

    error_code: int
    reason: str
    by_peer: bool


Event = RequestHead | BodyData | BodyEnd | PeerReset | WindowOpened | ConnectionEnded


class _Budget:
    """Counts events in the current one-second window against a limit."""

    __slots__ = ("_count", "_limit", "_second")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._second = -1
        self._count = 0

    def spend(self, now: float, amount: int = 1) -> bool:
        """Count ``amount`` at time ``now``; False once over the limit."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._count = 0
        self._count += amount
        return self._count <= self._limit


class _ServerConnection(h2.connection.H2Connection):
    """h2's connection, leaving the refusal of streams over the limit to trasgi.

    h2 treats a HEADERS frame over ``SETTINGS_MAX_CONCURRENT_STREAMS`` as a
    connection error, before decoding its header block. RFC 9113 section
    5.1.2 asks for a stream error (REFUSED_STREAM), and the block must be
    decoded anyway to keep HPACK's state in step. So h2's count is reported
    as zero, and the connection refuses the stream itself.
    """

    @property
    def open_inbound_streams(self) -> int:
        # The count also forgets closed streams: keep that, drop the check.
        h2.connection.H2Connection.open_inbound_streams.fget(self)  # type: ignore[attr-defined]
        return 0


class H2Adaptor:
    """One server-side HTTP/2 connection, without I/O.

    Args:
        settings: What to announce and enforce.
        floods: The per-second budgets against floods.
    """

    def __init__(
        self, settings: H2Settings | None = None, floods: FloodLimits | None = None
    ) -> None:
        self.settings = settings or H2Settings()
        limits = floods or FloodLimits()
        self._resets = _Budget(limits.resets)
        self._control = _Budget(limits.control_frames)
        self._empty = _Budget(limits.empty_frames)
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # A request's header block is judged in one pass by
            # h2_request.parse_h2_request (trailers by malformed_trailers),
            # which refuses everything h2's chain of checks refuses: h2's own
            # pass costs a sixth of an HTTP/2 request's time.
            validate_inbound_headers=False,
            # Normalising only joins cookie crumbs, which parsing does too.
            normalize_inbound_headers=False,
            # What trasgi sends is checked where it is made (the response
            # cycles validate every field byte, lower-case the names and drop
            # connection-specific fields): h2 would check it all again.
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = _ServerConnection(config=config)
        self.ended: ConnectionEnded | None = None
        #: Frames queued here rather than by h2 (a graceful GOAWAY).
        self._own_frames = b""
        #: The last stream a graceful GOAWAY accepted; a later GOAWAY must not
        #: name a higher one (RFC 9113 section 6.8).
        self._announced: int | None = None

    # -- the start -------------------------------------------------------------

    def start(self, upgrade_settings: bytes | None = None) -> None:
        """Queue the server's connection preface: its SETTINGS, a bigger window.

        ``upgrade_settings`` is the ``HTTP2-Settings`` header of an
        ``Upgrade: h2c`` request (RFC 7540 section 3.2.1), whose request then
        becomes stream 1.
        """
        settings = self.settings
        values = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: (
                settings.max_concurrent_streams
            ),
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.stream_window,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: (
                settings.max_header_list_size
            ),
            # RFC 9113 section 8.4: trasgi never pushes.
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        }
        if settings.enable_connect_protocol:
            values[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        self._h2.local_settings = h2.settings.Settings(
            client=False, initial_values=values
        )
        if upgrade_settings is None:
            self._h2.initiate_connection()
        else:
            self._h2.initiate_upgrade_connection(upgrade_settings)
        increment = settings.connection_window - DEFAULT_WINDOW
        if increment > 0:
            self._h2.increment_flow_control_window(increment)

    # -- receiving ---------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Take bytes from the peer; return what they mean.

        ``now`` is the caller's clock, in seconds, for the flood budgets.
        An empty ``data`` tells that the peer closed the connection.
        """
        if self.ended is not None:
            return []
        if not data:
            return [self._end(ErrorCode.NO_ERROR, "the client closed the connection")]
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            code = _error_code(exc)
            self.ended = ConnectionEnded(code, f"protocol error: {exc}", False)
            return [self.ended]
        events: list[Event] = []
        for h2_event in h2_events:
            events += self._translate(h2_event, now)
            ended = self._ending()
            if ended is not None:
                events.append(ended)
                break
        return events

    def _ending(self) -> ConnectionEnded | None:
        # A method, not the attribute: translating an event may have set it.
        return self.ended

    def _translate(self, event: h2.events.Event, now: float) -> Iterable[Event]:
        if isinstance(event, h2.events.RequestReceived):
            return self._on_request(event)
        if isinstance(event, h2.events.DataReceived):
            return self._on_data(event, now)
        if isinstance(event, h2.events.StreamEnded):
            return (BodyEnd(event.stream_id),)
        if isinstance(event, h2.events.StreamReset):
            return self._on_reset(event, now)
        if isinstance(event, h2.events.WindowUpdated):
            return (WindowOpened(event.stream_id),)
        if isinstance(event, h2.events.RemoteSettingsChanged):
            # A new initial window changes every stream's window (RFC 9113
            # section 6.9.2): wake every sender.
            self._spend_control(now)
            return (WindowOpened(0),)
        if isinstance(event, (h2.events.PingReceived, h2.events.SettingsAcknowledged)):
            self._spend_control(now)
            return ()
        if isinstance(event, h2.events.ConnectionTerminated):
            code = int(event.error_code or 0)
            self.ended = ConnectionEnded(code, "the client sent GOAWAY", True)
            return ()
        if isinstance(event, h2.events.TrailersReceived):
            return self._on_trailers(event, now)
        return ()  # priority, unknown frames

    def _on_request(self, event: h2.events.RequestReceived) -> list[Event]:
        head = RequestHead(
            event.stream_id,
            [(bytes(name), bytes(value)) for name, value in event.headers],
            event.stream_ended is not None,
        )
        return [head]

    def _on_trailers(
        self, event: h2.events.TrailersReceived, now: float
    ) -> list[Event]:
        """Request trailers are not read, but a malformed block is refused."""
        fields = [(bytes(name), bytes(value)) for name, value in event.headers]
        if malformed_trailers(fields) is None:
            return []
        # RFC 9113 section 8.1.1: a stream error of type PROTOCOL_ERROR.
        self.refuse(event.stream_id, ErrorCode.PROTOCOL_ERROR, now)
        return [PeerReset(event.stream_id, ErrorCode.PROTOCOL_ERROR, False)]

    def _on_data(self, event: h2.events.DataReceived, now: float) -> list[Event]:
        data = event.data or b""
        if not data and event.stream_ended is None and not self._empty.spend(now):
            self._calm("too many empty DATA frames")
        return [BodyData(event.stream_id, data, event.flow_controlled_length or 0)]

    def _on_reset(self, event: h2.events.StreamReset, now: float) -> list[Event]:
        if not self._resets.spend(now):
            self._calm("too many streams reset")
        return [PeerReset(event.stream_id, int(event.error_code), event.remote_reset)]

    def _spend_control(self, now: float) -> None:
        if not self._control.spend(now):
            self._calm("too many PING or SETTINGS frames")

    def _calm(self, reason: str) -> None:
        if self.ended is None:
            self.ended = self._end(ErrorCode.ENHANCE_YOUR_CALM, reason)

    def _end(self, code: ErrorCode, reason: str) -> ConnectionEnded:
        """Queue a GOAWAY (when still possible) and end the connection."""
        last = self.last_stream_id
        if self._announced is not None:
            last = min(last, self._announced)
        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed
            self._h2.close_connection(error_code=code, last_stream_id=last)
        self.ended = ConnectionEnded(code, reason, False)
        return self.ended

    # -- flow control --------------------------------------------------------

    def acknowledge(self, stream_id: int, flow_length: int) -> None:
        """The application consumed ``flow_length``: open the windows again."""
        if flow_length and self.ended is None:
            # The connection may have closed meanwhile: nothing to open then.
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.acknowledge_received_data(flow_length, stream_id)

    def send_window(self, stream_id: int) -> int:
        """How many body bytes the stream may send now (0 if it cannot)."""
        try:
            window = self._h2.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError):
            return 0
        return min(window, self._h2.max_outbound_frame_size)

    def is_open_for_sending(self, stream_id: int) -> bool:
        """Whether the server may still send on the stream."""
        stream = self._h2.streams.get(stream_id)
        return stream is not None and not stream.closed and self.ended is None

    # -- sending -------------------------------------------------------------------

    def send_head(
        self,
        stream_id: int,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        end_stream: bool,
    ) -> None:
        """Queue a response head (or a 1xx interim head, ``end_stream`` False).

        ``headers`` must be valid HTTP/2 fields, names in lower case, without
        connection-specific fields (RFC 9113 section 8.2): h2's outbound
        checks are off, as the callers' cycles make these checks.

        Error handling:
            Raises :class:`ClientDisconnected` when the stream or the
            connection is closed: the peer cannot receive it.
        """
        fields = [(b":status", str(status).encode("ascii")), *headers]
        try:
            self._h2.send_headers(stream_id, fields, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise self._send_failed(exc) from None

    def send_trailers(
        self, stream_id: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        """Queue the trailer section: HEADERS that end the stream (RFC 9113 8.1).

        Error handling:
            As :meth:`send_head`.
        """
        try:
            self._h2.send_headers(stream_id, list(headers), end_stream=True)
        except h2.exceptions.ProtocolError as exc:
            raise self._send_failed(exc) from None

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        """Queue body bytes that fit :meth:`send_window`.

        Error handling:
            As :meth:`send_head`.
        """
        try:
            self._h2.send_data(stream_id, data, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise self._send_failed(exc) from None

    def _send_failed(self, exc: h2.exceptions.ProtocolError) -> ClientDisconnected:
        """The error to raise for a send h2 refused.

        A closed stream means its client left. Anything else may have left
        HPACK's table half updated: the connection cannot go on, so it ends
        (GOAWAY INTERNAL_ERROR) and every stream learns it.
        """
        if not isinstance(exc, h2.exceptions.StreamClosedError) and self.ended is None:
            self._end(ErrorCode.INTERNAL_ERROR, f"a response could not be sent: {exc}")
        return ClientDisconnected(f"the stream cannot be sent on: {exc}")

    def refuse(self, stream_id: int, code: ErrorCode, now: float) -> None:
        """Refuse a new stream, counting the reset against the budget.

        Resets the server makes because of what the client does count as the
        client's (MadeYouReset): a client opening streams past the limit as
        fast as they are refused is a flood too.
        """
        self.reset(stream_id, code)
        if not self._resets.spend(now):
            self._calm("too many streams refused")

    def reset(self, stream_id: int, code: ErrorCode) -> None:
        """Queue RST_STREAM, unless the stream is already closed."""
        with contextlib.suppress(
            h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError
        ):
            self._h2.reset_stream(stream_id, error_code=code)

    def goaway(self, code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """Queue the final GOAWAY: nothing more is sent or received after it."""
        if self.ended is None:
            self._end(code, "closed by the server")

    def announce_goaway(self) -> None:
        """Queue a graceful GOAWAY: no new streams, the open ones carry on.

        RFC 9113 section 6.8: the streams up to :attr:`last_stream_id` may
        still complete. Queued by hand, because h2 treats any GOAWAY it sends
        as the connection's end and would refuse those streams' frames.
        """
        self._announced = self.last_stream_id
        frame = hyperframe.frame.GoAwayFrame(0)
        frame.last_stream_id = self._announced
        frame.error_code = ErrorCode.NO_ERROR
        self._own_frames += frame.serialize()

    @property
    def last_stream_id(self) -> int:
        """The highest stream identifier the peer opened."""
        return self._h2.highest_inbound_stream_id

    def data_to_send(self) -> bytes:
        """Everything queued for the peer, in order; then nothing until more."""
        data = self._h2.data_to_send()
        if self._own_frames:
            data, self._own_frames = data + self._own_frames, b""
        return data


def _error_code(exc: h2.exceptions.ProtocolError) -> int:
    code = getattr(exc, "error_code", None)
    return int(code) if code is not None else int(h2.errors.ErrorCodes.PROTOCOL_ERROR)
