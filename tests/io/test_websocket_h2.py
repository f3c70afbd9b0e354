"""WebSockets over HTTP/2 (RFC 8441), end to end over memory streams.

The client is the ``h2`` library at the frame level with a wsproto
frame-level connection inside the stream: extended CONNECT with
``:protocol: websocket``, then WebSocket frames as the stream's DATA. The
application is the same kind of ASGI websocket application the HTTP/1.1
tests use; what it sees must not depend on the protocol underneath.
"""

from __future__ import annotations

import logging
from typing import Any

import h2.events
import h2.settings
import pytest
import trio
import trio.testing
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import client_extensions_handshake

from trasgi import Config
from trasgi._io.websocket import CLOSE_TIMEOUT

from ..helpers import HANG, Receive, Send
from .h2_client import CANCEL, H2Client, Response, open_h2, serving

CONNECT = [
    (b":method", b"CONNECT"),
    (b":protocol", b"websocket"),
    (b":scheme", b"http"),
    (b":authority", b"testserver"),
    (b":path", b"/chat?room=1"),
]
VERSION = (b"sec-websocket-version", b"13")


class WebSocketOverH2:
    """One WebSocket on one stream of an :class:`H2Client`."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.ws: Connection | None = None
        self._seen = 0
        self.events: list[Event] = []

    @classmethod
    async def open(
        cls,
        client: H2Client,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        offer: list[Any] | None = None,
    ) -> WebSocketOverH2:
        fields = [VERSION] if headers is None else headers
        stream_id = await client.open(pseudo=CONNECT, headers=fields, end_stream=False)
        socket = cls(client, stream_id)
        response = await socket.head()
        if response.status == 200:
            agreed = response.header(b"sec-websocket-extensions")
            extensions = client_extensions_handshake(
                [agreed.decode()] if agreed else [], offer or []
            )
            socket.ws = Connection(ConnectionType.CLIENT, extensions)
        return socket

    async def head(self) -> Response:
        with trio.fail_after(HANG):
            while self.client.received(self.stream_id).status is None:
                assert not self.client.eof, self.client.log
                await self.client.read()
        return self.client.received(self.stream_id)

    async def send(self, event: Event) -> None:
        assert self.ws is not None
        data = self.ws.send(event)
        await self.client.send_body(self.stream_id, data, end_stream=False)

    def _take(self) -> None:
        assert self.ws is not None
        data = [
            event.data
            for event in self.client.log
            if isinstance(event, h2.events.DataReceived)
            and event.stream_id == self.stream_id
        ]
        for chunk in data[self._seen :]:
            self.ws.receive_data(chunk)
        self._seen = len(data)
        self.events += self.ws.events()

    async def next(self) -> Event:
        """The next WebSocket event from the server, a message reassembled."""
        event = await self._next_piece()
        while isinstance(event, Message) and not event.message_finished:
            rest = await self._next_piece()
            assert isinstance(rest, type(event))
            event = type(event)(
                data=event.data + rest.data, message_finished=rest.message_finished
            )
        return event

    async def _next_piece(self) -> Event:
        with trio.fail_after(HANG):
            while True:
                self._take()
                if self.events:
                    return self.events.pop(0)
                assert not self.client.eof, self.client.log
                await self.client.read()

    async def ended(self) -> Response:
        """Wait for the server to end (or reset) the stream."""
        return await self.client.response(self.stream_id)

    async def end(self) -> None:
        """End the client's side of the stream (END_STREAM), as after a close."""
        self.client.conn.end_stream(self.stream_id)
        await self.client.flush()


async def echo(scope: Any, receive: Receive, send: Send) -> None:
    """Accept, then echo every message until the client closes."""
    assert scope["type"] == "websocket"
    assert await receive() == {"type": "websocket.connect"}
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][0]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        reply = {k: v for k, v in message.items() if k in ("text", "bytes")}
        await send({"type": "websocket.send", **reply})


def echo_headers(*subprotocols: bytes) -> list[tuple[bytes, bytes]]:
    return [VERSION, (b"sec-websocket-protocol", b", ".join(subprotocols))]


async def test_the_server_announces_extended_connect() -> None:
    # RFC 8441 section 3: SETTINGS_ENABLE_CONNECT_PROTOCOL = 1.
    async with open_h2(echo) as client:
        settings = client.conn.remote_settings
        assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 1
    async with open_h2(echo, Config(ws="none")) as client:
        settings = client.conn.remote_settings
        assert settings[h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL] == 0
        stream_id = await client.open(pseudo=CONNECT, headers=[VERSION])
        refused = await client.response(stream_id)
        assert refused.status == 400
        assert b"extended CONNECT is not enabled" in refused.body


