"""Response classes and handler return values, through the real server."""

from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import pytest
import trio

from trasgi.testing import open_client
from trasgi_web import (
    App,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)


async def serve_one(result: Any, method: str = "GET") -> Any:
    app = App()

    @app.route("/", methods=["GET", "POST"])
    async def index() -> Any:
        return result

    async with open_client(app) as client:
        return await client.request(method, "/")


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        ("héllo", 200, "text/plain; charset=utf-8", "héllo".encode()),
        (b"\x00\x01", 200, "application/octet-stream", b"\x00\x01"),
        ({"a": [1, None]}, 200, "application/json", b'{"a":[1,null]}'),
        ([1, "é"], 200, "application/json", '[1,"é"]'.encode()),
        (("gone", 410), 410, "text/plain; charset=utf-8", b"gone"),
        (({"id": 1}, 201), 201, "application/json", b'{"id":1}'),
        (HTMLResponse("<p>x</p>"), 200, "text/html; charset=utf-8", b"<p>x</p>"),
        (PlainTextResponse("t", 203), 203, "text/plain; charset=utf-8", b"t"),
        (Response(b"raw", media_type="image/png"), 200, "image/png", b"raw"),
    ],
)
async def test_return_values_become_responses(
    value: Any, status: int, content_type: str, body: bytes
) -> None:
    response = await serve_one(value)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))


@pytest.mark.parametrize("value", [None, 3.5, object(), ("a", "200")])
async def test_unsupported_return_values_are_a_500(value: Any) -> None:
    response = await serve_one(value)
    assert response.status_code == 500
    assert response.text == "Internal Server Error"


async def test_204_has_no_content_length() -> None:
    response = await serve_one(Response(status_code=204))
    assert response.status_code == 204
    assert "content-length" not in response.headers


def test_json_response_rejects_nan() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        JSONResponse(float("nan"))


async def test_redirect_response() -> None:
    response = await serve_one(RedirectResponse("/a b?x=ü", status_code=303))
    assert response.status_code == 303
    assert response.headers["location"] == "/a%20b?x=%C3%BC"


async def test_set_and_delete_cookie() -> None:
    response = Response("x")
    response.set_cookie(
        "session",
        "abc",
        max_age=60,
        expires=datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        domain="example.com",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.delete_cookie("old")
    served = await serve_one(response)
    assert served.headers.get_list("set-cookie") == [
        "session=abc; Max-Age=60; Expires=Wed, 02 Jan 2030 03:04:05 GMT; Path=/; "
        "Domain=example.com; Secure; HttpOnly; SameSite=Strict",
        "old=; Max-Age=0; Path=/; SameSite=Lax",
    ]


@pytest.mark.parametrize(
    ("key", "value", "options", "message"),
    [
        ("bad name", "v", {}, "not an RFC 6265 token"),
        ("k", "a;b", {}, "cannot hold"),
        ("k", 'a"b', {}, "cannot hold"),
        ("k", "v", {"samesite": "none"}, "requires secure=True"),
        ("k", "v", {"path": "/a;b"}, "holds ';'"),
        ("k", "v", {"samesite": "sometimes"}, "samesite must be"),
    ],
)
def test_invalid_cookies_raise(
    key: str, value: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Response().set_cookie(key, value, **options)


@pytest.mark.parametrize(
    ("headers", "media_type"),
    [
        ({"x-a": "1\r\nx-b: 2"}, None),
        ({"x-a": "1\nx-b: 2"}, None),
        ({"x-a\r\nx-b": "2"}, None),
        ({"x-a": "1\0"}, None),
        (None, "text/plain\r\nx-b: 2"),
    ],
)
def test_header_injection_is_refused(
    headers: dict[str, str] | None, media_type: str | None
) -> None:
    with pytest.raises(ValueError, match="invalid character"):
        Response(headers=headers, media_type=media_type)


def test_given_entity_headers_win_whatever_their_case() -> None:
    response = PlainTextResponse(
        "a,b", headers={"Content-Type": "text/csv", "X-Tag": "t"}
    )
    assert response.headers.raw == [
        (b"content-type", b"text/csv"),
        (b"x-tag", b"t"),
        (b"content-length", b"3"),
    ]


def test_headers_of_each_response_are_its_own_and_stay_editable() -> None:
    first, second = JSONResponse([1]), JSONResponse([1])
    first.headers["X-Added"] = "yes"
    first.headers["content-type"] = "application/problem+json"
    assert first.start_message()["headers"] == [
        (b"content-length", b"3"),
        (b"x-added", b"yes"),
        (b"content-type", b"application/problem+json"),
    ]
    assert second.headers.raw == [
        (b"content-type", b"application/json"),
        (b"content-length", b"3"),
    ]
    assert "x-added" not in second.headers


def test_returned_tuples_with_and_without_headers() -> None:
    from trasgi_web._endpoints import to_response

    plain = to_response(({"a": 1}, 201))
    tagged = to_response(("text", 202, {"X-Tag": "t"}))
    assert (plain.status_code, plain.body) == (201, b'{"a":1}')
    assert plain.headers.raw == [
        (b"content-type", b"application/json"),
        (b"content-length", b"7"),
    ]
    assert (tagged.status_code, tagged.headers["x-tag"]) == (202, "t")
    assert tagged.headers["content-type"] == "text/plain; charset=utf-8"


def test_a_text_media_type_gets_a_charset_unless_it_has_one() -> None:
    assert Response("x", media_type="text/csv").headers["content-type"] == (
        "text/csv; charset=utf-8"
    )
    latin = Response("x", media_type="text/csv; charset=latin-1")
    assert latin.headers["content-type"] == "text/csv; charset=latin-1"


def test_json_response_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        JSONResponse({"when": datetime(2024, 1, 1)})


async def test_streaming_response_sends_each_piece_as_it_comes() -> None:
    app = App()
    release = trio.Event()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def pieces() -> AsyncIterator[str]:
            yield "first\n"
            await release.wait()
            yield "second\n"

        return StreamingResponse(pieces(), media_type="text/plain")

    async with open_client(app) as client, client.stream("GET", "/stream") as response:
        assert "content-length" not in response.headers
        chunks = response.aiter_bytes()
        assert await chunks.__anext__() == b"first\n"
        release.set()
        assert await chunks.__anext__() == b"second\n"
        assert [chunk async for chunk in chunks] == []


async def test_streaming_response_head_does_not_run_the_iterator() -> None:
    app = App()
    ran: list[str] = []

    @app.get("/s")
    async def s() -> StreamingResponse:
        async def pieces() -> AsyncIterator[bytes]:
            ran.append("started")
            yield b"x"

        return StreamingResponse(pieces())

    async with open_client(app) as client:
        head = await client.head("/s")
        get = await client.get("/s")
    assert head.content == b""
    assert get.content == b"x"
    assert ran == ["started"]


async def test_streaming_response_accepts_a_plain_iterable() -> None:
    pieces: list[str | bytes] = [b"a", "b"]
    response = await serve_one(StreamingResponse(iter(pieces)))
    assert response.content == b"ab"


async def test_request_parameter_receives_the_request() -> None:
    app = App()

    @app.get("/who")
    async def who(req: Request) -> str:
        return req.method

    async with open_client(app) as client:
        response = await client.get("/who")
    assert response.text == "GET"
