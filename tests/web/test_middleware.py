"""Pure ASGI middleware: ordering, CORS, GZip, TrustedHost."""

import gzip
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

from trasgi.testing import open_client
from trasgi_web import (
    App,
    CORSMiddleware,
    EventSourceResponse,
    GZipMiddleware,
    Request,
    StreamingResponse,
    TrustedHostMiddleware,
)
from trasgi_web._middleware.gzip import accepts_gzip
from trasgi_web._types import ASGIApp, Message, Receive, Scope, Send


class Tag:
    """Appends its name to an ``x-trail`` response header."""

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message["headers"], (b"x-trail", self.name.encode())],
                }
            await send(message)

        await self.app(scope, receive, tagged)


def text_app() -> App:
    app = App()

    @app.get("/")
    async def index() -> str:
        return "hello " * 200

    @app.get("/small")
    async def small() -> str:
        return "tiny"

    @app.get("/missing")
    async def missing() -> str:
        from trasgi_web import HTTPException

        raise HTTPException(404, "nope")

    return app


async def test_middleware_order_and_error_responses_pass_through_it() -> None:
    app = text_app()
    app.add_middleware(Tag, name="inner")
    app.add_middleware(Tag, name="outer")
    async with open_client(app) as client:
        response = await client.get("/small")
        missing = await client.get("/missing")
    assert response.headers.get_list("x-trail") == ["inner", "outer"]
    assert missing.headers.get_list("x-trail") == ["inner", "outer"]
    with pytest.raises(RuntimeError, match="before the application starts serving"):
        app.add_middleware(Tag, name="late")


def cors_app(**options: Any) -> App:
    app = text_app()
    app.add_middleware(CORSMiddleware, **options)
    return app


async def test_cors_simple_and_preflight_requests() -> None:
    app = cors_app(
        allow_origins=["https://a.example"],
        allow_methods=["GET", "PUT"],
        allow_headers=["X-Token"],
        expose_headers=["X-Count"],
        max_age=60,
    )
    async with open_client(app) as client:
        simple = await client.get("/small", headers={"origin": "https://a.example"})
        stranger = await client.get(
            "/small", headers={"origin": "https://evil.example"}
        )
        preflight = await client.options(
            "/small",
            headers={
                "origin": "https://a.example",
                "access-control-request-method": "PUT",
                "access-control-request-headers": "x-token",
            },
        )
        bad_method = await client.options(
            "/small",
            headers={
                "origin": "https://a.example",
                "access-control-request-method": "DELETE",
            },
        )
        bad_header = await client.options(
            "/small",
            headers={
                "origin": "https://a.example",
                "access-control-request-method": "GET",
                "access-control-request-headers": "x-other",
            },
        )
        bad_origin = await client.options(
            "/small",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "GET",
            },
        )
    assert simple.headers["access-control-allow-origin"] == "https://a.example"
    assert simple.headers["access-control-expose-headers"] == "X-Count"
    assert simple.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in stranger.headers
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-methods"] == "GET, PUT"
    assert preflight.headers["access-control-allow-headers"] == "x-token"
    assert preflight.headers["access-control-max-age"] == "60"
    assert (bad_method.status_code, bad_method.text) == (400, "Disallowed CORS method")
    assert (bad_header.status_code, bad_header.text) == (400, "Disallowed CORS headers")
    assert (bad_origin.status_code, bad_origin.text) == (400, "Disallowed CORS origin")


async def test_cors_wildcard_with_and_without_credentials() -> None:
    async with open_client(cors_app(allow_origins=["*"])) as client:
        anyone = await client.get("/small", headers={"origin": "https://x.example"})
    async with open_client(
        cors_app(allow_origins=["*"], allow_credentials=True)
    ) as client:
        credentialed = await client.get(
            "/small", headers={"origin": "https://x.example"}
        )
    assert anyone.headers["access-control-allow-origin"] == "*"
    # With credentials the origin is echoed: "*" is not allowed then.
    assert credentialed.headers["access-control-allow-origin"] == "https://x.example"
    assert credentialed.headers["access-control-allow-credentials"] == "true"


def test_cors_rejects_malformed_origins() -> None:
    with pytest.raises(ValueError, match="must look like"):
        CORSMiddleware(text_app(), allow_origins=["example.com"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("br, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("identity", False),
        ("", False),
        ("gzip;q=bad", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


async def test_gzip_compresses_large_bodies_only_for_clients_that_accept_it() -> None:
    app = text_app()
    app.add_middleware(GZipMiddleware, minimum_size=100)
    async with open_client(app) as client:
        large = await client.get("/", headers={"accept-encoding": "gzip"})
        small = await client.get("/small", headers={"accept-encoding": "gzip"})
        refused = await client.get("/", headers={"accept-encoding": "identity"})
    assert large.headers["content-encoding"] == "gzip"
    assert large.headers["vary"] == "Accept-Encoding"
    assert int(large.headers["content-length"]) < 1200
    assert large.text == "hello " * 200  # httpx decodes it
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in refused.headers


async def test_gzip_streams_without_buffering_and_skips_event_streams() -> None:
    app = App()
    release = trio.Event()

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def pieces() -> AsyncIterator[str]:
            yield "a" * 1000
            await release.wait()
            yield "b" * 1000

        return StreamingResponse(pieces(), media_type="text/plain")

    @app.get("/events")
    async def events() -> EventSourceResponse:
        async def one() -> AsyncIterator[str]:
            yield "e" * 1000

        return EventSourceResponse(one())

    app.add_middleware(GZipMiddleware)
    async with open_client(app) as client:
        async with client.stream(
            "GET", "/stream", headers={"accept-encoding": "gzip"}
        ) as r:
            assert r.headers["content-encoding"] == "gzip"
            raw = r.aiter_raw()
            first = await raw.__anext__()
            # The first piece arrives, decodable, before the second exists.
            assert (
                gzip.GzipFile(fileobj=__import__("io").BytesIO(first)).read1()
                == b"a" * 1000
            )
            release.set()
            rest = b"".join([chunk async for chunk in raw])
        sse = await client.get("/events", headers={"accept-encoding": "gzip"})
    assert gzip.decompress(first + rest) == b"a" * 1000 + b"b" * 1000
    assert "content-encoding" not in sse.headers
    assert sse.text == "data: " + "e" * 1000 + "\n\n"


async def test_trusted_host() -> None:
    app = text_app()
    app.add_middleware(
        TrustedHostMiddleware,
        allowed_hosts=["example.com", "www.shop.test", "*.api.test"],
    )
    async with open_client(app, base_url="http://example.com") as client:
        ok = await client.get("/small")
        port_ok = await client.get("/small", headers={"host": "example.com:8080"})
        evil = await client.get("/small", headers={"host": "evil.test"})
        sub = await client.get("/small", headers={"host": "v1.api.test"})
        bare = await client.get("/small", headers={"host": "api.test"})
        www = await client.get("/small?q=1", headers={"host": "shop.test"})
    assert ok.text == port_ok.text == sub.text == "tiny"
    assert (evil.status_code, evil.text) == (400, "Invalid host header")
    assert bare.status_code == 400
    assert www.status_code == 308
    assert www.headers["location"] == "http://www.shop.test/small?q=1"
    with pytest.raises(ValueError, match="only as a leading"):
        TrustedHostMiddleware(app, allowed_hosts=["a.*.com"])


async def test_request_sees_the_app_behind_middleware() -> None:
    app = App()

    @app.get("/")
    async def index(request: Request) -> str:
        return str(request.app is app)

    app.add_middleware(GZipMiddleware)
    async with open_client(app) as client:
        assert (await client.get("/")).text == "True"
