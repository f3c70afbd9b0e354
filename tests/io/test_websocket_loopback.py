"""WebSockets against a real loopback server, with the websockets library.

The websockets client is an independent implementation of RFC 6455 and
RFC 7692; its synchronous client runs in a worker thread while trio serves.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import trasgi
from trasgi import Config

from ..helpers import HANG, Receive, Send
from .test_websocket import Echo

T = TypeVar("T")
#: Generous for a loopback exchange; every blocking call is bounded by it.
TIMEOUT = 10.0


@asynccontextmanager
async def serving(app: Any, **options: Any) -> AsyncIterator[tuple[str, trio.Event]]:
    """Serve ``app`` on a free loopback port; yield its ws:// URL and the stop event."""
    stop = trio.Event()
    config = Config(lifespan="off", **options)
    async with trio.open_nursery() as nursery:
        serve = functools.partial(
            trasgi.serve_tcp,
            app,
            0,
            host="127.0.0.1",
            config=config,
            shutdown_trigger=stop.wait,
        )
        listeners = await nursery.start(serve)
        port = listeners[0].socket.getsockname()[1]
        yield f"ws://127.0.0.1:{port}", stop
        stop.set()


def client(url: str, **options: Any) -> ClientConnection:
    options.setdefault("open_timeout", TIMEOUT)
    options.setdefault("close_timeout", TIMEOUT)
    ws = connect(url, proxy=None, **options)
    assert isinstance(ws, ClientConnection)
    return ws


async def in_thread(function: Callable[[], T]) -> T:
    with trio.fail_after(HANG):
        return await trio.to_thread.run_sync(function)


async def test_echo_text_bytes_and_a_mebibyte() -> None:
    big = bytes(range(256)) * 4096

    def talk() -> list[Any]:
        with client(url, max_size=2 * len(big)) as ws:
            ws.send("héllo")
            text = ws.recv(TIMEOUT)
            ws.send(b"\x00\xff")
            data = ws.recv(TIMEOUT)
            ws.send(big)
            echoed = ws.recv(TIMEOUT)
            return [text, data, echoed == big]

    async with serving(Echo()) as (url, _):
        assert await in_thread(talk) == ["héllo", b"\x00\xff", True]


async def test_close_codes_and_reasons_both_ways() -> None:
    server_closes, client_closes = Echo(), Echo()

    def closed_by_server() -> tuple[int, str]:
        with client(server_url) as ws:
            ws.send("close 4000 see you")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(TIMEOUT)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason

    def closes_itself() -> None:
        with client(client_url) as ws:
            ws.close(4001, "ciao")

    async with (
        serving(server_closes) as (server_url, _),
        serving(client_closes) as (client_url, _),
    ):
        assert await in_thread(closed_by_server) == (4000, "see you")
        await in_thread(closes_itself)
        with trio.fail_after(HANG):
            await client_closes.done.wait()
    assert client_closes.disconnect == {
        "type": "websocket.disconnect",
        "code": 4001,
        "reason": "ciao",
    }


async def test_reject_before_accept_is_403() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.close"})

    def attempt() -> int:
        with pytest.raises(InvalidStatus) as refused:
            client(url)
        return refused.value.response.status_code

    async with serving(app) as (url, _):
        assert await in_thread(attempt) == 403


async def test_a_denial_response() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"log in first"})

    def attempt() -> tuple[int, str | None, bytes]:
        with pytest.raises(InvalidStatus) as refused:
            client(url)
        response = refused.value.response
        return (
            response.status_code,
            response.headers.get("www-authenticate"),
            bytes(response.body),
        )

    async with serving(app) as (url, _):
        assert await in_thread(attempt) == (401, "Bearer", b"log in first")


async def test_subprotocol_and_compression_are_negotiated() -> None:
    def handshake(url: str) -> tuple[str | None, str | None, str]:
        with client(url, subprotocols=["v1.chat", "v2.chat"]) as ws:
            ws.send("squeeze " * 100)
            echoed = ws.recv(TIMEOUT)
            assert isinstance(echoed, str)
            assert ws.response is not None
            return (
                ws.subprotocol,
                ws.response.headers.get("sec-websocket-extensions"),
                echoed,
            )

    async with (
        serving(Echo(subprotocol="v2.chat")) as (url, _),
        serving(Echo(), ws_per_message_deflate=False) as (plain_url, _),
    ):
        subprotocol, extensions, echoed = await in_thread(
            functools.partial(handshake, url)
        )
        assert subprotocol == "v2.chat"
        assert extensions is not None
        assert extensions.startswith("permessage-deflate")
        assert echoed == "squeeze " * 100
        _, plain, _ = await in_thread(functools.partial(handshake, plain_url))
        assert plain is None


async def test_a_message_over_max_size_closes_with_1009() -> None:
    def oversize() -> int:
        with client(url) as ws:
            ws.send(b"x" * 1024)
            assert ws.recv(TIMEOUT) == b"x" * 1024
            ws.send(b"x" * 1025)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(TIMEOUT)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code

    async with serving(Echo(), ws_max_size=1024) as (url, _):
        assert await in_thread(oversize) == 1009


async def test_pings_both_ways_keep_the_connection_open() -> None:
    def idle() -> str:
        # The client pings every 50 ms and needs pongs within 500 ms; the
        # server does the same. Nothing else is sent for a second.
        with client(url, ping_interval=0.05, ping_timeout=0.5) as ws:
            with pytest.raises(TimeoutError):
                ws.recv(1.0)
            ws.send("alive")
            reply = ws.recv(TIMEOUT)
            assert isinstance(reply, str)
            return reply

    async with serving(Echo(), ws_ping_interval=0.05, ws_ping_timeout=0.5) as (
        url,
        _,
    ):
        assert await in_thread(idle) == "alive"


async def test_shutdown_sends_1001_and_tells_the_app() -> None:
    app = Echo()
    accepted = trio.Event()

    async def announcing(scope: Any, receive: Receive, send: Send) -> None:
        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "websocket.accept":
                accepted.set()

        await app(scope, receive, sending)

    def wait_for_close() -> tuple[int, str]:
        with client(url) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(TIMEOUT)
        assert closed.value.rcvd is not None
        return closed.value.rcvd.code, closed.value.rcvd.reason

    result: list[tuple[int, str]] = []

    async def run_client() -> None:
        result.append(await in_thread(wait_for_close))

    async with serving(announcing) as (url, stop), trio.open_nursery() as nursery:
        nursery.start_soon(run_client)
        with trio.fail_after(HANG):
            await accepted.wait()
        stop.set()
    assert result == [(1001, "server shutting down")]
    assert app.disconnect == {
        "type": "websocket.disconnect",
        "code": 1001,
        "reason": "server shutting down",
    }


async def test_with_ws_none_the_upgrade_gets_a_plain_http_answer() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"no websockets here"})

    def attempt() -> tuple[int, bytes]:
        with pytest.raises(InvalidStatus) as refused:
            client(url)
        response = refused.value.response
        return response.status_code, bytes(response.body)

    async with serving(app, ws="none") as (url, _):
        assert await in_thread(attempt) == (200, b"no websockets here")
