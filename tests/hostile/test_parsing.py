"""Strict HTTP/1.1 parsing on top of h11: each vector gets its status, then a close."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import hypothesis
import pytest
import trio
from hypothesis import strategies as st

from trasgi import Config
from trasgi._protocol.strict import _has_fault
from trasgi.testing import open_connection

from ..helpers import (
    Receive,
    Send,
    echo_app,
    header_of,
    read_until_closed,
    status_of,
    text_response,
)

HTTP1_ONLY = Config(http2=False)

CASES = [
    # (name, raw request, status)
    (
        "content-length with transfer-encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "transfer-encoding with content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "differing content-lengths",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        400,
    ),
    (
        "content-length list that differs",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello",
        400,
    ),
    (
        "negative content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        400,
    ),
    (
        "signed content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
        400,
    ),
    (
        "hex content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello",
        400,
    ),
    (
        "gzip transfer-encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    ),
    (
        "chunked not last",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        501,
    ),
    (
        "transfer-encoding in HTTP/1.0",
        b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("HTTP/2.0 request line", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
    ("HTTP/0.9 style", b"GET /\r\n\r\n", 400),
    ("bare LF line endings", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("one bare LF", b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", 400),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    (
        "control character in a header value",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        400,
    ),
    (
        "bare CR in a header value",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        400,
    ),
    ("DEL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n", 400),
    ("space before the colon", b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n", 400),
    ("header without a colon", b"GET / HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n", 400),
    ("path not UTF-8", b"GET /%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
]


@pytest.mark.parametrize(
    ("raw", "status"),
    [(raw, status) for _, raw, status in CASES],
    ids=[c[0] for c in CASES],
)
async def test_rejected_with_status_then_closed(raw: bytes, status: int) -> None:
    called: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        called.append(scope["path"])
        await echo_app(scope, receive, send)

    # HTTP/1.1 alone: with HTTP/2 on, a first line that is not HTTP/1.x is
    # an invalid HTTP/2 preface instead (test_not_http1_closes_unanswered).
    async with open_connection(app, config=HTTP1_ONLY) as stream:
        await stream.send_all(raw)
        # read_until_closed returning proves the server closed the connection.
        data = await read_until_closed(stream)
    assert status_of(data) == status, data
    assert header_of(data, b"connection") == b"close"
    # Nothing after the error response: its body is exactly Content-Length.
    body = data.split(b"\r\n\r\n", 1)[1]
    assert len(body) == int(header_of(data, b"content-length") or b"-1")
    assert called == []  # the application never saw the request


NOT_HTTP1 = [
    ("HTTP/0.9 style", b"GET /\r\n\r\n"),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    (
        "a PROXY protocol line",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nGET / HTTP/1.1\r\n\r\n",
    ),
    ("an invalid HTTP/2 preface", b"INVALID CONNECTION PREFACE\r\n\r\n"),
]


@pytest.mark.parametrize(
    "raw", [raw for _, raw in NOT_HTTP1], ids=[c[0] for c in NOT_HTTP1]
)
async def test_not_http1_closes_unanswered(raw: bytes) -> None:
    """With HTTP/2 on, a first line that is not HTTP/1.x is an invalid preface.

    RFC 9113 section 3.4: a connection error; an HTTP/1.1 400 would be noise
    to an HTTP/2 client, so the connection closes without an answer.
    """
    async with open_connection(echo_app) as stream:
        await stream.send_all(raw)
        assert await read_until_closed(stream) == b""


async def test_a_malformed_http1_line_still_gets_400_with_http2_on() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n")
        assert status_of(await read_until_closed(stream)) == 400


BODY_CASES = [
    (
        "malformed chunk size",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ),
    (
        "chunk line with bare LF",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n",
    ),
    (
        "chunk data longer than its size",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
    ),
    # h11 takes the next five; the strict layer's ChunkedFraming refuses them.
    (
        "whitespace after a chunk size",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
    ),
    (
        "bare CR in a chunk extension",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n",
    ),
    (
        "trailer line with bare LF",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\n\r\n",
    ),
    (
        "folded trailer line",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n 2\r\n\r\n",
    ),
    (
        "control character in a trailer",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: a\x01b\r\n\r\n",
    ),
]


@pytest.mark.parametrize(
    "raw", [raw for _, raw in BODY_CASES], ids=[c[0] for c in BODY_CASES]
)
async def test_malformed_body_gets_400_and_the_app_a_disconnect(raw: bytes) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        message = await receive()
        while message.get("more_body"):
            message = await receive()
        seen.append(message["type"])
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        except OSError as exc:
            seen.append(type(exc).__name__)

    async with open_connection(app) as stream:
        await stream.send_all(raw)
        data = await read_until_closed(stream)
    assert status_of(data) == 400
    assert seen == ["http.disconnect", "ClientDisconnected"]


async def test_absolute_form_target_is_accepted() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(
            b"GET http://example.com/abs/path?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert header_of(data, b"x-path") == b"/abs/path"


async def test_header_whitespace_is_trimmed() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        seen.append(scope["headers"])
        await echo_app(scope, receive, send)

    async with open_connection(app) as stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \t padded \t \r\nConnection: close\r\n\r\n"
        )
        await read_until_closed(stream)
    assert (b"x-a", b"padded") in seen[0]


async def test_identical_duplicate_content_length_is_accepted() -> None:
    # RFC 9112 section 6.3 allows treating "5, 5" or a repeated identical
    # value as one; only differing values are ambiguous.
    async with open_connection(echo_app) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"hello")


async def test_http10_without_host_is_fine() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(b"GET / HTTP/1.0\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 200


async def test_config_limits_are_used() -> None:
    config = Config(limit_request_line=32)
    async with open_connection(echo_app, config=config) as stream:
        await stream.send_all(b"GET /" + b"a" * 40 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 414


#: The faults of a head, written as one pattern: a bare LF, obs-fold, a CR
#: not followed by LF, or a control character other than HTAB.
_FAULT_PATTERN = re.compile(
    rb"(?<!\r)\n|\n[ \t]|\r(?!\n)|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
)


@hypothesis.given(
    st.lists(
        st.sampled_from(
            [
                b"\r\n",
                b"\r",
                b"\n",
                b" ",
                b"\t",
                b"a",
                b":",
                b"\x00",
                b"\x1f",
                b"\x7f",
                b"\x80",
                b"\xff",
                b"\x0b",
            ]
        ),
        max_size=40,
    ).map(b"".join)
)
def test_the_fast_fault_check_agrees_with_the_pattern(head: bytes) -> None:
    assert _has_fault(head) == (_FAULT_PATTERN.search(head) is not None)


async def test_a_chunk_line_refused_in_a_later_read() -> None:
    """The framing is read as it arrives: a bad line after good chunks is a 400."""
    seen: list[tuple[str, bytes]] = []
    first_piece = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        more = True
        while more:
            message = await receive()
            seen.append((message["type"], message.get("body", b"")))
            more = message.get("more_body", False)
            first_piece.set()
        with contextlib.suppress(OSError):
            await send({"type": "http.response.start", "status": 200, "headers": []})

    async with open_connection(app) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        await first_piece.wait()
        await stream.send_all(b"5;a\rb\r\nworld\r\n0\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 400
    assert b"malformed chunk size line" in data
    assert seen == [("http.request", b"hello"), ("http.disconnect", b"")]


async def test_an_unread_body_with_bad_framing_is_not_drained() -> None:
    """The application answered without reading: a bad chunk line ends the connection.

    Discarding the body to reuse the connection would read the bytes after
    the bad line as a next request: the one a proxy may never have seen.
    """
    async with open_connection(text_response(b"answered")) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5 \r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.count(b"HTTP/1.1 ") == 1
