"""Every response the server writes is one access line; refusals leave a warning.

The server's refusals (with their reason), its own 500 (with the bytes it
wrote), responses cut short (and why), WebSocket sessions when they end, the
client a trusted proxy names, W3C trace ids, and the rate-limited warning
for each kind of rejected request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._observe.access import parse_traceparent
from trasgi._observe.rejections import RejectionWarnings
from trasgi.testing import (
    WebSocketClosed,
    open_client,
    open_connection,
    open_websocket,
)

from ..helpers import (
    Receive,
    Send,
    echo_app,
    read_until_closed,
    status_of,
    text_response,
)
from ..io.h2_client import open_h2

PEER = ("10.1.2.3", 4444)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "trasgi.error" and r.levelno == logging.WARNING
    ]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    caplog.set_level(logging.INFO, logger="trasgi.error")
    return caplog


# -- the server's refusals -----------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "config", "line"),
    [
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + b"c" * 20_000 + b"\r\n\r\n",
            Config(),
            '"-" 431 ',
            id="431-large-cookie",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
            Config(),
            '"-" 400 ',
            id="400-malformed-head",
        ),
        pytest.param(
            b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            Config(limit_request_line=50),
            '"-" 414 ',
            id="414-long-target",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
            Config(limit_request_body=10),
            '"-" 413 ',
            id="413-declared-body",
        ),
        pytest.param(
            b"GET / HTTP/2.5\r\nHost: x\r\n\r\n",
            Config(http2=False),
            " 505 ",
            id="505-version",
        ),
    ],
)
async def test_a_refusal_is_an_access_line_with_its_reason_and_a_warning(
    logs: pytest.LogCaptureFixture, request_bytes: bytes, config: Config, line: str
) -> None:
    async with open_connection(
        text_response(), config=config, info=ConnectionInfo(client=PEER)
    ) as stream:
        await stream.send_all(request_bytes)
        answer = await read_until_closed(stream)
    status = status_of(answer)
    reason = answer.split(b"\r\n\r\n", 1)[1].decode().strip()
    (access,) = access_lines(logs)
    assert access.startswith("10.1.2.3:4444 - ")
    assert line in access
    assert f" {status} {len(reason) + 1} " in access  # the body, with its newline
    assert access.endswith(f' reason="{reason}"')
    (warning,) = warnings(logs)
    assert warning.startswith(
        f"rejected a request: {status} {reason} (client 10.1.2.3:4444"
    )


async def test_a_head_that_never_ends_is_a_408_line(
    logs: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_connection(
        text_response(), config=Config(timeout_header_read=5)
    ) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost:")
        answer = await read_until_closed(stream)
    assert status_of(answer) == 408
    (access,) = access_lines(logs)
    assert ' "-" 408 34 ' in access
    assert access.endswith('reason="request head not received in time"')


async def test_a_refusal_over_http2_is_an_access_line(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with open_client(
        text_response(), config=Config(limit_request_body=10), http2=True
    ) as client:
        response = await client.post("/upload", content=b"x" * 100)
    assert response.status_code == 413
    (access,) = access_lines(logs)
    assert ' - "-" 413 23 ' in access
    assert access.endswith('reason="request body too large"')
    assert len(warnings(logs)) == 1


async def test_json_lines_carry_the_reason(logs: pytest.LogCaptureFixture) -> None:
    config = Config(access_log_format="json", limit_request_body=10)
    async with open_client(text_response(), config=config) as client:
        await client.post("/", content=b"x" * 100)
    (line,) = access_lines(logs)
    data = json.loads(line)
    assert (data["status"], data["reason"], data["bytes"]) == (
        413,
        "request body too large",
        23,
    )
    assert data["cut_short"] is None


# -- the rate-limited warning ----------------------------------------------------


def test_each_kind_of_rejection_warns_once_per_window_then_counts(
    logs: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    limiter = RejectionWarnings(window=10.0, clock=lambda: now[0])
    assert limiter.warn(431, "request head too large", "a:1", "-")
    assert not limiter.warn(431, "request head too large", "b:2", "-")
    assert not limiter.warn(431, "request head too large", "c:3", "-")
    assert limiter.warn(400, "malformed request", "d:4", "-")  # another kind
    now[0] = 109.9
    assert not limiter.warn(431, "request head too large", "e:5", "-")
    now[0] = 110.0
    assert limiter.warn(431, "request head too large", "f:6", '"GET /"')
    now[0] = 120.0
    assert limiter.warn(431, "request head too large", "g:7", "-")
    lines = warnings(logs)
    assert lines == [
        "rejected a request: 431 request head too large (client a:1, request -)",
        "rejected a request: 400 malformed request (client d:4, request -)",
        'rejected a request: 431 request head too large (client f:6, request "GET /")'
        " (3 more 431 rejections since the last such line)",
        "rejected a request: 431 request head too large (client g:7, request -)",
    ]


async def test_many_rejections_on_one_server_warn_once(
    logs: pytest.LogCaptureFixture,
) -> None:
    async with open_client(
        text_response(), config=Config(limit_request_body=1)
    ) as client:
        for _ in range(5):
            assert (await client.post("/", content=b"xx")).status_code == 413
    assert len(access_lines(logs)) == 5
    assert len(warnings(logs)) == 1


# -- the server's own 500, and responses cut short ---------------------------------


async def test_the_servers_500_counts_the_bytes_it_wrote(
    logs: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async with open_client(app) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert len(response.content) == 22
    (access,) = access_lines(logs)
    assert '"GET / HTTP/1.1" 500 22 ' in access
    assert access.endswith('reason="Internal Server Error"')


@pytest.mark.parametrize("http2", [False, True])
async def test_a_response_the_application_cut_short_is_marked(
    logs: pytest.LogCaptureFixture, http2: bool
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
        raise ValueError("midway")

    async with open_client(app, http2=http2) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
    (access,) = access_lines(logs)
    assert " 200 4 " in access
    assert access.endswith(' cut_short="application failed"')


async def test_a_client_that_leaves_mid_body_is_marked(
    logs: pytest.LogCaptureFixture,
) -> None:
    sent_some = trio.Event()
    client_gone = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        sent_some.set()
        await client_gone.wait()
        await send({"type": "http.response.body", "body": b"tick", "more_body": True})

    async with open_connection(app) as stream:
        await stream.send_all(b"GET /ticks HTTP/1.1\r\nHost: x\r\n\r\n")
        await sent_some.wait()
        await stream.aclose()
        client_gone.set()
        await trio.testing.wait_all_tasks_blocked()
    (access,) = access_lines(logs)
    assert '"GET /ticks HTTP/1.1" 200 ' in access
    assert access.endswith(' cut_short="client left"')


# -- who the client is --------------------------------------------------------------


async def test_the_forwarded_client_is_the_client_and_the_proxy_the_peer(
    logs: pytest.LogCaptureFixture,
) -> None:
    config = Config(
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        access_log_format="json",
    )
    async with open_client(
        text_response(), config=config, client=("127.0.0.1", 5000)
    ) as client:
        await client.get("/", headers={"x-forwarded-for": "203.0.113.9"})
    (line,) = access_lines(logs)
    data = json.loads(line)
    assert data["client_host"] == "203.0.113.9"
    assert data["peer"] == "127.0.0.1:5000"


async def test_a_refused_forwarded_request_names_the_forwarded_client(
    logs: pytest.LogCaptureFixture,
) -> None:
    config = Config(
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        limit_request_body=1,
        access_log_format="{client_host} {peer} {status}",
    )

    async def chunks() -> AsyncIterator[bytes]:
        yield b"xx"  # chunked: found too large while the application reads

    async with open_client(
        echo_app, config=config, client=("127.0.0.1", 5000)
    ) as client:
        response = await client.post(
            "/", content=chunks(), headers={"x-forwarded-for": "203.0.113.9"}
        )
    assert response.status_code == 413
    (line,) = access_lines(logs)
    assert line.startswith("203.0.113.9 127.0.0.1:5000 413")


# -- W3C trace context ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (f"00-{TRACE_ID}-{SPAN_ID}-01", (TRACE_ID, SPAN_ID)),
        (f" 00-{TRACE_ID}-{SPAN_ID}-00 ", (TRACE_ID, SPAN_ID)),
        # A later version may add fields after the flags.
        (f"01-{TRACE_ID}-{SPAN_ID}-01-extra", (TRACE_ID, SPAN_ID)),
        (f"00-{TRACE_ID}-{SPAN_ID}-01-extra", None),
        (f"ff-{TRACE_ID}-{SPAN_ID}-01", None),
        (f"00-{'0' * 32}-{SPAN_ID}-01", None),
        (f"00-{TRACE_ID}-{'0' * 16}-01", None),
        (f"00-{TRACE_ID.upper()}-{SPAN_ID}-01", None),
        (f"00-{TRACE_ID[:-1]}-{SPAN_ID}-01", None),
        (f"00-{TRACE_ID}-{SPAN_ID}", None),
        (f"0-{TRACE_ID}-{SPAN_ID}-01", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_traceparent(value: str, parsed: tuple[str, str] | None) -> None:
    assert parse_traceparent(value) == parsed


@pytest.mark.parametrize(
    ("headers", "ids"),
    [
        ([("traceparent", f"00-{TRACE_ID}-{SPAN_ID}-01")], (TRACE_ID, SPAN_ID)),
        ([("traceparent", "00-bad-bad-01")], (None, None)),
        ([], (None, None)),
    ],
)
async def test_json_lines_carry_the_trace_and_span_ids(
    logs: pytest.LogCaptureFixture,
    headers: list[tuple[str, str]],
    ids: tuple[str | None, str | None],
) -> None:
    config = Config(access_log_format="json")
    async with open_client(text_response(), config=config) as client:
        await client.get("/", headers=headers)
    (line,) = access_lines(logs)
    data = json.loads(line)
    assert (data["trace_id"], data["span_id"]) == ids


# -- WebSocket sessions ---------------------------------------------------------------


async def test_a_websocket_session_is_logged_when_it_ends(
    logs: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"] * 2})
        await send({"type": "websocket.send", "bytes": b"\x00\x01"})
        await send({"type": "websocket.close", "code": 4001})
        await receive()

    async with open_websocket(app, "/chat?room=1") as socket:
        await socket.send_text("héllo")  # 6 bytes as UTF-8
        assert await socket.receive_text() == "héllohéllo"
        assert await socket.receive_bytes() == b"\x00\x01"
        with pytest.raises(WebSocketClosed):
            await socket.receive_text()
    handshake, session = access_lines(logs)
    assert '"GET /chat?room=1 HTTP/1.1" 101 ' in handshake
    assert session.startswith(
        'testclient:50000 - "WEBSOCKET /chat?room=1" closed 4001 in=6 out=14 '
    )
    assert session.endswith("ms")


async def test_a_websocket_session_without_a_closing_handshake_is_1006(
    logs: pytest.LogCaptureFixture,
) -> None:
    config = Config(access_log_format="json")
    accepted = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        accepted.set()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with open_connection(app, config=config) as stream:
        await stream.send_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await accepted.wait()
        await stream.aclose()
        await trio.testing.wait_all_tasks_blocked()
    session = json.loads(access_lines(logs)[1])
    assert session["event"] == "websocket_closed"
    assert session["close_code"] == 1006
    assert (session["bytes_in"], session["bytes_out"]) == (0, 0)


async def test_a_refused_websocket_handshake_is_a_line_with_its_reason(
    logs: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    async with open_connection(app) as stream:
        await stream.send_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = await read_until_closed(stream)
    assert status_of(answer) == 400
    (line,) = access_lines(logs)
    assert '"GET /ws HTTP/1.1" 400 ' in line
    assert ' reason="' in line
    assert len(warnings(logs)) == 1


async def test_one_h2_stream_refusal_is_logged(logs: pytest.LogCaptureFixture) -> None:
    async with open_h2(text_response(), Config(limit_request_line=20)) as client:
        stream_id = await client.request(b"GET", b"/" + b"a" * 50)
        response = await client.response(stream_id)
    assert response.status == 414
    (line,) = access_lines(logs)
    assert " 414 " in line
    assert 'reason="' in line
