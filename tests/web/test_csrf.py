"""CSRF protection: tokens, origins, and requests it leaves alone."""

from typing import Any

import pytest

from trasgi.testing import WebSocketDenied, open_client, open_websocket
from trasgi_web import (
    App,
    CSRFMiddleware,
    FormLimits,
    Request,
    SessionMiddleware,
    WebSocket,
    csrf_token,
)

ORIGIN = "http://testserver"


def csrf_app(**options: Any) -> App:
    app = App()

    @app.get("/form")
    async def form(request: Request) -> str:
        return csrf_token(request)

    @app.post("/notes")
    async def create(request: Request) -> dict[str, Any]:
        # The form the check read is the one the handler gets.
        form = await request.form()
        return {"title": form.get("title")}

    @app.post("/api")
    async def api(request: Request) -> Any:
        return await request.json()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("open")

    app.add_middleware(CSRFMiddleware, **options)
    app.add_middleware(SessionMiddleware, secret_key="k")
    return app


async def test_a_form_with_the_token_is_accepted() -> None:
    async with open_client(csrf_app()) as client:
        token = (await client.get("/form")).text
        # Masked anew each time (BREACH): another string, as valid.
        other = (await client.get("/form")).text
        assert other != token
        assert (
            await client.post("/notes", data={"csrf_token": other})
        ).status_code == 200
        response = await client.post(
            "/notes", data={"title": "groceries", "csrf_token": token}
        )
        assert response.json() == {"title": "groceries"}
        multipart = await client.post(
            "/notes",
            data={"title": "with file", "csrf_token": token},
            files={"f": ("a.txt", b"abc")},
            headers={"origin": ORIGIN},
        )
        assert multipart.json() == {"title": "with file"}


async def test_json_with_the_token_header_is_accepted() -> None:
    async with open_client(csrf_app()) as client:
        token = (await client.get("/form")).text
        response = await client.post(
            "/api", json={"a": 1}, headers={"x-csrf-token": token}
        )
        assert response.json() == {"a": 1}


@pytest.mark.parametrize(
    ("data", "headers", "detail"),
    [
        ({"title": "t"}, {}, "CSRF token missing"),
        ({"title": "t", "csrf_token": "wrong"}, {}, "CSRF token incorrect"),
        ({"title": "t"}, {"x-csrf-token": "wrong"}, "CSRF token incorrect"),
    ],
)
async def test_a_missing_or_wrong_token_is_refused(
    data: dict[str, str], headers: dict[str, str], detail: str
) -> None:
    async with open_client(csrf_app()) as client:
        await client.get("/form")
        response = await client.post("/notes", data=data, headers=headers)
    assert (response.status_code, response.text) == (403, detail)


async def test_a_session_without_a_token_is_refused() -> None:
    async with open_client(csrf_app()) as client:
        client.cookies.set("other", "cookie")
        response = await client.post("/notes", data={"csrf_token": "anything"})
    assert (response.status_code, response.text) == (403, "CSRF token missing")


async def test_json_without_the_header_is_refused() -> None:
    async with open_client(csrf_app()) as client:
        await client.get("/form")
        response = await client.post("/api", json={"a": 1})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "http://testserver:8080"},
        {"origin": "https://testserver"},
        {"referer": "https://evil.example/page"},
        {"origin": "http://[::1"},
    ],
)
async def test_another_origin_is_refused_even_with_the_token(
    headers: dict[str, str],
) -> None:
    async with open_client(csrf_app()) as client:
        token = (await client.get("/form")).text
        response = await client.post(
            "/notes", data={"csrf_token": token}, headers=headers
        )
    assert (response.status_code, response.text) == (403, "Cross-site request refused")


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": ORIGIN},
        {"origin": "http://testserver:80"},
        {"referer": ORIGIN + "/form"},
        {"origin": "https://admin.example"},
    ],
)
async def test_the_same_or_a_trusted_origin_is_accepted(
    headers: dict[str, str],
) -> None:
    app = csrf_app(trusted_origins=["https://admin.example", "null"])
    async with open_client(app) as client:
        token = (await client.get("/form")).text
        response = await client.post(
            "/notes", data={"title": "t", "csrf_token": token}, headers=headers
        )
    assert response.json() == {"title": "t"}


