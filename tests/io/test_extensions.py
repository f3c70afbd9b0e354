"""The ASGI response extensions, end to end over HTTP/1.1 and HTTP/2.

Early hints, trailers, path send and zero-copy send through the real
connection handlers over memory streams: raw bytes for HTTP/1.1 (the 103
head, the chunked trailer section), the frame-level client for HTTP/2 (the
informational HEADERS, the trailing HEADERS with END_STREAM). The loopback
tests in ``tests/peers/test_extension_peers.py`` add curl and sendfile.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import h2.events
import pytest
import trio
import trio.lowlevel

from trasgi import Config
from trasgi.testing import open_connection

from ..helpers import Receive, Send, read_until_closed
from .h2_client import open_h2

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte value


def start(headers: list[tuple[bytes, bytes]] | None = None, **extra: Any) -> Any:
    return {"type": "http.response.start", "status": 200, "headers": headers or []}


async def raw_exchange(app: Any, request: bytes, config: Config | None = None) -> bytes:
    async with open_connection(app, config=config) as stream:
        await stream.send_all(request)
        return await read_until_closed(stream)


GET = b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"


# -- which extensions a request is offered ---------------------------------------


@pytest.mark.parametrize(
    ("request_line", "te", "offered"),
    [
        (b"GET / HTTP/1.1", b"", {"early_hint", "pathsend", "zerocopysend"}),
        (
            b"GET / HTTP/1.1",
            b"te: trailers\r\n",
            {"early_hint", "pathsend", "zerocopysend", "trailers"},
        ),
        (b"GET / HTTP/1.0", b"te: trailers\r\n", {"pathsend", "zerocopysend"}),
    ],
    ids=["http11", "http11-te-trailers", "http10"],
)
async def test_the_extensions_offered_over_http1(
    request_line: bytes, te: bytes, offered: set[str]
) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        seen.append(scope["extensions"])
        await send(start())
        await send({"type": "http.response.body"})

    request = request_line + b"\r\nhost: x\r\nconnection: close\r\n" + te + b"\r\n"
    await raw_exchange(app, request)
    names = {name.removeprefix("http.response.") for name in seen[0]}
    assert names == offered


async def test_the_extensions_offered_over_http2() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        seen.append(scope["extensions"])
        await send(start())
        await send({"type": "http.response.body"})

    async with open_h2(app) as client:
        await client.fetch(b"GET", b"/")
        await client.fetch(b"GET", b"/", [(b"te", b"trailers")])
    plain, trailers = ({n.removeprefix("http.response.") for n in s} for s in seen)
    assert plain == {"early_hint", "pathsend", "zerocopysend"}
    assert trailers == plain | {"trailers"}


# -- early hints -------------------------------------------------------------------


async def hinting(scope: Any, receive: Receive, send: Send) -> None:
    await send(
        {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
    )
    await send(start([(b"content-type", b"text/plain")]))
    await send({"type": "http.response.early_hint", "links": [b"</b.js>; rel=preload"]})
    await send({"type": "http.response.body", "body": b"page"})


async def test_early_hints_over_http1_come_before_the_response() -> None:
    raw = await raw_exchange(hinting, GET + b"\r\n")
    first, second, final = raw.split(b"\r\n\r\n", 2)
    assert first == b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload"
    assert second == b"HTTP/1.1 103 Early Hints\r\nlink: </b.js>; rel=preload"
    assert final.startswith(b"page") is False
    assert raw.count(b"HTTP/1.1 200 OK") == 1
    assert raw.endswith(b"\r\n\r\npage")


async def test_no_early_hints_for_an_http10_client() -> None:
    raw = await raw_exchange(hinting, b"GET / HTTP/1.0\r\nhost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK")
    assert b"103" not in raw


async def test_early_hints_over_http2_are_informational_heads() -> None:
    async with open_h2(hinting) as client:
        response = await client.fetch(b"GET", b"/")
        informational = [
            e
            for e in client.log
            if isinstance(e, h2.events.InformationalResponseReceived)
        ]
    assert response.informational == [103, 103]
    assert response.status == 200
    assert response.body == b"page"
    links = [dict(e.headers)[b"link"] for e in informational]
    assert links == [b"</a.css>; rel=preload", b"</b.js>; rel=preload"]


async def test_a_failure_after_an_early_hint_is_still_a_500() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</a>"]})
        raise RuntimeError("boom")

    raw = await raw_exchange(app, GET + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 103 Early Hints\r\n")
    assert b"HTTP/1.1 500 Internal Server Error\r\n" in raw
    async with open_h2(app) as client:
        response = await client.fetch(b"GET", b"/")
    assert (response.informational, response.status) == ([103], 500)


@pytest.mark.parametrize(
    "links",
    [[], [b"</a>\r\nx: y"], ["</a>"], None],
    ids=["empty", "crlf", "str", "missing"],
)
async def test_a_malformed_early_hint_is_an_asgi_mistake(
    links: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": links})

    raw = await raw_exchange(app, GET + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert any("early_hint" in r.getMessage() for r in caplog.records)


# -- trailers ----------------------------------------------------------------------


def trailing(*, declared_length: bool = False) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        headers = [(b"trailer", b"x-checksum")]
        if declared_length:
            headers.append((b"content-length", b"10"))
        await send({**start(headers), "trailers": True})
        digest = hashlib.sha256()
        for part in (b"hello ", b"tail"):
            digest.update(part)
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", digest.hexdigest()[:16].encode())],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})

    return app


CHECKSUM = hashlib.sha256(b"hello tail").hexdigest()[:16].encode()


@pytest.mark.parametrize("declared_length", [False, True])
async def test_trailers_over_http1_end_the_chunked_body(declared_length: bool) -> None:
    raw = await raw_exchange(
        trailing(declared_length=declared_length), GET + b"te: trailers\r\n\r\n"
    )
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head
    # RFC 9112 section 6.1: the chunked coding replaces a declared length.
    assert b"content-length" not in head.lower()
    assert body == (
        b"6\r\nhello \r\n4\r\ntail\r\n0\r\nx-checksum: " + CHECKSUM + b"\r\n"
        b"x-count: 2\r\n\r\n"
    )


async def test_trailers_are_dropped_for_a_client_that_did_not_ask() -> None:
    raw = await raw_exchange(trailing(), GET + b"\r\n")
    assert raw.endswith(b"4\r\ntail\r\n0\r\n\r\n")
    assert b"x-checksum: " not in raw


async def test_trailers_over_http2_are_a_final_headers_frame() -> None:
    async with open_h2(trailing()) as client:
        stream_id = await client.request(b"GET", b"/", [(b"te", b"trailers")])
        response = await client.response(stream_id)
        (trailers,) = [
            e for e in client.log if isinstance(e, h2.events.TrailersReceived)
        ]
        assert trailers.stream_ended is not None
        assert dict(trailers.headers) == {b"x-checksum": CHECKSUM, b"x-count": b"2"}
        assert response.body == b"hello tail"
        plain = await client.fetch(b"GET", b"/")
    assert plain.body == b"hello tail"
    assert plain.ended


@pytest.mark.parametrize(
    "field",
    [b"content-length", b"content-type", b"authorization", b"host", b"set-cookie"],
)
async def test_a_forbidden_trailer_field_is_an_asgi_mistake(
    field: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({**start(), "trailers": True})
        await send({"type": "http.response.body", "body": b"x"})
        await send({"type": "http.response.trailers", "headers": [(field, b"1")]})

    raw = await raw_exchange(app, GET + b"te: trailers\r\n\r\n")
    # The body was sent: the response is cut, not completed.
    assert not raw.endswith(b"0\r\n\r\n")
    assert any(
        field.decode() in r.getMessage() and "RFC 9110 section 6.5.1" in r.getMessage()
        for r in caplog.records
    )
    async with open_h2(app) as client:
        stream_id = await client.request(b"GET", b"/", [(b"te", b"trailers")])
        response = await client.response(stream_id)
    assert response.reset is not None


async def test_an_app_that_never_sends_its_announced_trailers_is_cut() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({**start(), "trailers": True})
        await send({"type": "http.response.body", "body": b"x"})

    raw = await raw_exchange(app, GET + b"te: trailers\r\n\r\n")
    assert raw.endswith(b"1\r\nx\r\n")


# -- path send and zero-copy send --------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return path


def path_sender(path: Path | str) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start([(b"content-type", b"application/octet-stream")]))
        await send({"type": "http.response.pathsend", "path": str(path)})

    return app


async def test_pathsend_over_http1_sends_the_file_with_its_length(
    data_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    config = Config(access_log_format="{status} {bytes}")
    raw = await raw_exchange(path_sender(data_file), GET + b"\r\n", config)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"content-length: %d" % len(DATA) in head
    assert body == DATA
    access = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert access == [f"200 {len(DATA)}"]


async def test_pathsend_over_http2(data_file: Path) -> None:
    async with open_h2(path_sender(data_file)) as client:
        response = await client.fetch(b"GET", b"/")
    assert response.status == 200
    assert response.header(b"content-length") == str(len(DATA)).encode()
    assert response.body == DATA


@pytest.mark.parametrize("problem", ["missing", "relative", "directory"])
async def test_a_pathsend_that_cannot_be_sent_is_a_500_naming_the_path(
    problem: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = {
        "missing": str(tmp_path / "nope.bin"),
        "relative": "data.bin",
        "directory": str(tmp_path),
    }[problem]
    raw = await raw_exchange(path_sender(path), GET + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")
    assert any(repr(path) in r.getMessage() for r in caplog.records)


async def test_pathsend_for_head_sends_no_body(data_file: Path) -> None:
    raw = await raw_exchange(
        path_sender(data_file),
        b"HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")  # RFC 9110 section 9.3.2: no body


def range_sender(path: Path, ranges: list[tuple[int | None, int | None]]) -> Any:
    """Zero-copy sends of ``ranges`` (offset, count), mixed with body bytes."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        with path.open("rb") as file:
            await send(start())
            for offset, count in ranges:
                message: dict[str, Any] = {
                    "type": "http.response.zerocopysend",
                    "file": file,
                    "more_body": True,
                }
                if offset is not None:
                    message["offset"] = offset
                if count is not None:
                    message["count"] = count
                await send(message)
                await send(
                    {"type": "http.response.body", "body": b"|", "more_body": True}
                )
            await send({"type": "http.response.body"})

    return app


