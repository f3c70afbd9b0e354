"""WebSockets through the real connection handler, over in-memory streams."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import Request, TextMessage

from trasgi import ASGIProtocolError, ClientDisconnected, Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._io.websocket import CLOSE_TIMEOUT
from trasgi.testing import (
    WebSocketClosed,
    WebSocketDenied,
    open_connection,
    open_websocket,
)
from trasgi.testing._websocket import connect_websocket

from ..helpers import HANG, RawClient, Receive, Send, read_until_closed, status_of


class Echo:
    """Accepts, echoes every message, and records what it saw.

    A text message ``close CODE REASON`` makes it close with that code.
    """

    def __init__(self, subprotocol: str | None = None) -> None:
        self.subprotocol = subprotocol
        self.scope: dict[str, Any] = {}
        self.disconnect: dict[str, Any] | None = None
        self.send_error: BaseException | None = None
        self.done = trio.Event()

    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        self.scope = dict(scope)
        try:
            assert await receive() == {"type": "websocket.connect"}
            await send({"type": "websocket.accept", "subprotocol": self.subprotocol})
            await self.echo(receive, send)
        finally:
            self.done.set()

    async def echo(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.disconnect = dict(message)
                return
            text = message.get("text")
            if text and text.startswith("close "):
                _, code, reason = text.split(" ", 2)
                await send(
                    {"type": "websocket.close", "code": int(code), "reason": reason}
                )
                continue
            reply: dict[str, Any] = {"type": "websocket.send"}
            for key in ("text", "bytes"):
                if key in message:
                    reply[key] = message[key]
            await send(reply)


def handshake_bytes(target: str = "/", **request: Any) -> bytes:
    return WSConnection(ConnectionType.CLIENT).send(
        Request(host="testserver", target=target, **request)
    )


# -- messages ----------------------------------------------------------------


async def test_echo_text_and_bytes() -> None:
    app = Echo()
    with trio.fail_after(HANG):
        async with open_websocket(app, "/room/caf%C3%A9?x=1") as ws:
            await ws.send_text("héllo")
            assert await ws.receive() == "héllo"
            await ws.send_bytes(b"\x00\xff")
            assert await ws.receive() == b"\x00\xff"
    scope = app.scope
    assert scope["type"] == "websocket"
    assert scope["path"] == "/room/café"
    assert scope["raw_path"] == b"/room/caf%C3%A9"
    assert scope["query_string"] == b"x=1"
    assert scope["scheme"] == "ws"
    assert scope["client"] == ("testclient", 50000)
    assert scope["asgi"]["spec_version"] == "2.5"
    assert "websocket.http.response" in scope["extensions"]


@pytest.mark.parametrize("compression", [True, False])
async def test_a_one_mebibyte_message_each_way(compression: bool) -> None:
    big = bytes(range(256)) * 4096
    with trio.fail_after(HANG):
        async with open_websocket(Echo(), compression=compression) as ws:
            await ws.send_bytes(big)
            assert await ws.receive_bytes() == big
            await ws.send_text("ü" * (1 << 19))
            assert await ws.receive_text() == "ü" * (1 << 19)


async def test_the_app_close_code_and_reason_reach_the_client() -> None:
    app = Echo()
    with trio.fail_after(HANG):
        async with open_websocket(app) as ws:
            await ws.send_text("close 4000 see you")
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
        await app.done.wait()
    assert (closed.value.code, closed.value.reason) == (4000, "see you")
    # The client echoed the code; the application hears it back.
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 4000,
        "reason": "see you",
    }


async def test_the_client_close_code_and_reason_reach_the_app() -> None:
    app = Echo()
    with trio.fail_after(HANG):
        async with open_websocket(app) as ws:
            await ws.close(4001, "ciao")
            assert (ws.close_code, ws.close_reason) == (4001, "ciao")
        await app.done.wait()
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 4001,
        "reason": "ciao",
    }


async def test_a_client_that_vanishes_is_a_1006_and_send_raises() -> None:
    got_disconnect = trio.Event()
    outcome: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        outcome.append(await receive())
        got_disconnect.set()
        try:
            await send({"type": "websocket.send", "text": "anyone?"})
        except ClientDisconnected as exc:
            outcome.append(exc)

    client_end, server_end = trio.testing.memory_stream_pair()
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                handle_connection,
                server_end,
                app,
                Config(),
                ConnectionInfo(),
                ServerShared(),
            )
            await connect_websocket(client_end)
            await client_end.aclose()
            await got_disconnect.wait()
    assert outcome[0] == {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    assert isinstance(outcome[1], OSError)


async def test_the_app_returning_while_open_closes_with_1000() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": "one and done"})

    with trio.fail_after(HANG):
        async with open_websocket(app) as ws:
            assert await ws.receive() == "one and done"
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert closed.value.code == 1000


async def test_a_frame_sent_with_the_handshake_is_not_lost() -> None:
    # RFC 6455 section 4.1 forbids it, but h11 may have read past the head:
    # those bytes must reach wsproto, in order.
    client = WSConnection(ConnectionType.CLIENT)
    head = client.send(Request(host="testserver", target="/"))
    frame = Connection(ConnectionType.CLIENT).send(TextMessage(data="early"))
    app = Echo()
    with trio.fail_after(HANG):
        async with open_connection(app) as stream:
            await stream.send_all(head + frame)
            data = b""
            while b"early" not in data:
                data += await stream.receive_some(1000)
    assert data.startswith(b"HTTP/1.1 101 ")


# -- the handshake -----------------------------------------------------------


async def test_subprotocol_negotiation() -> None:
    app = Echo(subprotocol="v2.chat")
    async with open_websocket(app, subprotocols=["v1.chat", "v2.chat"]) as ws:
        assert ws.subprotocol == "v2.chat"
    assert app.scope["subprotocols"] == ["v1.chat", "v2.chat"]


@pytest.mark.parametrize(
    ("offer", "enabled", "negotiated"),
    [(True, True, ["permessage-deflate"]), (True, False, []), (False, True, [])],
)
async def test_compression_is_negotiated(
    offer: bool, enabled: bool, negotiated: list[str]
) -> None:
    config = Config(ws_per_message_deflate=enabled)
    async with open_websocket(Echo(), compression=offer, config=config) as ws:
        assert ws.extensions == negotiated
        await ws.send_text("squeeze " * 50)
        assert await ws.receive() == "squeeze " * 50


async def test_close_before_accept_is_403_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})

    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(app, "/private"):
            pass
    assert denied.value.status_code == 403
    assert denied.value.body == b"Forbidden\n"
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert any('"GET /private HTTP/1.1" 403' in line for line in lines)


async def test_a_denial_response() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        assert "websocket.http.response" in scope["extensions"]
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", b"12"),
                ],
            }
        )
        await send(
            {
                "type": "websocket.http.response.body",
                "body": b"log in ",
                "more_body": True,
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"first"})

    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(app):
            pass
    assert denied.value.status_code == 401
    assert (b"www-authenticate", b"Bearer") in denied.value.headers
    assert denied.value.body == b"log in first"


async def test_the_101_is_in_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    async with open_websocket(Echo(), "/live"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert any('"GET /live HTTP/1.1" 101 0' in line for line in lines)


@pytest.mark.parametrize(
    ("drop", "status"), [(b"sec-websocket-key", 400), (b"sec-websocket-version", 400)]
)
async def test_an_invalid_handshake_gets_an_http_error(
    drop: bytes, status: int
) -> None:
    called = False

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    head = handshake_bytes()
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(drop)]
    async with open_connection(app) as stream:
        await stream.send_all(b"\r\n".join(lines))
        raw = await read_until_closed(stream)
    assert status_of(raw) == status
    assert b"invalid websocket handshake" in raw
    assert not called


async def test_an_unsupported_version_gets_426_naming_13() -> None:
    head = handshake_bytes().replace(
        b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"
    )
    async with open_connection(Echo()) as stream:
        await stream.send_all(head)
        raw = await read_until_closed(stream)
    assert status_of(raw) == 426
    assert b"Sec-WebSocket-Version: 13\r\n" in raw


# -- failures ----------------------------------------------------------------


async def test_an_exception_before_accept_is_a_500(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(app):
            pass
    assert denied.value.status_code == 500
    records = [
        r for r in errors.records if "exception in ASGI application" in r.getMessage()
    ]
    assert records
    assert records[0].exc_info is not None


async def test_an_exception_after_accept_closes_with_1011(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    with trio.fail_after(HANG):
        async with open_websocket(app) as ws:
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert closed.value.code == 1011
    assert any(
        "exception in ASGI application" in r.getMessage() for r in errors.records
    )


async def test_returning_without_answering_the_handshake_is_a_500(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()

    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(app):
            pass
    assert denied.value.status_code == 500
    assert any("without accepting or closing" in r.getMessage() for r in errors.records)


async def test_an_out_of_order_message_is_named_and_closes_with_1011(
    errors: pytest.LogCaptureFixture,
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.accept"})
        except ASGIProtocolError as exc:
            raised.append(exc)
        await receive()  # the disconnect

    with trio.fail_after(HANG):
        async with open_websocket(app) as ws:
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
    assert closed.value.code == 1011
    assert len(raised) == 1
    logged = [r.getMessage() for r in errors.records if r.levelno == logging.ERROR]
    assert logged == [
        'ASGI protocol error while serving websocket "GET /": the application '
        "sent 'websocket.accept' twice"
    ]


async def test_a_message_over_max_size_closes_with_1009() -> None:
    app = Echo()
    with trio.fail_after(HANG):
        async with open_websocket(app, config=Config(ws_max_size=1000)) as ws:
            await ws.send_bytes(b"x" * 1000)
            assert await ws.receive() == b"x" * 1000
            await ws.send_bytes(b"x" * 1001)
            with pytest.raises(WebSocketClosed) as closed:
                await ws.receive()
        await app.done.wait()
    assert closed.value.code == 1009
    assert app.disconnect is not None
    assert app.disconnect["code"] == 1009


# -- keepalive ---------------------------------------------------------------


async def test_a_missing_pong_closes_with_1011(
    autojump_clock: trio.testing.MockClock, errors: pytest.LogCaptureFixture
) -> None:
    app = Echo()
    config = Config(ws_ping_interval=5, ws_ping_timeout=3)
    async with open_websocket(app, config=config) as ws:
        start = trio.current_time()
        await app.done.wait()  # the client reads nothing, so never pongs
        assert trio.current_time() - start == pytest.approx(8)
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive()
    assert closed.value.code == 1011
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1011,
        "reason": "keepalive ping timeout",
    }
    assert any("no pong within 3s" in r.getMessage() for r in errors.records)


async def test_a_client_that_pongs_stays_connected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = Echo()
    config = Config(ws_ping_interval=5, ws_ping_timeout=3)
    async with open_websocket(app, config=config) as ws:
        with trio.move_on_after(100):
            await ws.receive()  # answers every ping while it waits
        await ws.send_text("still here")
        assert await ws.receive() == "still here"
    assert app.disconnect is not None
    assert app.disconnect["code"] == 1000  # the client's own close on exit


# -- flow control ------------------------------------------------------------


async def test_reading_stops_while_the_app_lags(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    received: list[str] = []
    sent = 0

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()
        while (message := await receive())["type"] == "websocket.receive":
            received.append(message["text"])

    config = Config(ws_max_queue=3, ws_ping_interval=None)
    lockstep = trio.testing.lockstep_stream_pair
    with trio.fail_after(1000):
        async with open_websocket(
            app, config=config, compression=False, stream_pair=lockstep
        ) as ws:

            async def flood() -> None:
                nonlocal sent
                for n in range(50):
                    await ws.send_text(str(n))
                    sent += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(flood)
                await trio.sleep(60)
                # A lockstep write waits for a read: the server stopped
                # reading once three messages were queued.
                assert 3 <= sent <= 4
                release.set()
    assert received == [str(n) for n in range(50)]


async def test_send_waits_for_the_client_to_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "bytes": b"x" * 1000})
        sent.set()
        await receive()

    lockstep = trio.testing.lockstep_stream_pair
    with trio.fail_after(1000):
        async with open_websocket(app, stream_pair=lockstep) as ws:
            await trio.sleep(10)
            assert not sent.is_set()
            assert await ws.receive() == b"x" * 1000
            await sent.wait()


async def test_a_client_that_stops_reading_is_cut_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The ping cannot even be written: past the pong deadline the server
    # tries to send a close frame, and past the close deadline it aborts,
    # which unblocks the application's send().
    failed_at: list[float] = []
    failed = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            while True:
                await send({"type": "websocket.send", "bytes": b"x"})
        except ClientDisconnected:
            failed_at.append(trio.current_time())
            failed.set()

    config = Config(ws_ping_interval=5, ws_ping_timeout=3)
    lockstep = trio.testing.lockstep_stream_pair
    with trio.fail_after(1000):
        async with open_websocket(app, config=config, stream_pair=lockstep) as ws:
            start = trio.current_time()
            await failed.wait()
            assert failed_at[0] - start == pytest.approx(5 + 3 + CLOSE_TIMEOUT)
            assert ws.close_code is None  # no close frame could be delivered


# -- shutdown and --ws none --------------------------------------------------


async def test_shutdown_closes_with_1001_and_tells_the_app() -> None:
    shared = ServerShared()
    apps = [Echo(), Echo()]
    clients = []
    streams: list[trio.abc.Stream] = []
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            for app in apps:
                client_end, server_end = trio.testing.memory_stream_pair()
                nursery.start_soon(
                    handle_connection,
                    server_end,
                    app,
                    Config(),
                    ConnectionInfo(),
                    shared,
                )
                clients.append(await connect_websocket(client_end))
                streams.append(client_end)
            shared.begin_shutdown()
            for client, app in zip(clients, apps, strict=True):
                with pytest.raises(WebSocketClosed) as closed:
                    await client.receive()
                assert (closed.value.code, closed.value.reason) == (
                    1001,
                    "server shutting down",
                )
                await app.done.wait()
                assert app.disconnect == {
                    "type": "websocket.disconnect",
                    "code": 1001,
                    "reason": "server shutting down",
                }
            for stream in streams:
                await stream.aclose()  # the server closed first; it waits for ours


async def test_a_handshake_pending_at_shutdown_is_closed_after_its_accept() -> None:
    shared = ServerShared()
    go = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await go.wait()
        await send({"type": "websocket.accept"})
        assert (await receive())["code"] == 1001

    client_end, server_end = trio.testing.memory_stream_pair()
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                handle_connection, server_end, app, Config(), ConnectionInfo(), shared
            )
            async with trio.open_nursery() as inner:
                inner.start_soon(_connect_and_expect_1001, client_end)
                await trio.testing.wait_all_tasks_blocked()
                shared.begin_shutdown()
                await trio.testing.wait_all_tasks_blocked()
                go.set()


async def _connect_and_expect_1001(stream: trio.abc.Stream) -> None:
    client = await connect_websocket(stream)
    with pytest.raises(WebSocketClosed) as closed:
        await client.receive()
    assert closed.value.code == 1001
    await stream.aclose()


async def test_an_upgrade_arriving_during_shutdown_gets_503() -> None:
    shared = ServerShared()
    client_end, server_end = trio.testing.memory_stream_pair()
    head = handshake_bytes()
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                handle_connection,
                server_end,
                Echo(),
                Config(),
                ConnectionInfo(),
                shared,
            )
            await client_end.send_all(head[:20])
            await trio.testing.wait_all_tasks_blocked()
            shared.begin_shutdown()
            await client_end.send_all(head[20:])
            raw = await read_until_closed(client_end)
            await client_end.aclose()
    assert status_of(raw) == 503
    assert b"shutting down" in raw


async def test_with_ws_none_an_upgrade_is_plain_http_and_the_connection_goes_on() -> (
    None
):
    scopes: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        scopes.append(scope["type"])
        assert (await receive())["type"] == "http.request"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"2")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    upgrade = [
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ]
    with trio.fail_after(HANG):
        async with open_connection(app, config=Config(ws="none")) as stream:
            client = RawClient(stream)
            await client.request("GET", "/ws", headers=upgrade)
            response, body = await client.response()
            assert (response.status_code, body) == (200, b"ok")
            client.next_cycle()
            await client.request("GET", "/again")
            response, body = await client.response()
            assert (response.status_code, body) == (200, b"ok")
    assert scopes == ["http", "http"]


async def test_the_concurrency_limit_applies_to_websockets() -> None:
    release = trio.Event()
    shared = ServerShared()
    config = Config(limit_concurrency=1)

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await release.wait()

    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            first, server_end = trio.testing.memory_stream_pair()
            nursery.start_soon(
                handle_connection, server_end, app, config, ConnectionInfo(), shared
            )
            await connect_websocket(first)
            second, server_end = trio.testing.memory_stream_pair()
            nursery.start_soon(
                handle_connection, server_end, app, config, ConnectionInfo(), shared
            )
            with pytest.raises(WebSocketDenied) as denied:
                await connect_websocket(second)
            assert denied.value.status_code == 503
            release.set()
            await first.aclose()
            await second.aclose()


async def test_a_path_that_is_not_utf8_gets_400() -> None:
    async with open_connection(Echo()) as stream:
        await stream.send_all(handshake_bytes("/%FF"))
        raw = await read_until_closed(stream)
    assert status_of(raw) == 400
    assert b"not valid UTF-8" in raw


async def test_a_denial_response_cut_short_aborts_the_connection(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.http.response.start", "status": 400})
        await send(
            {"type": "websocket.http.response.body", "body": b"par", "more_body": True}
        )

    async with open_connection(app) as stream:
        await stream.send_all(handshake_bytes())
        raw = await read_until_closed(stream)
    assert status_of(raw) == 400
    assert raw.endswith(b"3\r\npar\r\n")  # no final chunk: visibly truncated
    assert any(
        "before completing the denial response" in r.getMessage()
        for r in errors.records
    )


async def test_without_a_pong_deadline_pings_go_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = Echo()
    config = Config(ws_ping_interval=10, ws_ping_timeout=None)
    with trio.fail_after(1000):
        async with open_websocket(app, config=config) as ws:
            await trio.sleep(100)  # not reading: ten pings go unanswered
            assert app.disconnect is None
            await ws.send_text("still open")
            assert await ws.receive() == "still open"
