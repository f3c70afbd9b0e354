"""A frame-level HTTP/2 client for the tests, over an in-memory connection.

:class:`H2Client` speaks HTTP/2 with the ``h2`` library in client mode, so a
test can see and send what a well-behaved client hides: stream resets,
GOAWAY, windows, floods, extended CONNECT.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi.testing import open_connection

from ..helpers import HANG

#: The client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
PROTOCOL_ERROR = h2.errors.ErrorCodes.PROTOCOL_ERROR
INTERNAL_ERROR = h2.errors.ErrorCodes.INTERNAL_ERROR
REFUSED_STREAM = h2.errors.ErrorCodes.REFUSED_STREAM
CANCEL = h2.errors.ErrorCodes.CANCEL
ENHANCE_YOUR_CALM = h2.errors.ErrorCodes.ENHANCE_YOUR_CALM

#: The GOAWAY frame's type (RFC 9113 section 6.8).
GOAWAY_TYPE = 0x7
#: Every frame starts with a nine-byte header (RFC 9113 section 4.1).
FRAME_HEADER = 9

INFO = ConnectionInfo(client=("10.0.0.1", 40000), server=("testserver", 80))

Fields = Sequence[tuple[bytes, bytes]]
E = TypeVar("E", bound=h2.events.Event)


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _fields(headers: Any) -> list[tuple[bytes, bytes]]:
    return [(_bytes(name), _bytes(value)) for name, value in headers or ()]


@dataclass(frozen=True)
class GoAway:
    """A GOAWAY the server sent, read off the wire before h2 sees it.

    h2 treats the first GOAWAY it receives as the connection's end and would
    refuse the frames of the streams a graceful GOAWAY lets finish, so the
    client takes GOAWAY frames out of the byte stream itself.
    """

    last_stream_id: int
    error_code: int


ServerEvent = h2.events.Event | GoAway


@dataclass
class Response:
    """What one stream received: the head, the body, how it ended."""

    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    #: The statuses of informational (1xx) heads, in order.
    informational: list[int] = field(default_factory=list)
    #: Whether the server ended the stream (END_STREAM).
    ended: bool = False
    #: The error code of the server's RST_STREAM, if it reset the stream.
    reset: int | None = None
    #: How many DATA frames carried the body.
    data_frames: int = 0

    def header(self, name: bytes) -> bytes | None:
        values = self.values(name)
        return values[0] if values else None

    def values(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key == name]


class H2Client:
    """An HTTP/2 client at the frame level, over one stream.

    Args:
        stream: The client end of a connection served by trasgi.
        validate: Whether h2 checks and normalises the fields sent; off to
            send what a hostile client would.
        auto_ack: Whether the client opens its windows again as soon as DATA
            arrives (as a reading client does).
    """

    def __init__(
        self, stream: trio.abc.Stream, *, validate: bool = True, auto_ack: bool = True
    ) -> None:
        self.stream = stream
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=validate,
                normalize_outbound_headers=validate,
            )
        )
        self.auto_ack = auto_ack
        #: Everything the server sent, in order of arrival.
        self.log: list[ServerEvent] = []
        #: Whether the server closed the connection.
        self.eof = False
        self._pending = b""

    # -- the connection --------------------------------------------------------

    async def start(self, *, initial_window: int | None = None) -> None:
        """Send the preface and SETTINGS; wait for the server's SETTINGS."""
        if initial_window is not None:
            self.conn.local_settings = h2.settings.Settings(
                client=True,
                initial_values={
                    h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window
                },
            )
        self.conn.initiate_connection()
        await self.flush()
        await self.wait_for(h2.events.RemoteSettingsChanged)

    def ignore_stream_limit(self) -> None:
        """Forget the server's MAX_CONCURRENT_STREAMS, as a hostile client would."""
        settings = self.conn.remote_settings
        settings.max_concurrent_streams = 2**31 - 1
        settings.acknowledge()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def read(self) -> None:
        """Read once from the server and take in its frames."""
        try:
            data = bytes(await self.stream.receive_some(65536))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.eof = True
            return
        self._take(data)
        await self.flush()

    def _take(self, data: bytes) -> None:
        """Split whole frames out: GOAWAY here, everything else to h2."""
        buffer = self._pending + data
        for_h2 = b""
        while len(buffer) >= FRAME_HEADER:
            size = FRAME_HEADER + int.from_bytes(buffer[:3], "big")
            if len(buffer) < size:
                break
            frame, buffer = buffer[:size], buffer[size:]
            if frame[3] == GOAWAY_TYPE:
                self._receive(for_h2)
                for_h2 = b""
                payload = frame[FRAME_HEADER:]
                self.log.append(
                    GoAway(
                        last_stream_id=int.from_bytes(payload[:4], "big") & 0x7FFFFFFF,
                        error_code=int.from_bytes(payload[4:8], "big"),
                    )
                )
            else:
                for_h2 += frame
        self._receive(for_h2)
        self._pending = buffer

    def _receive(self, data: bytes) -> None:
        if not data:
            return
        for event in self.conn.receive_data(data):
            self.log.append(event)
            if (
                self.auto_ack
                and isinstance(event, h2.events.DataReceived)
                and event.flow_controlled_length
            ):
                self.conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )

    async def settle(self) -> None:
        """Let the server do all it can, and take in what it sent meanwhile."""
        await trio.testing.wait_all_tasks_blocked()
        with trio.move_on_after(0.01):
            while not self.eof:
                await self.read()

    async def wait_for(self, kind: type[E], stream_id: int | None = None) -> E:
        """The first event of a kind (on a stream), reading until it arrives."""
        with trio.fail_after(HANG):
            while True:
                for event in self.log:
                    if isinstance(event, kind) and (
                        stream_id is None or _stream_of(event) == stream_id
                    ):
                        return event
                if self.eof:
                    raise AssertionError(
                        f"the connection closed before a {kind.__name__}: {self.log}"
                    )
                await self.read()

    async def goaway(self) -> GoAway:
        with trio.fail_after(HANG):
            while not self.goaways():
                assert not self.eof, f"closed without GOAWAY: {self.log}"
                await self.read()
        return self.goaways()[0]

    def goaways(self) -> list[GoAway]:
        return [event for event in self.log if isinstance(event, GoAway)]

    async def read_until_closed(self) -> None:
        with trio.fail_after(HANG):
            while not self.eof:
                await self.read()

    # -- streams ---------------------------------------------------------------

    async def open(
        self,
        method: bytes = b"GET",
        path: bytes = b"/",
        headers: Fields = (),
        *,
        end_stream: bool = True,
        pseudo: Fields | None = None,
    ) -> int:
        """Send a request's HEADERS; return the new stream's identifier."""
        stream_id = self.conn.get_next_available_stream_id()
        if pseudo is None:
            pseudo = [
                (b":method", method),
                (b":scheme", b"http"),
                (b":authority", b"testserver"),
                (b":path", path),
            ]
        self.conn.send_headers(stream_id, [*pseudo, *headers], end_stream=end_stream)
        await self.flush()
        return stream_id

    async def send_body(
        self, stream_id: int, data: bytes, *, end_stream: bool = True
    ) -> None:
        """Send body bytes as the server's windows allow, waiting for them."""
        view = memoryview(data)
        with trio.fail_after(HANG):
            while view:
                window = self._window(stream_id)
                if window <= 0:
                    assert not self.eof, "the connection closed during the upload"
                    await self.read()
                    continue
                chunk, view = view[:window], view[window:]
                self.conn.send_data(
                    stream_id, bytes(chunk), end_stream=end_stream and not view
                )
                await self.flush()
        if end_stream and not data:
            self.conn.end_stream(stream_id)
            await self.flush()

    async def send_available(self, stream_id: int, data: bytes) -> int:
        """Send what the windows allow now, without waiting; return how much."""
        sent = 0
        while sent < len(data):
            window = self._window(stream_id)
            if window <= 0:
                break
            chunk = data[sent : sent + window]
            self.conn.send_data(stream_id, chunk)
            sent += len(chunk)
        await self.flush()
        return sent

    def _window(self, stream_id: int) -> int:
        window = self.conn.local_flow_control_window(stream_id)
        return min(window, self.conn.max_outbound_frame_size)

    async def reset(self, stream_id: int, code: int = CANCEL) -> None:
        self.conn.reset_stream(stream_id, error_code=code)
        await self.flush()

    async def request(
        self,
        method: bytes = b"GET",
        path: bytes = b"/",
        headers: Fields = (),
        body: bytes | None = None,
    ) -> int:
        stream_id = await self.open(method, path, headers, end_stream=body is None)
        if body is not None:
            await self.send_body(stream_id, body)
        return stream_id

    async def fetch(
        self,
        method: bytes = b"GET",
        path: bytes = b"/",
        headers: Fields = (),
        body: bytes | None = None,
    ) -> Response:
        return await self.response(await self.request(method, path, headers, body))

    async def response(self, stream_id: int) -> Response:
        """Read until the stream ends or is reset; what it received."""
        with trio.fail_after(HANG):
            while not self._stream_over(stream_id) and not self.eof:
                await self.read()
        return self.received(stream_id)

    def _stream_over(self, stream_id: int) -> bool:
        return any(
            isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset))
            and event.stream_id == stream_id
            for event in self.log
        )

    def received(self, stream_id: int) -> Response:
        """What the stream received so far."""
        response = Response()
        for event in self.log:
            if _stream_of(event) != stream_id:
                continue
            if isinstance(event, h2.events.InformationalResponseReceived):
                response.informational.append(_status(event.headers))
            elif isinstance(event, h2.events.ResponseReceived):
                response.status = _status(event.headers)
                response.headers = _fields(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                response.body += event.data or b""
                response.data_frames += 1
            elif isinstance(event, h2.events.StreamEnded):
                response.ended = True
            elif isinstance(event, h2.events.StreamReset):
                response.reset = int(event.error_code)
        return response


def _stream_of(event: ServerEvent) -> int | None:
    stream_id = getattr(event, "stream_id", None)
    return stream_id if isinstance(stream_id, int) else None


def _status(headers: Any) -> int:
    return int(dict(_fields(headers))[b":status"])


@asynccontextmanager
async def open_h2(
    app: Any,
    config: Config | None = None,
    *,
    validate: bool = True,
    auto_ack: bool = True,
    initial_window: int | None = None,
) -> AsyncIterator[H2Client]:
    """One HTTP/2 connection (prior knowledge) to ``app``, started."""
    async with open_connection(app, config=config) as stream:
        client = H2Client(stream, validate=validate, auto_ack=auto_ack)
        await client.start(initial_window=initial_window)
        yield client


class Server:
    """Connections served with one :class:`ServerShared`, as a server's are."""

    def __init__(
        self, nursery: trio.Nursery, app: Any, config: Config, shared: ServerShared
    ) -> None:
        self.nursery = nursery
        self.app = app
        self.config = config
        self.shared = shared

    def connect(self) -> trio.abc.Stream:
        client, server = trio.testing.memory_stream_pair()
        self.nursery.start_soon(
            handle_connection, server, self.app, self.config, INFO, self.shared
        )
        return client

    async def h2(self, **options: Any) -> H2Client:
        client = H2Client(self.connect(), **options)
        await client.start()
        return client


@asynccontextmanager
async def serving(app: Any, config: Config | None = None) -> AsyncIterator[Server]:
    async with trio.open_nursery() as nursery:
        yield Server(nursery, app, config or Config(), ServerShared())
        nursery.cancel_scope.cancel()
