"""HTTP/2 end to end: the real connection handler against a frame-level client.

Most tests speak HTTP/2 frames with the ``h2`` library in client mode over an
in-memory connection served by ``handle_connection`` (:class:`H2Client`), so
that they can see and send what a well-behaved HTTP client hides: stream
resets, GOAWAY, windows, floods. Where a real client suffices, httpx speaks
HTTP/2 through ``open_client(http2=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.http1 import handle_connection
from trasgi._io.shared import ServerShared
from trasgi.testing import open_client, open_connection

from ..helpers import HANG, Message, Receive, Send, echo_app, read_until_closed

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
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: bytes) -> list[bytes]:
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

    async def wait_for(
        self,
        kind: type[E],
        stream_id: int | None = None,
        *,
        where: Callable[[E], bool] = lambda _: True,
    ) -> E:
        """The first event of a kind (on a stream), reading until it arrives."""
        with trio.fail_after(HANG):
            while True:
                for event in self.log:
                    if (
                        isinstance(event, kind)
                        and (stream_id is None or _stream_of(event) == stream_id)
                        and where(event)
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


# -- applications ----------------------------------------------------------------


def start(status: int = 200, headers: Fields = ()) -> Message:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data: bytes = b"", *, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def read_body(receive: Receive) -> bytes:
    data = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        data += message.get("body", b"")
        if not message.get("more_body"):
            return data


async def ok_app(scope: Any, receive: Receive, send: Send) -> None:
    await send(start(200))
    await send(body(b"ok"))


async def scope_app(scope: Any, receive: Receive, send: Send) -> None:
    """Answer with the scope's facts as JSON, and the body's size."""
    received = await read_body(receive)
    facts = {
        "type": scope["type"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "client": list(scope["client"]),
        "body": received.decode("latin-1"),
    }
    await send(start(200, [(b"content-type", b"application/json")]))
    await send(body(json.dumps(facts).encode()))


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike, to catch reordering."""
    unit = bytes(range(251))
    return (unit * (size // len(unit) + 1))[:size]


async def digest_app(scope: Any, receive: Receive, send: Send) -> None:
    """Read the body; answer its size and digest, then ``?size=N`` bytes."""
    received = await read_body(receive)
    query = dict(
        part.split("=") for part in scope["query_string"].decode().split("&") if part
    )
    size = int(query.get("size", "0"))
    await send(
        start(
            200,
            [
                (b"x-received", str(len(received)).encode()),
                (b"x-sha256", hashlib.sha256(received).hexdigest().encode()),
            ],
        )
    )
    data = pattern(size)
    for offset in range(0, size, 65536):
        await send(body(data[offset : offset + 65536], more=True))
    await send(body())


def gated(gates: dict[str, trio.Event]) -> Any:
    """An app whose requests to a path in ``gates`` wait for that event."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        gate = gates.get(scope["path"])
        if gate is not None:
            await gate.wait()
        await send(start(200))
        await send(body(scope["path"].encode()))

    return app


# -- 1. the scope and bodies -------------------------------------------------------


async def test_scope_over_http2() -> None:
    async with open_h2(scope_app) as client:
        response = await client.fetch(
            b"POST",
            b"/a%20b/c?x=1&y=2",
            [
                (b"cookie", b"a=1"),
                (b"user-agent", b"frames/1"),
                (b"cookie", b"b=2"),
                (b"cookie", b"c=3"),
            ],
            body=b"payload",
        )
    assert response.status == 200
    facts = json.loads(response.body)
    assert facts["type"] == "http"
    assert facts["http_version"] == "2"
    assert facts["method"] == "POST"
    assert facts["scheme"] == "http"
    assert facts["path"] == "/a b/c"
    assert facts["raw_path"] == "/a%20b/c"
    assert facts["query_string"] == "x=1&y=2"
    assert facts["client"] == list(INFO.client or ())
    headers = [tuple(pair) for pair in facts["headers"]]
    # The ASGI spec: ":authority" becomes "host", and comes first.
    assert headers[0] == ("host", "testserver")
    assert [name for name, _ in headers].count("host") == 1
    assert not [name for name, _ in headers if name.startswith(":")]
    # RFC 9113 section 8.2.3: the cookie crumbs are one field again.
    assert [value for name, value in headers if name == "cookie"] == [
        "a=1; b=2; c=3"
    ]
    assert ("user-agent", "frames/1") in headers
    assert facts["body"] == "payload"


async def test_a_host_field_beside_authority_is_not_doubled() -> None:
    async with open_h2(scope_app) as client:
        response = await client.fetch(
            pseudo_path := b"/", headers=[(b"host", b"testserver")]
        ) if False else await client.response(
            await client.open(
                pseudo=[
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":authority", b"example.com:8080"),
                    (b":path", b"/"),
                ],
                headers=[(b"host", b"example.com:8080")],
            )
        )
    headers = [tuple(pair) for pair in json.loads(response.body)["headers"]]
    assert [pair for pair in headers if pair[0] == "host"] == [
        ("host", "example.com:8080")
    ]
    assert headers[0] == ("host", "example.com:8080")
