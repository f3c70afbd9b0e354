"""``--header NAME:VALUE``: fields added to every response, over HTTP/1.1 and HTTP/2."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trasgi import Config
from trasgi._config.headers import parse_header, split_header_list
from trasgi.testing import open_client, open_websocket

from ..helpers import Receive, Send

HEADERS = Config(header=("X-Frame-Options: DENY", "cache-control: no-store, max-age=0"))


async def app(scope: Any, receive: Receive, send: Send) -> None:
    # The application sets its own cache-control on /own, which must win.
    headers = [(b"cache-control", b"public")] if scope["path"] == "/own" else []
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("http2", [False, True])
async def test_every_response_carries_the_headers(http2: bool) -> None:
    async with open_client(app, config=HEADERS, http2=http2) as client:
        response = await client.get("/")
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store, max-age=0"
    assert response.headers["server"] == "trasgi"  # alongside Server and Date
    assert "date" in response.headers


@pytest.mark.parametrize("http2", [False, True])
async def test_the_applications_own_header_wins(http2: bool) -> None:
    async with open_client(app, config=HEADERS, http2=http2) as client:
        response = await client.get("/own")
    assert response.headers.get_list("cache-control") == ["public"]
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("http2", [False, True])
async def test_the_servers_own_answers_carry_them(http2: bool) -> None:
    config = Config(header=("x-served-by: edge-1",), limit_request_body=1)
    async with open_client(app, config=config, http2=http2) as client:
        response = await client.post("/", content=b"too long")
    assert response.status_code == 413
    assert response.headers["x-served-by"] == "edge-1"


@pytest.mark.parametrize("http2", [False, True])
async def test_a_server_header_replaces_trasgis(http2: bool) -> None:
    config = Config(header=("Server: edge",))
    async with open_client(app, config=config, http2=http2) as client:
        response = await client.get("/")
    assert response.headers.get_list("server") == ["edge"]


async def test_websocket_handshakes_carry_them() -> None:
    async def accepting(scope: Any, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    async with open_websocket(accepting, config=HEADERS) as websocket:
        assert (b"x-frame-options", b"DENY") in websocket.headers


def test_parsed_lower_case_with_the_value_trimmed() -> None:
    assert parse_header("X-Frame-Options:  DENY ") == (b"x-frame-options", b"DENY")
    assert parse_header("x-empty:") == (b"x-empty", b"")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x-frame-options", "--header must be NAME:VALUE, got 'x-frame-options'"),
        ("bad name: 1", "'bad name' is not a valid header name"),
        (": 1", "'' is not a valid header name"),
        ("x-a: 1\r\nset-cookie: a=b", "the value has control characters"),
        ("x-a: \x00", "the value has control characters"),
        ("Content-Length: 3", "the server writes content-length itself"),
        ("transfer-encoding: chunked", "the server writes transfer-encoding itself"),
        ("connection: close", "the server writes connection itself"),
        ("date: yesterday", "the server writes date itself"),
    ],
)
def test_malformed_headers_are_refused(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as raised:
        Config(header=(text,))
    assert "\n" not in str(raised.value)


def test_one_variable_splits_at_the_next_name_only() -> None:
    assert split_header_list("x-a: 1, x-b: 2, 3") == ("x-a: 1", "x-b: 2, 3")
    assert split_header_list("x-a: Mon, 01 Jan 2026 10:00:00 GMT") == (
        "x-a: Mon, 01 Jan 2026 10:00:00 GMT",
    )
