"""trasgi.testing: the httpx client over the real server, in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from trasgi import Config
from trasgi.testing import open_client

from .helpers import Receive, Send, echo_app


async def scope_app(scope: Any, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan")
    body = repr(
        (
            scope["scheme"],
            scope["client"],
            scope["server"],
            scope["path"],
            scope["query_string"],
        )
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_scope_seen_through_the_client() -> None:
    async with open_client(scope_app) as client:
        response = await client.get("/a%20b?x=1")
    assert response.text == repr(
        ("http", ("testclient", 50000), ("testserver", 80), "/a b", b"x=1")
    )


async def test_https_base_url_gives_https_scheme() -> None:
    async with open_client(scope_app, base_url="https://example.org") as client:
        response = await client.get("/")
    assert response.text.startswith(
        "('https', ('testclient', 50000), ('example.org', 443)"
    )


async def test_streaming_upload_and_download() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"%03d," % i

    async with (
        open_client(echo_app) as client,
        client.stream("POST", "/", content=chunks()) as response,
    ):
        received = b"".join([part async for part in response.aiter_bytes()])
    assert received == b"".join(b"%03d," % i for i in range(100))


async def test_streamed_response_arrives_in_pieces() -> None:
    step = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await step.wait()
        await send({"type": "http.response.body", "body": b"second"})

    parts: list[bytes] = []
    async with open_client(app) as client, client.stream("GET", "/") as response:
        async for part in response.aiter_raw():
            parts.append(part)
            step.set()  # the second part is sent only after the first arrived
    assert parts == [b"first", b"second"]


async def test_connections_are_kept_alive() -> None:
    async with open_client(scope_app) as client:
        first = await client.get("/")
        second = await client.get("/")
    assert first.text == second.text  # same client port: the same connection


async def test_server_errors_are_responses() -> None:
    async def failing(scope: Any, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async with open_client(failing, config=Config(lifespan="off")) as client:
        response = await client.get("/")
    assert response.status_code == 500


async def test_a_failing_assert_in_the_test_is_raised_as_itself() -> None:
    with pytest.raises(AssertionError, match="visible"):
        async with open_client(scope_app):
            raise AssertionError("visible")


async def test_timeouts_are_honoured(autojump_clock: trio.testing.MockClock) -> None:
    async def hangs(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await trio.sleep_forever()

    async with open_client(hangs, config=Config(lifespan="off")) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=2)
