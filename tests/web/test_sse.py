"""Server-sent events: encoding, keep-alive comments, HEAD."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trasgi.testing import open_client, open_connection
from trasgi_web import App, EventSourceResponse, ServerSentEvent


@pytest.mark.parametrize(
    ("event", "wire"),
    [
        (ServerSentEvent("hi"), b"data: hi\n\n"),
        (ServerSentEvent("a\nb\r\nc"), b"data: a\ndata: b\ndata: c\n\n"),
        (ServerSentEvent({"n": 1}), b'data: {"n":1}\n\n'),
        (
            ServerSentEvent("x", event="tick", id="7", retry=1500),
            b"event: tick\nid: 7\nretry: 1500\ndata: x\n\n",
        ),
    ],
)
def test_event_encoding(event: ServerSentEvent, wire: bytes) -> None:
    assert event.encode() == wire


@pytest.mark.parametrize(
    "event",
    [
        ServerSentEvent("x", event="a\nb"),
        ServerSentEvent("x", id="1\r"),
        ServerSentEvent("x", id="\0"),
    ],
)
def test_line_breaks_in_fields_are_refused(event: ServerSentEvent) -> None:
    with pytest.raises(ValueError, match="forbidden character"):
        event.encode()


def sse_app(events: AsyncIterator[Any], ping: float | None) -> App:
    app = App()

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events, ping=ping)

    return app


async def test_events_stream_with_keep_alive_comments() -> None:
    clock_go = trio.Event()

    async def events() -> AsyncIterator[Any]:
        yield "first"
        await clock_go.wait()
        yield ServerSentEvent({"n": 2}, event="update")

    app = sse_app(events(), ping=0.05)
    async with open_client(app) as client, client.stream("GET", "/events") as response:
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        assert "content-length" not in response.headers
        received = b""
        chunks = response.aiter_bytes()
        while b": ping" not in received:
            received += await chunks.__anext__()
        clock_go.set()
        received += b"".join([chunk async for chunk in chunks])
    assert received.startswith(b"data: first\n\n: ping\n\n")
    assert received.endswith(b'event: update\ndata: {"n":2}\n\n')


async def test_head_does_not_run_the_events() -> None:
    ran: list[bool] = []

    async def events() -> AsyncIterator[str]:
        ran.append(True)
        yield "x"

    async with open_client(sse_app(events(), ping=None)) as client:
        response = await client.head("/events")
    assert response.status_code == 200
    assert response.content == b""
    assert ran == []


async def test_the_event_iterator_is_closed_when_the_client_leaves() -> None:
    closed = trio.Event()

    async def events() -> AsyncIterator[str]:
        try:
            while True:
                yield "tick"
                await trio.sleep(0.01)
        finally:
            closed.set()

    # A raw connection, closed by the client after the first event.
    async with open_connection(sse_app(events(), ping=None)) as stream:
        await stream.send_all(b"GET /events HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        with trio.fail_after(5):
            while b"data: tick" not in received:
                received += await stream.receive_some()
    with trio.fail_after(5):
        await closed.wait()
