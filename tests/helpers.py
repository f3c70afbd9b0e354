"""Shared helpers: tiny ASGI apps and a raw HTTP client over memory streams."""

from __future__ import annotations

import os
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

import h11
import pytest
import trio

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Long enough for any in-memory exchange; short enough that a hang fails fast.
HANG = 30.0


def text_response(
    body: bytes = b"ok",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Callable[[Any, Receive, Send], Awaitable[None]]:
    """An app that answers every request with ``body``."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": headers
                if headers is not None
                else [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def echo_app(scope: Any, receive: Receive, send: Send) -> None:
    """Echo the request body back, with the path in a header."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-length", str(len(body)).encode()),
                (b"x-path", scope["path"].encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RawClient:
    """Speaks HTTP/1.1 to a stream with an h11 client, or raw bytes."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def send(self, *events: h11.Event) -> None:
        for event in events:
            await self.stream.send_all(self.h11.send(event) or b"")

    async def request(
        self,
        method: str = "GET",
        target: str = "/",
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> None:
        headers = list(headers or [])
        names = {name.lower() for name, _ in headers}
        if "host" not in names:
            headers.append(("host", "testserver"))
        if (
            body is not None
            and "content-length" not in names
            and "transfer-encoding" not in names
        ):
            headers.append(("content-length", str(len(body))))
        await self.send(h11.Request(method=method, target=target, headers=headers))
        if body:
            await self.send(h11.Data(data=body))
        if body is not None or method in ("GET", "HEAD"):
            await self.send(h11.EndOfMessage())

    async def next_event(self) -> Any:
        with trio.fail_after(HANG):
            while True:
                event = self.h11.next_event()
                if event is h11.NEED_DATA:
                    self.h11.receive_data(bytes(await self.stream.receive_some(65536)))
                    continue
                return event

    async def response(self) -> tuple[h11.Response, bytes]:
        """Read one whole response: the head and the body."""
        head = await self.next_event()
        while isinstance(head, h11.InformationalResponse):
            head = await self.next_event()
        assert isinstance(head, h11.Response), head
        body = b""
        while True:
            event = await self.next_event()
            if isinstance(event, h11.EndOfMessage):
                return head, body
            assert isinstance(event, h11.Data), event
            body += event.data

    def next_cycle(self) -> None:
        self.h11.start_next_cycle()


async def read_until_closed(stream: trio.abc.Stream) -> bytes:
    """Read raw bytes until the server closes its side."""
    data = b""
    with trio.fail_after(HANG):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return data
            if not chunk:
                return data
            data += chunk


def status_of(raw: bytes) -> int:
    """The status code of the first response in ``raw``."""
    assert raw.startswith(b"HTTP/1.1 "), raw[:80]
    return int(raw.split(b" ", 2)[1])


def header_of(raw: bytes, name: bytes) -> bytes | None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


def require_tool(name: str, package: str) -> str:
    """The path of a system tool a test drives, from the named Debian package.

    ``.ci/run`` installs every such package, and there (``CI`` is set) a
    missing tool fails the test. On a developer's machine without it, the
    test is skipped with the command that installs it, so that the README's
    test command works with nothing but Python and pip.
    """
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is missing: apt-get install {package} (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
