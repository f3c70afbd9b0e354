"""Limits: enforced however the bytes arrive, each answered with its status."""

from __future__ import annotations

from typing import Any

import h11
import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi.testing import open_connection

from ..helpers import (
    RawClient,
    Receive,
    Send,
    echo_app,
    header_of,
    read_until_closed,
    status_of,
    text_response,
)


@pytest.mark.parametrize("split", [False, True], ids=["one read", "byte by byte"])
async def test_large_head_gets_431_however_it_arrives(split: bool) -> None:
    raw = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    async with open_connection(echo_app) as stream:
        if split:
            for i in range(0, 20_000):
                await stream.send_all(raw[i : i + 1])
        else:
            await stream.send_all(raw)
        data = await read_until_closed(stream)
    assert status_of(data) == 431


async def test_head_just_under_the_limit_is_accepted() -> None:
    config = Config(h11_max_incomplete_event_size=4096)
    async with open_connection(echo_app, config=config) as stream:
        head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
        raw = head + b"a" * (4096 - len(head) - 4) + b"\r\n\r\n"
        assert len(raw) == 4096
        await stream.send_all(raw)
        data = await read_until_closed(stream)
    assert status_of(data) == 200


async def test_too_many_header_fields_gets_431() -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(101))
    async with open_connection(echo_app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 431


async def test_long_target_gets_414() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 414


async def test_declared_body_over_the_limit_gets_413_before_the_app_runs() -> None:
    called: list[bool] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        called.append(True)

    config = Config(limit_request_body=1000)
    async with open_connection(app, config=config) as stream:
        # Expect: 100-continue: the client never has to send the body at all.
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\nExpect: 100-continue\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 413
    assert b" 100 " not in data
    assert called == []


async def test_streamed_body_over_the_limit_gets_413_as_it_passes() -> None:
    seen: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen.append(-1)
                return
            seen.append(len(message["body"]))

    config = Config(limit_request_body=1000)
    async with open_connection(app, config=config) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(5):
            await stream.send_all(b"1F4\r\n" + b"x" * 500 + b"\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 413
    assert seen == [500, 500, -1]  # the app got 1000 bytes, then a disconnect


async def test_body_at_the_limit_is_accepted() -> None:
    config = Config(limit_request_body=1000)
    async with open_connection(echo_app, config=config) as stream:
        client = RawClient(stream)
        await client.request("POST", body=b"x" * 1000)
        head, body = await client.response()
    assert head.status_code == 200
    assert len(body) == 1000


async def test_max_requests_per_connection() -> None:
    config = Config(limit_requests_per_connection=3)
    async with open_connection(text_response(), config=config) as stream:
        client = RawClient(stream)
        for i in range(3):
            await client.request()
            head, _ = await client.response()
            closing = (b"connection", b"close") in head.headers
            assert closing == (i == 2)
            if not closing:
                client.next_cycle()
        assert await read_until_closed(stream) == b""


async def test_per_client_connection_cap() -> None:
    release = trio.Event()

    async def slow(scope: Any, receive: Receive, send: Send) -> None:
        await release.wait()
        await text_response()(scope, receive, send)

    shared = ServerShared()
    config = Config(limit_per_client=2)
    same = ConnectionInfo(client=("10.0.0.9", 1))
    other = ConnectionInfo(client=("10.0.0.10", 1))
    pairs = [trio.testing.memory_stream_pair() for _ in range(4)]
    infos = [same, same, same, other]
    async with trio.open_nursery() as nursery:
        for (client_end, server_end), info in zip(pairs, infos, strict=True):
            nursery.start_soon(
                handle_connection, server_end, slow, config, info, shared
            )
            await client_end.send_all(
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            await trio.testing.wait_all_tasks_blocked()
        data = await read_until_closed(pairs[2][0])
        assert status_of(data) == 503
        assert header_of(data, b"retry-after") == b"1"
        release.set()
        for index in (0, 1, 3):
            assert status_of(await read_until_closed(pairs[index][0])) == 200
    assert shared.per_client == {}  # counts return to zero


async def test_pipelined_flood_is_read_in_bounded_steps() -> None:
    """A client pipelining megabytes does not make the server buffer them."""
    gate = trio.Event()

    async def waits(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await gate.wait()
        await text_response()(scope, receive, send)

    client_end, server_end = trio.testing.lockstep_stream_pair()
    sent = 0
    async with open_connection(
        waits, stream_pair=lambda: (client_end, server_end)
    ) as stream:

        async def flood() -> None:
            nonlocal sent
            request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            for _ in range(100_000):
                await stream.send_all(request)
                sent += len(request)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            assert sent < 200 * 1024
            nursery.cancel_scope.cancel()


def test_h11_sees_one_request_at_a_time() -> None:
    # The property the flood test relies on: h11 pauses after each request.
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
    assert isinstance(conn.next_event(), h11.Request)
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    assert conn.next_event() is h11.PAUSED
