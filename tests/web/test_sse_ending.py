"""EventSourceResponse ends its stream when receive() says http.disconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import trio
import trio.testing

from trasgi.testing import open_connection
from trasgi_web import App, EventSourceResponse


async def test_a_client_that_leaves_between_events_closes_the_iterator_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Not at the next event, which may be long in coming: at the disconnect."""
    closed = trio.Event()
    next_event = trio.Event()  # never set: no next event, ever

    async def events() -> AsyncIterator[Any]:
        try:
            yield "first"
            await next_event.wait()
            yield "never"
        finally:
            closed.set()

    app = App()

    @app.get("/events")
    async def stream() -> EventSourceResponse:
        return EventSourceResponse(events(), ping=None)

    async with open_connection(app) as client:
        await client.send_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"data: first" not in received:
            received += await client.receive_some(4096)
        await client.aclose()
        began = trio.current_time()
        with trio.fail_after(60):
            await closed.wait()
        assert trio.current_time() == began