async def test_messages_echo_and_the_close_handshake_ends_the_stream() -> None:
    async with open_h2(echo) as client:
        socket = await WebSocketOverH2.open(client, echo_headers(b"chat", b"v2"))
        head = await socket.head()
        assert head.status == 200
        assert head.header(b"sec-websocket-protocol") == b"chat"
        # RFC 8441 section 5: no Sec-WebSocket-Accept, and no Upgrade.
        assert head.header(b"sec-websocket-accept") is None
        assert head.header(b"upgrade") is None
        await socket.send(TextMessage(data="héllo"))
        assert await socket.next() == TextMessage(data="héllo")
        await socket.send(BytesMessage(data=b"\x00\x01" * 40000))
        received = await socket.next()
        assert isinstance(received, BytesMessage)
        assert received.data == b"\x00\x01" * 40000
        await socket.send(Ping(payload=b"?"))
        assert await socket.next() == Pong(payload=b"?")
        await socket.send(CloseConnection(code=1000, reason="bye"))
        close = await socket.next()
        assert isinstance(close, CloseConnection)
        assert close.code == 1000
        # END_STREAM stands for the TCP FIN: the server's side is closed, and
        # the stream closes without a reset (an abnormal close, section 5).
        await socket.end()
        ended = await socket.ended()
        assert ended.ended
        await client.settle()
        assert client.received(socket.stream_id).reset is None
        # The connection carries on.
        again = await WebSocketOverH2.open(client, echo_headers(b"chat"))
        assert (await again.head()).status == 200


async def test_the_scope_is_the_same_websocket_scope_over_http2() -> None:
    scopes: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await send({"type": "websocket.close"})

    async with open_h2(app) as client:
        fields = [VERSION, (b"cookie", b"a=1"), (b"cookie", b"b=2")]
        await (await WebSocketOverH2.open(client, fields)).ended()
    (scope,) = scopes
    assert scope["type"] == "websocket"
    assert scope["http_version"] == "2"
    assert scope["scheme"] == "ws"
    assert (scope["path"], scope["query_string"]) == ("/chat", b"room=1")
    assert scope["subprotocols"] == []
    assert (b"host", b"testserver") in scope["headers"]
    assert (b"cookie", b"a=1; b=2") in scope["headers"]
    assert "websocket.http.response" in scope["extensions"]


async def test_a_close_before_accept_is_a_403_on_that_stream_only() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.close"})

    async with open_h2(app) as client:
        socket = await WebSocketOverH2.open(client)
        refused = await socket.ended()
        assert refused.status == 403
        assert refused.body == b"Forbidden\n"
        # RFC 9113 section 8.2.2: no connection-specific field in HTTP/2.
        assert refused.header(b"connection") is None
        assert not client.goaways()


async def test_a_denial_response_is_an_ordinary_response_on_the_stream() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"WWW-Authenticate", b"Bearer"), (b"Connection", b"x")],
            }
        )
        await send(
            {"type": "websocket.http.response.body", "body": b"log ", "more_body": True}
        )
        await send({"type": "websocket.http.response.body", "body": b"in"})

    async with open_h2(app) as client:
        denied = await (await WebSocketOverH2.open(client)).ended()
    assert denied.status == 401
    assert denied.header(b"www-authenticate") == b"Bearer"
    assert denied.header(b"connection") is None
    assert denied.body == b"log in"
    assert denied.ended


