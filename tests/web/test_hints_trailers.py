"""Early hints from a handler, and trailers after a streamed body.

``request.send_early_hints`` sends a 103 while the handler still works;
``StreamingResponse(trailers=...)`` sends fields computed while streaming.
Checked on the wire: raw HTTP/1.1 bytes, and HTTP/2 frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest
import trio
import trio.lowlevel

from tests.helpers import read_until_closed
from tests.io.h2_client import open_h2
from trasgi.testing import open_connection
from trasgi_web import App, PlainTextResponse, Request, StreamingResponse

STYLE = "</style.css>; rel=preload; as=style"


def site() -> App:
    app = App()
    calls: list[str] = []

    @app.get("/page")
    async def page(request: Request) -> PlainTextResponse:
        sent = await request.send_early_hints([STYLE])
        await trio.lowlevel.checkpoint()  # the slow part of the handler
        return PlainTextResponse(f"hinted={sent}")

    @app.get("/bad-hint")
    async def bad_hint(request: Request) -> PlainTextResponse:
        await request.send_early_hints(["</a>\r\nx: y"])
        return PlainTextResponse("never")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        digest = hashlib.sha256()

        async def parts() -> AsyncIterator[bytes]:
            for part in (b"one ", b"two"):
                digest.update(part)
                yield part

        def checksum() -> dict[str, str]:
            calls.append("checksum")
            return {"x-sha256": digest.hexdigest()}

        return StreamingResponse(
            parts(), headers={"trailer": "x-sha256"}, trailers=checksum
        )

    app.state.calls = calls
    return app


async def raw(app: App, request: bytes) -> bytes:
    async with open_connection(app) as stream:
        await stream.send_all(request)
        return await read_until_closed(stream)


def get(target: bytes, *extra: bytes) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"host: x", b"connection: close"]
    return b"\r\n".join([*lines, *extra, b"", b""])


async def test_a_handler_sends_an_early_hint_before_its_response() -> None:
    data = await raw(site(), get(b"/page"))
    assert data.startswith(
        b"HTTP/1.1 103 Early Hints\r\nlink: " + STYLE.encode() + b"\r\n\r\n"
    )
    assert data.endswith(b"hinted=True")


async def test_no_early_hint_for_http10() -> None:
    data = await raw(site(), b"GET /page HTTP/1.0\r\nhost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"hinted=False")


async def test_an_early_hint_over_http2() -> None:
    async with open_h2(site()) as client:
        response = await client.fetch(b"GET", b"/page")
    assert response.informational == [103]
    assert response.body == b"hinted=True"


async def test_a_hint_with_a_control_character_is_refused() -> None:
    data = await raw(site(), get(b"/bad-hint"))
    assert data.startswith(b"HTTP/1.1 500 ")


async def test_trailers_follow_a_streamed_body_when_asked_for() -> None:
    app = site()
    data = await raw(app, get(b"/stream", b"te: trailers"))
    digest = hashlib.sha256(b"one two").hexdigest().encode()
    assert data.endswith(b"0\r\nx-sha256: " + digest + b"\r\n\r\n")
    async with open_h2(app) as client:
        stream_id = await client.request(b"GET", b"/stream", [(b"te", b"trailers")])
        response = await client.response(stream_id)
    assert response.body == b"one two"
    assert app.state.calls == ["checksum", "checksum"]


@pytest.mark.parametrize("te", [b"", b"te: gzip"])
async def test_no_trailers_and_no_call_without_te_trailers(te: bytes) -> None:
    app = site()
    data = await raw(app, get(b"/stream", *([te] if te else [])))
    assert data.endswith(b"3\r\ntwo\r\n0\r\n\r\n")
    assert app.state.calls == []
