"""The applications every server under test serves.

``app`` is one plain ASGI 3 application with a route per scenario, so that
trasgi, uvicorn and hypercorn run byte-for-byte the same application code:

- ``GET /`` answers ``Hello, world!`` (13 bytes, with a Content-Length).
- ``GET /stream`` streams 1 MiB in 16 body messages of 64 KiB (no
  Content-Length, so HTTP/1.1 servers frame it with chunked encoding).
- ``POST /upload`` reads the whole request body and answers its length.
- ``GET /json`` answers a small JSON object, serialised on every request.
- ``GET /download?bytes=N`` answers N bytes (10 MiB when not given) with a
  Content-Length, in body messages of 64 KiB: a large download, for the
  HTTP/2 scenario where one stream of a connection stalls beside another.
- A WebSocket on any path echoes every message, text or bytes, until the
  client closes (the WebSocket echo scenario).

``starlette_json`` and ``trasgi_web_json`` are factories (served with
``--factory``) for the same JSON route written with Starlette and with
trasgi_web. They import their framework only when called, so this module
imports with the standard library alone.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HELLO = b"Hello, world!"
STREAM_CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 16
JSON_PAYLOAD = {"message": "Hello, world!"}
DOWNLOAD_BYTES = 10 * 2**20
#: The body of the typed scenario (bench_typed.py), POSTed by wrk.
ITEM = {"name": "widget", "price": 9.5, "count": 3, "tags": ["a", "b"], "active": True}
ITEM_JSON = json.dumps(ITEM, separators=(",", ":"))

_TEXT = (b"content-type", b"text/plain; charset=utf-8")
_JSON = (b"content-type", b"application/json")
_OCTETS = (b"content-type", b"application/octet-stream")


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown: nothing to set up."""
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def _fixed(
    send: Send, status: int, header: tuple[bytes, bytes], body: bytes
) -> None:
    """Send a complete response with a Content-Length."""
    headers = [header, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send) -> None:
    """Send 1 MiB in 64 KiB body messages, without a Content-Length."""
    await send({"type": "http.response.start", "status": 200, "headers": [_OCTETS]})
    for _ in range(STREAM_CHUNKS - 1):
        await send(
            {"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True}
        )
    await send({"type": "http.response.body", "body": STREAM_CHUNK})


def _download_size(scope: Scope) -> int:
    """The ``bytes`` query parameter of a download, or its default size."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("bytes")
    return int(values[0]) if values else DOWNLOAD_BYTES


async def _download(send: Send, size: int) -> None:
    """Send ``size`` bytes with a Content-Length, 64 KiB per body message."""
    headers = [_OCTETS, (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    chunk = len(STREAM_CHUNK)
    while size > chunk:
        await send(
            {"type": "http.response.body", "body": STREAM_CHUNK, "more_body": True}
        )
        size -= chunk
    await send({"type": "http.response.body", "body": STREAM_CHUNK[:size]})


async def _upload(receive: Receive, send: Send) -> None:
    """Read the whole request body and answer how many bytes it had."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    await _fixed(send, 200, _TEXT, str(size).encode())


async def _echo(receive: Receive, send: Send) -> None:
    """Accept a WebSocket and send every message back as it came."""
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        if message.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            await send({"type": "websocket.send", "text": message["text"]})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The plain ASGI application: one route per scenario."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _echo(receive, send)
        return
    path = scope["path"]
    if path == "/stream":
        await _stream(send)
    elif path == "/upload":
        await _upload(receive, send)
    elif path == "/json":
        await _fixed(send, 200, _JSON, json.dumps(JSON_PAYLOAD).encode())
    elif path == "/download":
        await _download(send, _download_size(scope))
    else:
        await _fixed(send, 200, _TEXT, HELLO)


def starlette_json() -> Any:
    """A Starlette application with the ``GET /json`` route."""
    applications = importlib.import_module("starlette.applications")
    responses = importlib.import_module("starlette.responses")
    routing = importlib.import_module("starlette.routing")

    async def json_route(request: Any) -> Any:
        return responses.JSONResponse(JSON_PAYLOAD)

    route = routing.Route("/json", json_route, methods=["GET"])
    return applications.Starlette(routes=[route])


def trasgi_web_json() -> Any:
    """A trasgi_web application with the ``GET /json`` route."""
    trasgi_web = importlib.import_module("trasgi_web")
    web = trasgi_web.App()

    async def json_route(request: Any) -> dict[str, str]:
        return dict(JSON_PAYLOAD)

    web.get("/json")(json_route)
    return web
