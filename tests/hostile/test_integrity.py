"""Response integrity: an app's mistakes never desynchronise the connection."""

from __future__ import annotations

from typing import Any

import pytest

from trasgi.testing import open_connection

from ..helpers import Receive, Send, read_until_closed, status_of


def app_sending(*messages: dict[str, Any]) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(message)

    return app


def start(
    status: int = 200, headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


CL5 = [(b"content-length", b"5")]


@pytest.mark.parametrize(
    ("messages", "status", "expected_tail", "words"),
    [
        # Nothing was written yet: replaced by a 500.
        (
            (start(200, CL5), body(b"too long")),
            500,
            b"Internal Server Error\n",
            "more body bytes",
        ),
        (
            (start(200, [(b"x", b"a\r\nInjected: 1")]), body(b"")),
            500,
            b"Internal Server Error\n",
            "invalid header",
        ),
        (
            (start(200, [(b"x", b"a\nb")]), body(b"")),
            500,
            b"Internal Server Error\n",
            "invalid header",
        ),
        (
            (start(200, [(b"x", b"a\x00b")]), body(b"")),
            500,
            b"Internal Server Error\n",
            "invalid header",
        ),
        (
            (start(200, [(b"bad name", b"v")]), body(b"")),
            500,
            b"Internal Server Error\n",
            "invalid header",
        ),
        ((start(99), body(b"")), 500, b"Internal Server Error\n", "integer status"),
        ((start(600), body(b"")), 500, b"Internal Server Error\n", "integer status"),
        (
            (start(204), body(b"nope")),
            500,
            b"Internal Server Error\n",
            "body with a 204",
        ),
        (
            (start(304), body(b"nope")),
            500,
            b"Internal Server Error\n",
            "body with a 304",
        ),
        # Bytes were written: the response is cut and the connection closed.
        (
            (start(200, CL5), body(b"hel", more=True), body(b"lo!!")),
            200,
            b"hel",
            "more body bytes",
        ),
        (
            (start(200, CL5), body(b"hel", more=True), body(b"")),
            200,
            b"hel",
            "fewer body bytes",
        ),
    ],
)
async def test_mistakes_are_never_written(
    errors: pytest.LogCaptureFixture,
    messages: tuple[dict[str, Any], ...],
    status: int,
    expected_tail: bytes,
    words: str,
) -> None:
    async with open_connection(app_sending(*messages)) as stream:
        # A second request is pipelined: it must never be answered from a
        # desynchronised stream.
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == status
    assert data.endswith(expected_tail)
    assert data.count(b"\r\n\r\n") == 1  # one response head, then the close
    assert b"Injected" not in data
    assert any(words in r.getMessage() for r in errors.records)


async def test_too_little_on_a_single_message_is_replaced() -> None:
    async with open_connection(app_sending(start(200, CL5), body(b"hi"))) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 500
