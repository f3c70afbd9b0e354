"""``Upgrade: h2c``: an HTTP/1.1 request, body included, answered over HTTP/2."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trio.testing

from trasgi import Config
from trasgi.testing import open_connection

from ..helpers import HANG, Receive, Send, read_until_closed, status_of


async def echo(scope: Any, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    text = b"%s %s %s" % (
        scope["http_version"].encode(),
        scope["method"].encode(),
        body,
    )
    headers = [(b"x-host", dict(scope["headers"]).get(b"host", b"-"))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": text})


def upgrade_request(settings: bytes, body: bytes = b"", extra: bytes = b"") -> bytes:
    return (
        b"POST /up HTTP/1.1\r\nHost: example.org\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: %s\r\n%s\r\n%s" % (len(body), settings, extra, body)
    )


def client() -> tuple[h2.connection.H2Connection, bytes]:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = conn.initiate_upgrade_connection()
    assert settings is not None
    # Clients send the value unpadded, as RFC 7540 section 3.2.1 says.
    return conn, settings.rstrip(b"=")


async def response_over_h2(
    stream: trio.abc.Stream, conn: h2.connection.H2Connection
) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Read the 101, then stream 1's response over HTTP/2."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, rest = data.split(b"\r\n\r\n", 1)
    await stream.send_all(conn.data_to_send())
    headers: dict[bytes, bytes] = {}
    body = b""
    events = conn.receive_data(rest) if rest else []
    while True:
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                headers = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, 1)
            elif isinstance(event, h2.events.StreamEnded):
                return head, headers, body
        await stream.send_all(conn.data_to_send())
        events = conn.receive_data(await stream.receive_some())


@pytest.mark.parametrize("body", [b"", b"hello", b"x" * 200_000])
async def test_the_upgrading_request_is_stream_1_with_its_body(body: bytes) -> None:
    conn, settings = client()
    with trio.fail_after(HANG):
        async with open_connection(echo) as stream:
            await stream.send_all(upgrade_request(settings, body))
            head, headers, answer = await response_over_h2(stream, conn)
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"upgrade: h2c" in head.lower()
    assert headers[b":status"] == b"200"
    assert headers[b"x-host"] == b"example.org"  # :authority, from Host
    assert answer == b"2 POST " + body


async def test_the_connection_goes_on_with_more_streams() -> None:
    conn, settings = client()
    with trio.fail_after(HANG):
        async with open_connection(echo) as stream:
            await stream.send_all(upgrade_request(settings, b"one"))
            await response_over_h2(stream, conn)
            conn.send_headers(
                3,
                [
                    (b":method", b"GET"),
                    (b":scheme", b"http"),
                    (b":path", b"/"),
                    (b":authority", b"t"),
                ],
                end_stream=True,
            )
            await stream.send_all(conn.data_to_send())
            body = b""
            while True:
                events = conn.receive_data(await stream.receive_some())
                await stream.send_all(conn.data_to_send())
                body += b"".join(
                    e.data for e in events if isinstance(e, h2.events.DataReceived)
                )
                if any(isinstance(e, h2.events.StreamEnded) for e in events):
                    break
    assert body == b"2 GET "


@pytest.mark.parametrize(
    ("settings", "extra"),
    [
        (b"not base64!", b""),
        (b"AAAA", b""),  # 3 bytes: not a whole number of settings
        (b"AAMAAABkAAQAAP__", b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n"),  # two
    ],
)
async def test_a_bad_http2_settings_gets_400(settings: bytes, extra: bytes) -> None:
    with trio.fail_after(HANG):
        async with open_connection(echo) as stream:
            await stream.send_all(upgrade_request(settings, b"hi", extra))
            assert status_of(await read_until_closed(stream)) == 400


async def test_a_body_over_the_limit_gets_413_before_any_switch() -> None:
    _, settings = client()
    config = Config(limit_request_body=10)
    with trio.fail_after(HANG):
        async with open_connection(echo, config=config) as stream:
            request = upgrade_request(settings, b"x" * 20)
            # The declared length is over the limit: refused from the head.
            await stream.send_all(request)
            assert status_of(await read_until_closed(stream)) == 413


async def test_without_http2_the_request_is_served_over_http11(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, settings = client()
    with trio.fail_after(HANG):
        async with open_connection(echo, config=Config(http2=False)) as stream:
            await stream.send_all(upgrade_request(settings, b"hi"))
            data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"1.1 POST hi")
