"""GZip with validators and HEAD, the set_cookie hint, one JSON encoding."""

import base64
import pathlib
from collections.abc import AsyncIterator

import pytest

from trasgi.testing import open_client
from trasgi_web import (
    App,
    EventSourceResponse,
    FileResponse,
    GZipMiddleware,
    JSONResponse,
    Request,
    Response,
    ServerSentEvent,
    StaticFiles,
    StreamingResponse,
)

GZIP = {"accept-encoding": "gzip"}


def files_app(directory: pathlib.Path) -> App:
    (directory / "big.txt").write_text("line of text\n" * 200)
    (directory / "tiny.txt").write_text("tiny")
    app = App()

    @app.get("/file/{name}")
    async def file(request: Request, name: str) -> FileResponse:
        return FileResponse(directory / name)

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        return StreamingResponse(iter(["a", "b"]), media_type="text/plain")

    @app.get("/encoded")
    async def encoded() -> Response:
        return Response(b"x" * 1000, headers={"content-encoding": "br", "etag": '"e"'})

    app.mount("/static", StaticFiles(directory=directory))
    app.add_middleware(GZipMiddleware)
    return app


@pytest.mark.parametrize("path", ["/file/big.txt", "/static/big.txt", "/file/tiny.txt"])
async def test_a_304_carries_the_vary_and_etag_of_its_200(
    tmp_path: pathlib.Path, path: str
) -> None:
    async with open_client(files_app(tmp_path)) as client:
        full = await client.get(path, headers=GZIP)
        etag = full.headers["etag"]
        assert etag.startswith("W/")
        revalidated = await client.get(path, headers={**GZIP, "if-none-match": etag})
    assert full.status_code == 200
    assert revalidated.status_code == 304
    # RFC 9110 section 15.4.5: the same ETag and Vary as the 200.
    assert revalidated.headers["etag"] == etag
    assert revalidated.headers["vary"] == full.headers["vary"] == "Accept-Encoding"


async def test_a_304_for_a_client_without_gzip_is_unchanged(
    tmp_path: pathlib.Path,
) -> None:
    async with open_client(files_app(tmp_path)) as client:
        full = await client.get("/file/big.txt", headers={"accept-encoding": "br"})
        etag = full.headers["etag"]
        revalidated = await client.get(
            "/file/big.txt", headers={"accept-encoding": "br", "if-none-match": etag}
        )
    assert not etag.startswith("W/")
    assert revalidated.headers["etag"] == etag
    assert "vary" not in revalidated.headers


@pytest.mark.parametrize(
    "path", ["/file/big.txt", "/static/big.txt", "/file/tiny.txt", "/stream"]
)
async def test_head_answers_with_the_headers_of_get(
    tmp_path: pathlib.Path, path: str
) -> None:
    async with open_client(files_app(tmp_path)) as client:
        get = await client.get(path, headers=GZIP)
        head = await client.head(path, headers=GZIP)
    assert head.content == b""
    for name in ("content-encoding", "vary", "etag", "content-type"):
        assert head.headers.get(name) == get.headers.get(name), name
    if "content-encoding" not in get.headers and path != "/stream":
        assert head.headers["content-length"] == get.headers["content-length"]


async def test_big_files_are_still_compressed(tmp_path: pathlib.Path) -> None:
    async with open_client(files_app(tmp_path)) as client:
        response = await client.get("/file/big.txt", headers=GZIP)
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == "line of text\n" * 200
    assert int(response.headers["content-length"]) < 200


async def test_already_encoded_responses_pass_through(tmp_path: pathlib.Path) -> None:
    async with open_client(files_app(tmp_path)) as client:
        head = await client.head("/encoded", headers=GZIP)
    assert head.headers["content-encoding"] == "br"
    assert head.headers["etag"] == '"e"'
    assert head.headers["content-length"] == "1000"


def test_a_value_a_cookie_cannot_hold_says_how_to_encode_it() -> None:
    response = Response()
    with pytest.raises(ValueError, match="base64url") as caught:
        response.set_cookie("prefs", '{"theme": "dark"}')
    assert "RFC 6265 section 4.1.1" in str(caught.value)
    # The suggested encoding is accepted.
    encoded = base64.urlsafe_b64encode(b'{"theme": "dark"}').decode()
    response.set_cookie("prefs", encoded)
    assert response.headers["set-cookie"].startswith(f"prefs={encoded};")


async def test_event_data_is_the_json_of_json_responses() -> None:
    value = {"text": "café", "items": [1, 2], "nested": {"a": None}}
    body = JSONResponse(value).body
    event = ServerSentEvent(value).encode()
    assert event == b"data: " + body + b"\n\n"

    app = App()

    @app.get("/events")
    async def events() -> EventSourceResponse:
        async def one() -> AsyncIterator[object]:
            yield value

        return EventSourceResponse(one())

    async with open_client(app) as client:
        response = await client.get("/events")
    assert response.content == b"data: " + body + b"\n\n"
