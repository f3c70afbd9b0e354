"""Slow and silent clients: every wait is bounded by a deadline (mock clock)."""

from __future__ import annotations

import functools
from typing import Any

import trio
import trio.testing

import trasgi
from trasgi import Config
from trasgi.testing import open_connection

from ..helpers import RawClient, Receive, Send, echo_app, read_until_closed, status_of


async def test_silent_connection_is_closed_without_a_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(echo_app) as stream:
        start = trio.current_time()
        assert await read_until_closed(stream) == b""
    assert trio.current_time() - start == Config().timeout_header_read


async def test_byte_a_second_head_gets_408_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(echo_app) as stream:
        start = trio.current_time()

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X: y\r\n" * 100:
                await stream.send_all(bytes([byte]))
                await trio.sleep(1)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            data = await read_until_closed(stream)
            nursery.cancel_scope.cancel()
    assert status_of(data) == 408
    assert trio.current_time() - start < Config().timeout_header_read + 1


async def test_stalled_body_gets_408(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if not message.get("more_body"):
                return

    config = Config(timeout_body_read=7)
    async with open_connection(app, config=config) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        )
        start = trio.current_time()
        data = await read_until_closed(stream)
    assert status_of(data) == 408
    assert 7 <= trio.current_time() - start < 8
    assert seen == ["http.request", "http.disconnect"]


async def test_stalled_body_after_the_response_started_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"early", "more_body": True})
        while (await receive()).get("more_body"):
            pass

    config = Config(timeout_body_read=7)
    async with open_connection(app, config=config) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert b"early" in data
    assert not data.endswith(b"0\r\n\r\n")  # cut, not completed


async def test_client_that_stops_reading_is_dropped_and_send_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raised: list[str] = []
    done = trio.Event()

    async def firehose(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send(
                    {
                        "type": "http.response.body",
                        "body": b"x" * 65536,
                        "more_body": True,
                    }
                )
        except OSError as exc:
            raised.append(str(exc))
            done.set()

    config = Config(timeout_write=5)
    pair = trio.testing.lockstep_stream_pair
    async with open_connection(firehose, config=config, stream_pair=pair) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = trio.current_time()
        with trio.fail_after(60):
            await done.wait()
    assert raised == ["the client stopped reading the response"]
    assert 5 <= trio.current_time() - start < 7


async def test_idle_keep_alive_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection(echo_app) as stream:
        client = RawClient(stream)
        await client.request()
        await client.response()
        start = trio.current_time()
        assert await read_until_closed(stream) == b""
    assert trio.current_time() - start == Config().timeout_keep_alive


async def test_slow_but_steady_reader_is_not_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The write timeout bounds progress, not the time of a whole body."""
    body = b"y" * (1024 * 1024)

    async def big(scope: Any, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    config = Config(timeout_write=5)
    async with open_connection(
        big, config=config, stream_pair=trio.testing.lockstep_stream_pair
    ) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        start = trio.current_time()
        data = b""
        while chunk := await stream.receive_some(64 * 1024):
            data += chunk
            await trio.sleep(1)  # 64 KiB a second: 16 s for the body
    assert data.endswith(body)
    assert trio.current_time() - start > 5 * 2


async def test_a_stalled_reader_over_tcp_is_dropped_after_the_write_timeout() -> None:
    """Over a real socket the stream bounds the wait itself; same outcome."""
    raised: list[str] = []
    done = trio.Event()

    async def firehose(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                chunk = {"type": "http.response.body", "body": b"x" * 65536}
                await send({**chunk, "more_body": True})
        except OSError as exc:
            raised.append(str(exc))
            done.set()

    config = Config(timeout_write=0.5, lifespan="off")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trasgi.serve_tcp, host="127.0.0.1", config=config),
            firehose,
            0,
        )
        port = listeners[0].socket.getsockname()[1]
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        start = trio.current_time()
        with trio.fail_after(10):
            await done.wait()  # the client never reads a byte
        elapsed = trio.current_time() - start
        await client.aclose()
        nursery.cancel_scope.cancel()
    assert raised == ["the client stopped reading the response"]
    assert 0.5 <= elapsed < 5
