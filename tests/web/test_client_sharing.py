"""The test client's websockets: its cookies, its lifespan state, easy headers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from trasgi.testing import TestClient, open_client, open_websocket
from trasgi.testing._websocket import cookie_header, encode_headers
from trasgi_web import App, Request, SessionMiddleware, WebSocket


def app_with_state() -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"db": {"greeting": "hello"}}

    app = App(lifespan=lifespan)

    @app.post("/login/{name}")
    async def login(request: Request, name: str) -> str:
        request.session["user"] = name
        return "ok"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        user = websocket.session.get("user", "nobody")
        await websocket.send_text(f"{websocket.state.db['greeting']} {user}")
        await websocket.send_text(websocket.headers.get("x-test", "-"))

    app.add_middleware(SessionMiddleware, secret_key="k")
    return app


async def test_a_logged_in_websocket_shares_the_cookie_jar_and_state() -> None:
    async with open_client(app_with_state()) as client:
        assert isinstance(client, TestClient)
        async with client.websocket_connect("/ws") as ws:
            assert await ws.receive_text() == "hello nobody"
        await client.post("/login/ada")
        async with client.websocket_connect("/ws", headers={"x-test": "1"}) as ws:
            assert await ws.receive_text() == "hello ada"
            assert await ws.receive_text() == "1"


async def test_open_websocket_runs_the_lifespan_when_asked() -> None:
    async with open_websocket(app_with_state(), "/ws", lifespan=True) as ws:
        assert await ws.receive_text() == "hello nobody"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-test": "été"},
        [("x-test", "été")],
        [(b"x-test", "été".encode("latin-1"))],
        [("x-test", b"\xe9t\xe9")],
    ],
)
async def test_headers_may_be_a_mapping_or_pairs_of_str_or_bytes(
    headers: Any,
) -> None:
    async with open_websocket(
        app_with_state(), "/ws", headers=headers, state={"db": {"greeting": "hi"}}
    ) as ws:
        assert await ws.receive_text() == "hi nobody"
        assert await ws.receive_text() == "été"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ([("x-test",)], "mapping or \\(name, value\\) pairs"),
        (["x-test: 1"], "mapping or \\(name, value\\) pairs"),
        ([("x-test", 1)], "must be str or bytes"),
    ],
)
def test_headers_of_another_shape_are_a_clear_error(headers: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        encode_headers(headers)


def test_cookie_header() -> None:
    assert cookie_header({}) == []
    assert cookie_header({"a": "1", "b": "2"}) == [(b"cookie", b"a=1; b=2")]


async def test_cookies_can_be_given_to_open_websocket() -> None:
    app = app_with_state()
    async with open_client(app) as client:
        await client.post("/login/grace")
        cookies = dict(client.cookies)
    async with open_websocket(app, "/ws", cookies=cookies, lifespan=True) as ws:
        assert await ws.receive_text() == "hello grace"


async def test_cookies_set_by_hand_reach_the_websocket() -> None:
    async with open_client(app_with_state()) as client:
        await client.post("/login/ada")
        session = client.cookies["session"]
        client.cookies.clear()
        client.cookies.set("session", session)
        async with client.websocket_connect("/ws") as ws:
            assert await ws.receive_text() == "hello ada"
