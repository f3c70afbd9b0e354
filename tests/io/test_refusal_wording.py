"""The words of the server's refusals: status lines and 400 bodies a person reads."""

from __future__ import annotations

from typing import Any

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request

from trasgi._protocol.strict import readable_parser_message
from trasgi._protocol.ws_handshake import ConnectHandshake, HandshakeError
from trasgi.testing import open_connection

from ..helpers import Receive, Send, read_until_closed, status_of


def handshake_bytes(version: bytes = b"13") -> bytes:
    head = WSConnection(ConnectionType.CLIENT).send(
        Request(host="testserver", target="/")
    )
    return head.replace(
        b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: " + version
    )


async def refuse_with_close(scope: Any, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.close"})


async def refuse_with_401(scope: Any, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"log in first"})


async def never_called(scope: Any, receive: Receive, send: Send) -> None:
    raise AssertionError("the server answers alone")


async def exchange(app: Any, request: bytes) -> bytes:
    async with open_connection(app) as stream:
        await stream.send_all(request)
        return await read_until_closed(stream)


@pytest.mark.parametrize(
    ("app", "status_line"),
    [
        (refuse_with_close, b"HTTP/1.1 403 Forbidden\r\n"),
        (refuse_with_401, b"HTTP/1.1 401 Unauthorized\r\n"),
    ],
    ids=["close-before-accept", "denial-response"],
)
async def test_a_refused_handshake_has_the_standard_reason_phrase(
    app: Any, status_line: bytes
) -> None:
    raw = await exchange(app, handshake_bytes())
    assert raw.startswith(status_line)


async def test_another_websocket_version_is_named_unsupported_with_426() -> None:
    # RFC 6455 section 4.4: 426, naming the version the server speaks.
    raw = await exchange(never_called, handshake_bytes(version=b"8"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert status_of(raw) == 426
    assert head.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"\r\nSec-WebSocket-Version: 13" in head
    assert b"unsupported Sec-WebSocket-Version '8'" in body
    assert b"Missing header" not in body


async def test_a_missing_websocket_version_is_named_missing_with_400() -> None:
    request = handshake_bytes().replace(b"Sec-WebSocket-Version: 13\r\n", b"")
    raw = await exchange(never_called, request)
    assert status_of(raw) == 400
    assert b"missing header Sec-WebSocket-Version" in raw


def test_the_extended_connect_words_its_version_refusal_the_same() -> None:
    with pytest.raises(HandshakeError) as caught:
        ConnectHandshake(b"websocket", [(b"sec-websocket-version", b"8")])
    assert caught.value.status_code == 426
    assert "unsupported Sec-WebSocket-Version '8'" in caught.value.reason


async def test_a_malformed_header_line_is_quoted_as_text_in_the_400() -> None:
    raw = await exchange(never_called, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    body = raw.partition(b"\r\n\r\n")[2]
    assert status_of(raw) == 400
    assert body == b"malformed request: illegal header line: 'Host x'\n"


@pytest.mark.parametrize(
    ("message", "readable"),
    [
        ("illegal header line: bytearray(b'Host x')", "illegal header line: 'Host x'"),
        ("Illegal header value b'a\\xffb'", "Illegal header value 'a\\\\xffb'"),
        ('illegal request line: bytearray(b"it\'s")', 'illegal request line: "it\'s"'),
        ("no bytes quoted", "no bytes quoted"),
    ],
)
def test_parser_messages_quote_bytes_as_text(message: str, readable: str) -> None:
    assert readable_parser_message(message) == readable
