"""Server-sent events (HTML Living Standard, "Server-sent events")."""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ._concurrency import run_beside
from ._responses import JSON_ENCODER, Response
from ._types import Receive, Scope, Send

#: Seconds between keep-alive comments: below the 30-60 s idle timeouts of
#: common proxies, so an idle stream is not cut.
DEFAULT_PING_SECONDS = 15.0


@dataclass(frozen=True)
class ServerSentEvent:
    """One event of an event stream.

    Attributes:
        data: The payload; ``str`` is sent as is (one ``data:`` line per
            line), anything else as JSON.
        event: The event type (``addEventListener`` name); ``message`` if None.
        id: Sets the client's last event ID, sent back on reconnection.
        retry: Milliseconds the client waits before reconnecting.
    """

    data: Any = ""
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The event in wire format, ending with the blank line that dispatches it.

        Error handling:
            ``ValueError`` if ``event`` or ``id`` holds a line break, which
            would end the field early; ``id`` may not hold NUL either.
        """
        lines = []
        for field, value in (("event", self.event), ("id", self.id)):
            if value is not None:
                if "\n" in value or "\r" in value or (field == "id" and "\0" in value):
                    raise ValueError(
                        f"event {field} {value!r} has a forbidden character"
                    )
                lines.append(f"{field}: {value}")
        if self.retry is not None:
            lines.append(f"retry: {int(self.retry)}")
        # The JSON of every other response: compact, UTF-8, no NaN.
        text = (
            self.data if isinstance(self.data, str) else JSON_ENCODER.encode(self.data)
        )
        # A line break inside the data becomes a new "data:" line, which the
        # client joins back with "\n".
        lines.extend(
            f"data: {line}"
            for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        )
        return ("\n".join(lines) + "\n\n").encode("utf-8")


class EventSourceResponse(Response):
    """A ``text/event-stream`` response fed by an async iterable of events.

    Items may be :class:`ServerSentEvent`, ``str`` (one ``message`` event) or
    any JSON-serialisable value. When no event comes for ``ping`` seconds, a
    comment line (``: ping``) is sent, which clients ignore, so proxies keep
    the connection open.

    Args:
        content: The events.
        status_code: The HTTP status.
        headers: Extra headers.
        ping: Seconds of silence before a keep-alive comment; ``None`` for
            none.

    The stream also ends when ``receive()`` reports ``http.disconnect``:
    the client left, or the server is shutting down (trasgi says so to a
    streaming response when its graceful shutdown begins). The body is then
    ended properly, so the client sees a complete response and reconnects
    (an ``EventSource`` does, after ``retry`` milliseconds).

    Resource handling:
        The iterator runs in a task of its own so that waiting for it can be
        interrupted by the ping timer without cancelling the iterator. It is
        closed when the response ends (client gone, shutdown, cancellation,
        or the end of the iterator). For ``HEAD`` it is not run.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        ping: float | None = DEFAULT_PING_SECONDS,
    ) -> None:
        self.content = content
        self.ping = ping
        super().__init__(None, status_code, headers)
        self.headers.pop_all("content-length")
        # Caches and proxies must not store or buffer a live stream.
        self.headers.setdefault_value("cache-control", "no-store")
        self.headers.setdefault_value("x-accel-buffering", "no")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self.start_message())
        if scope.get("method") != "HEAD":
            await self._stream(receive, send)
        await send({"type": "http.response.body", "body": b""})

    async def _stream(self, receive: Receive, send: Send) -> None:
        events_in, events_out = trio.open_memory_channel[Any](0)

        async def forward() -> None:
            wait = math.inf if self.ping is None else self.ping
            async with events_out:
                while True:
                    with trio.move_on_after(wait) as timer:
                        try:
                            event = await events_out.receive()
                        except trio.EndOfChannel:
                            return
                    body = b": ping\n\n" if timer.cancelled_caught else _encode(event)
                    await send(
                        {"type": "http.response.body", "body": body, "more_body": True}
                    )

        async def produce() -> None:
            async with events_in:
                try:
                    async for event in self.content:
                        await events_in.send(event)
                finally:
                    aclose = getattr(self.content, "aclose", None)
                    if aclose is not None:
                        with trio.CancelScope(shield=True):
                            await aclose()

        async def feed(stream: trio.CancelScope) -> None:
            async def listen(_: trio.CancelScope) -> None:
                await _until_disconnect(receive)
                stream.cancel()  # the client left, or the server is stopping

            await run_beside(produce, listen)

        await run_beside(forward, feed)


async def _until_disconnect(receive: Receive) -> None:
    """Return when ``receive()`` says ``http.disconnect`` (ASGI HTTP spec)."""
    while (await receive())["type"] != "http.disconnect":
        pass  # the rest of a request body nobody reads


def _encode(event: Any) -> bytes:
    if isinstance(event, ServerSentEvent):
        return event.encode()
    return ServerSentEvent(data=event).encode()
