"""trasgi_web served on asyncio (uvicorn's loop): a clear error, not trio's internals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from examples.hello import app
from trasgi._asgi import Message
from trasgi_web._app import NEEDS_TRIO


def call_on_asyncio(scope: dict[str, Any]) -> BaseException | None:
    """Call the app as an asyncio server would; what it raised, if anything."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    async def serve() -> BaseException | None:
        try:
            await app(scope, receive, send)
        except Exception as exc:
            return exc
        return None

    return asyncio.run(serve())


@pytest.mark.parametrize("kind", ["http", "lifespan"])
def test_trasgi_web_says_it_needs_a_trio_server(kind: str) -> None:
    scope = {
        "type": kind,
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [],
        "state": {},
    }
    raised = call_on_asyncio(scope)
    assert isinstance(raised, RuntimeError)
    assert str(raised) == NEEDS_TRIO
    assert "hypercorn --worker-class trio" in NEEDS_TRIO
