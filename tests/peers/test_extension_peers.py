"""The response extensions against real peers on loopback: curl, httpx, sendfile.

curl shows what a client sees on the wire (``-v``: the ``103`` heads and the
trailer fields, over HTTP/1.1 and HTTP/2); httpx downloads a file sent by
path; and a socket pair checks the ``os.sendfile`` path of the plain-socket
stream that serves every non-TLS connection.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trasgi import Config
from trasgi._io.socket_stream import DirectSocketStream, FileTooShort
from trasgi._server.serve import serve

from ..helpers import Receive, Send, require_tool

pytestmark = pytest.mark.process

PEER_DEADLINE = 60.0


async def extensions_app(scope: Any, receive: Receive, send: Send) -> None:
    """``/hints``: two early hints and trailers; ``/file?p=...``: a path send."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/file":
        path = scope["query_string"].decode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": path})
        return
    for link in (b"</style.css>; rel=preload", b"</app.js>; rel=preload"):
        await send({"type": "http.response.early_hint", "links": [link]})
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"trailer", b"x-checksum")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": b"streamed", "more_body": True})
    await send({"type": "http.response.body"})
    digest = hashlib.sha256(b"streamed").hexdigest().encode()
    await send({"type": "http.response.trailers", "headers": [(b"x-checksum", digest)]})


@asynccontextmanager
async def serving() -> AsyncIterator[int]:
    config = Config(lifespan="off", host="127.0.0.1", port=0)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve, extensions_app, config, shutdown_trigger=stop.wait)
        )
        listener = listeners[0]
        assert isinstance(listener, trio.SocketListener)
        yield listener.socket.getsockname()[1]
        stop.set()


async def curl_verbose(*args: str) -> tuple[bytes, bytes]:
    curl = require_tool("curl", "curl")
    with trio.fail_after(PEER_DEADLINE):
        done = await trio.run_process(
            [curl, "-sv", *args], capture_stdout=True, capture_stderr=True, check=False
        )
    return bytes(done.stdout), bytes(done.stderr)


async def test_curl_sees_the_early_hints_and_the_trailers_over_http1() -> None:
    digest = hashlib.sha256(b"streamed").hexdigest().encode()
    async with serving() as port:
        raw, verbose = await curl_verbose(
            "--http1.1", "--raw", "-H", "TE: trailers", f"http://127.0.0.1:{port}/hints"
        )
    assert verbose.count(b"< HTTP/1.1 103 Early Hints") == 2
    assert b"< link: </style.css>; rel=preload" in verbose
    # curl's verbose output does not show HTTP/1.1 trailers; --raw keeps the
    # chunked coding, trailer section included (RFC 9112 section 7.1.2).
    assert raw == b"8\r\nstreamed\r\n0\r\nx-checksum: " + digest + b"\r\n\r\n"


async def test_curl_sees_the_early_hints_and_the_trailers_over_http2() -> None:
    digest = hashlib.sha256(b"streamed").hexdigest().encode()
    async with serving() as port:
        body, verbose = await curl_verbose(
            "--http2-prior-knowledge",
            "-H",
            "TE: trailers",
            f"http://127.0.0.1:{port}/hints",
        )
    assert body == b"streamed"
    assert verbose.count(b"< HTTP/2 103") == 2
    assert b"< link: </app.js>; rel=preload" in verbose
    assert b"< x-checksum: " + digest in verbose


async def test_httpx_downloads_a_file_sent_by_path(tmp_path: Path) -> None:
    data = os.urandom(8 * 1024 * 1024)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    async with serving() as port, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{port}/file?{path}"
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(data))
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()


async def test_the_plain_socket_sends_a_file_with_sendfile(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)  # more than a socket buffer: it must wait
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    stream = DirectSocketStream(left, send_timeout=10.0)
    peer = trio.SocketStream(trio.socket.from_stdlib_socket(right))
    received = bytearray()

    async def read_all() -> None:
        while len(received) < 2 * 1024 * 1024:
            received.extend(await peer.receive_some(65536))

    fd = os.open(path, os.O_RDONLY)
    try:
        with trio.fail_after(PEER_DEADLINE):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_all)
                await stream.send_file(fd, 1000, 2 * 1024 * 1024)
        assert bytes(received) == data[1000 : 1000 + 2 * 1024 * 1024]
        with pytest.raises(FileTooShort):
            await stream.send_file(fd, len(data) - 10, 20)
    finally:
        os.close(fd)
        stream.close()
        await peer.aclose()