async def test_requests_without_cookies_are_not_checked() -> None:
    # An API client authenticating with a header: nothing ambient to abuse.
    async with open_client(csrf_app()) as client:
        response = await client.post(
            "/api",
            json={"a": 1},
            headers={"authorization": "Bearer x", "origin": "https://other.example"},
        )
    assert response.json() == {"a": 1}


async def test_safe_methods_are_not_checked() -> None:
    async with open_client(csrf_app()) as client:
        await client.get("/form")
        response = await client.get("/form", headers={"origin": "https://evil"})
    assert response.status_code == 200


async def test_cross_origin_websockets_with_cookies_are_refused() -> None:
    app = csrf_app()
    async with open_client(app) as client:
        await client.get("/form")
        async with client.websocket_connect(
            "/ws", headers={"origin": ORIGIN}
        ) as websocket:
            assert await websocket.receive_text() == "open"
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect(
                "/ws", headers={"origin": "https://evil.example"}
            ):
                pass  # pragma: no cover
    assert denied.value.status_code == 403
    assert denied.value.body == b"Cross-site request refused"
    # Without cookies there is nothing to hijack.
    async with open_websocket(
        app, "/ws", headers={"origin": "https://evil.example"}
    ) as websocket:
        assert await websocket.receive_text() == "open"


async def test_the_lifespan_passes_through() -> None:
    async with open_client(csrf_app()) as client:
        assert (await client.get("/form")).status_code == 200


@pytest.mark.parametrize(
    ("data", "files", "status", "detail"),
    [
        ({}, [("f", ("a", b"1")), ("f", ("b", b"2"))], 400, "Too many files (limit 1)"),
        ({"a": "1", "b": "2", "c": "3"}, [], 400, "Too many form fields (limit 3)"),
        ({"title": "x" * 101}, [], 413, "Form field 'title' exceeds 100 bytes"),
        ({"title": "short"}, [("f", ("a", b"1"))], 200, "short"),
    ],
)
async def test_the_handlers_form_limits_hold_after_the_check(
    data: dict[str, str], files: list[Any], status: int, detail: str
) -> None:
    # The check reads the form first, with the default limits; the handler's
    # stricter ones still apply to what it gets.
    app = App()

    @app.get("/form")
    async def form(request: Request) -> str:
        return csrf_token(request)

    @app.post("/strict")
    async def strict(request: Request) -> str:
        limits = FormLimits(max_files=1, max_fields=3, max_part_size=100)
        return str((await request.form(limits)).get("title"))

    app.add_middleware(CSRFMiddleware)
    app.add_middleware(SessionMiddleware, secret_key="k")
    async with open_client(app) as client:
        token = (await client.get("/form")).text
        response = await client.post(
            "/strict", data={**data, "csrf_token": token}, files=files or None
        )
    assert (response.status_code, response.text) == (status, detail)


@pytest.mark.parametrize(
    "sent",
    [
        b"not base64 at all!",
        b"c2hvcnQ=",  # base64, but not 64 bytes
        "\u00e9t\u00e9".encode("latin-1"),
    ],
)
async def test_malformed_tokens_are_refused(sent: bytes) -> None:
    async with open_client(csrf_app()) as client:
        await client.get("/form")
        response = await client.post("/api", json={}, headers={b"x-csrf-token": sent})
    assert (response.status_code, response.text) == (403, "CSRF token incorrect")


async def test_a_token_of_another_session_is_refused() -> None:
    app = csrf_app()
    async with open_client(app) as first, open_client(app) as second:
        token = (await first.get("/form")).text
        await second.get("/form")
        response = await second.post("/api", json={}, headers={"x-csrf-token": token})
    assert (response.status_code, response.text) == (403, "CSRF token incorrect")


@pytest.mark.parametrize("planted", ["zz" * 32, "ab", 42])
async def test_a_session_secret_of_another_shape_is_replaced(planted: Any) -> None:
    app = csrf_app()

    @app.post("/plant")
    async def plant(request: Request) -> str:
        request.session["_csrf_token"] = planted
        return "planted"

    async with open_client(app) as client:
        # No cookies yet: not checked.
        assert (await client.post("/plant")).text == "planted"
        refused = await client.post("/api", json={}, headers={"x-csrf-token": "x"})
        assert (refused.status_code, refused.text) == (403, "CSRF token missing")
        token = (await client.get("/form")).text
        accepted = await client.post("/api", json=[1], headers={"x-csrf-token": token})
        assert accepted.json() == [1]