RANGES: list[tuple[int | None, int | None]] = [(10, 5), (None, 3), (None, 2), (256, 0)]
EXPECTED = DATA[10:15] + b"|" + DATA[0:3] + b"|" + DATA[3:5] + b"|" + b"|"


async def test_zerocopysend_over_http1_sends_each_region(data_file: Path) -> None:
    raw = await raw_exchange(range_sender(data_file, RANGES), GET + b"\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding: chunked" in head
    unchunked = b""
    while True:
        size_line, body = body.split(b"\r\n", 1)
        size = int(size_line, 16)
        if not size:
            break
        unchunked, body = unchunked + body[:size], body[size + 2 :]
    assert unchunked == EXPECTED


async def test_zerocopysend_over_http2(data_file: Path) -> None:
    async with open_h2(range_sender(data_file, RANGES)) as client:
        response = await client.fetch(b"GET", b"/")
    assert response.body == EXPECTED


async def test_zerocopysend_to_the_end_of_the_file(data_file: Path) -> None:
    async with open_h2(range_sender(data_file, [(len(DATA) - 7, None)])) as client:
        response = await client.fetch(b"GET", b"/")
    assert response.body == DATA[-7:] + b"|"


@pytest.mark.parametrize(
    "message",
    [
        {"type": "http.response.zerocopysend"},
        {"type": "http.response.zerocopysend", "file": object()},
        {"type": "http.response.zerocopysend", "file": "FILE", "offset": -1},
        {"type": "http.response.zerocopysend", "file": "FILE", "count": "3"},
    ],
    ids=["no-file", "no-descriptor", "negative-offset", "str-count"],
)
async def test_a_malformed_zerocopysend_is_an_asgi_mistake(
    message: dict[str, Any], data_file: Path
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        with data_file.open("rb") as file:
            await send(start())
            sent = {k: (file if v == "FILE" else v) for k, v in message.items()}
            await send(sent)

    raw = await raw_exchange(app, GET + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ")


async def test_a_file_shorter_than_its_count_cuts_the_response(
    data_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = range_sender(data_file, [(len(DATA) - 4, 100)])
    raw = await raw_exchange(app, GET + b"\r\n")
    assert not raw.endswith(b"0\r\n\r\n")
    assert any("ended" in r.getMessage() for r in caplog.records)
    async with open_h2(app) as client:
        response = await client.fetch(b"GET", b"/")
    assert response.reset is not None


async def test_pathsend_after_body_is_an_asgi_mistake(data_file: Path) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start())
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.pathsend", "path": str(data_file)})

    raw = await raw_exchange(app, GET + b"\r\n")
    assert raw.endswith(b"1\r\nx\r\n")


async def test_the_file_sender_closes_what_it_opened(data_file: Path) -> None:
    import os

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        await raw_exchange(path_sender(data_file), GET + b"\r\n")
    await trio.lowlevel.checkpoint()
    assert len(os.listdir("/proc/self/fd")) <= before + 1