@pytest.mark.parametrize(
    ("protocol", "headers", "status"),
    [
        (b"websocket", [], 400),
        (b"websocket", [(b"sec-websocket-version", b"8")], 426),
        (b"connect-udp", [VERSION], 501),
    ],
)
async def test_an_invalid_extended_connect_gets_its_status(
    protocol: bytes, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    called: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        called.append(scope)

    pseudo = [(n, protocol if n == b":protocol" else v) for n, v in CONNECT]
    async with open_h2(app) as client:
        stream_id = await client.open(pseudo=pseudo, headers=headers)
        refused = await client.response(stream_id)
    assert refused.status == status
    assert called == []


async def test_an_app_failing_after_accept_closes_with_1011_and_the_connection_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async with open_h2(app) as client:
        socket = await WebSocketOverH2.open(client)
        close = await socket.next()
        assert isinstance(close, CloseConnection)
        assert close.code == 1011
        await socket.send(close.response())
        assert (await socket.ended()).ended
        assert not client.goaways()
    assert any("boom" in (r.exc_text or "") for r in caplog.records)


async def test_a_client_reset_is_a_1006_disconnect_for_the_app() -> None:
    received: list[dict[str, Any]] = []
    done = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        received.append(await receive())
        done.set()

    async with open_h2(app) as client:
        socket = await WebSocketOverH2.open(client)
        await client.reset(socket.stream_id, CANCEL)
        with trio.fail_after(HANG):
            await done.wait()
    assert received == [{"type": "websocket.disconnect", "code": 1006, "reason": ""}]


async def test_permessage_deflate_is_negotiated_over_http2() -> None:
    offer = PerMessageDeflate()
    headers = [
        *echo_headers(b"chat"),
        (b"sec-websocket-extensions", f"{offer.name}; {offer.offer()}".encode()),
    ]
    async with open_h2(echo) as client:
        socket = await WebSocketOverH2.open(client, headers, offer=[offer])
        head = await socket.head()
        agreed = head.header(b"sec-websocket-extensions") or b""
        assert agreed.startswith(b"permessage-deflate")
        await socket.send(TextMessage(data="squeeze " * 1000))
        assert await socket.next() == TextMessage(data="squeeze " * 1000)
        compressed = sum(
            len(event.data)
            for event in client.log
            if isinstance(event, h2.events.DataReceived)
            and event.stream_id == socket.stream_id
        )
        assert compressed < 1000


async def test_a_websocket_beside_plain_requests_on_one_connection() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await echo(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain"})

    async with open_h2(app) as client:
        socket = await WebSocketOverH2.open(client, echo_headers(b"chat"))
        plain = await client.fetch(b"GET", b"/")
        assert (plain.status, plain.body) == (200, b"plain")
        await socket.send(TextMessage(data="still here"))
        assert await socket.next() == TextMessage(data="still here")


async def test_an_app_that_does_not_read_holds_one_stream_window_at_most() -> None:
    """Flow control is the backpressure: DATA is acknowledged as it is read.

    The application never calls ``receive()`` after the accept: the server
    takes ``ws_max_queue`` messages, then stops reading the stream, and the
    client's window for it closes. A sibling stream still gets its answer.
    """
    release = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body"})
            return
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()

    window = 65535
    config = Config(limit_h2_stream_window=window, ws_max_queue=2)
    async with open_h2(app, config) as client:
        socket = await WebSocketOverH2.open(client)
        message = TextMessage(data="x" * 1000)
        sent = 0
        with trio.fail_after(HANG):
            while client.conn.local_flow_control_window(socket.stream_id) >= 1100:
                await socket.send(message)
                sent += 1
                await client.settle()
        await client.settle()
        assert client.conn.local_flow_control_window(socket.stream_id) < 1100
        assert sent >= window // 1100
        sibling = await client.fetch(b"GET", b"/")
        assert sibling.status == 204
        release.set()


async def test_shutdown_closes_the_websocket_with_1001_then_ends_the_stream() -> None:
    async with serving(echo) as server:
        client = await server.h2()
        socket = await WebSocketOverH2.open(client, echo_headers(b"chat"))
        server.shared.begin_shutdown()
        close = await socket.next()
        assert isinstance(close, CloseConnection)
        assert close.code == 1001
        await socket.send(close.response())
        assert (await socket.ended()).ended
        await socket.end()
        await client.read_until_closed()
        assert client.received(socket.stream_id).reset is None


async def test_a_client_that_never_ends_its_side_is_reset_after_the_close_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_h2(echo) as client:
        socket = await WebSocketOverH2.open(client, echo_headers(b"chat"))
        await socket.send(CloseConnection(code=1000))
        assert isinstance(await socket.next(), CloseConnection)
        assert (await socket.ended()).ended
        started = trio.current_time()
        with trio.fail_after(HANG):
            while client.received(socket.stream_id).reset is None:
                await client.read()
        assert trio.current_time() - started == pytest.approx(CLOSE_TIMEOUT, abs=1)


async def test_the_access_record_names_the_extended_connect(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    config = Config(access_log_format="{request_line} {status}")
    async with open_h2(echo, config) as client:
        socket = await WebSocketOverH2.open(client, echo_headers(b"chat"))
        await socket.send(CloseConnection(code=1000))
        await socket.ended()
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert len(lines) == 2
    assert lines[0] == "CONNECT /chat?room=1 HTTP/2.0 200"
    # The session's own line, when it ended.
    assert ' - "WEBSOCKET /chat?room=1" closed 1000 ' in lines[1]


async def test_messages_sent_on_both_sides_interleave_with_trio_scheduling() -> None:
    """The server's sends and the client's messages cross without loss."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        for number in range(20):
            await send({"type": "websocket.send", "text": str(number)})
        got = []
        for _ in range(20):
            message = await receive()
            got.append(message["text"])
        await send({"type": "websocket.send", "text": ",".join(got)})
        await send({"type": "websocket.close", "code": 4000})

    async with open_h2(app) as client:
        socket = await WebSocketOverH2.open(client)
        for number in range(20):
            await socket.send(TextMessage(data=f"c{number}"))
        texts = []
        while True:
            event = await socket.next()
            if isinstance(event, CloseConnection):
                break
            assert isinstance(event, Message)
            texts.append(event.data)
        assert texts[:20] == [str(n) for n in range(20)]
        assert texts[20] == ",".join(f"c{n}" for n in range(20))
        assert event.code == 4000
