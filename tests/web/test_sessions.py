"""SessionMiddleware: signed cookies, tampering, expiry, key rotation, stores."""

import datetime
import secrets
import time
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from trasgi.testing import open_client
from trasgi_web import App, MemorySessionStore, Request, SessionMiddleware
from trasgi_web._sessions import MAX_COOKIE_SIZE

KEY = "a secret key for the tests"


def session_app(**options: Any) -> App:
    app = App()

    @app.get("/")
    async def show(request: Request) -> dict[str, Any]:
        return dict(request.session)

    @app.post("/set/{name}/{value}")
    async def put(request: Request, name: str, value: str) -> str:
        request.session[name] = value
        return "ok"

    @app.post("/append")
    async def append(request: Request) -> str:
        # Changed in place, not assigned: still saved.
        request.session.setdefault("items", []).append(len(request.session["items"]))
        return "ok"

    @app.post("/clear")
    async def clear(request: Request) -> str:
        request.session.clear()
        return "ok"

    @app.post("/bad")
    async def bad(request: Request) -> str:
        request.session["when"] = datetime.date(2024, 1, 2)
        return "unreachable"

    @app.post("/huge")
    async def huge(request: Request) -> str:
        # Random: the signer compresses what it can.
        request.session["blob"] = secrets.token_hex(4000)
        return "unreachable"

    options.setdefault("secret_key", KEY)
    app.add_middleware(SessionMiddleware, **options)
    return app


def set_cookie_headers(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def cookie_made_with(keys: list[str], value: Any, age: float = 0) -> str:
    """A session cookie signed by ``keys`` (newest first), ``age`` seconds ago."""

    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - age)

    serializer = URLSafeTimedSerializer(
        [key.encode() for key in reversed(keys)],
        salt="trasgi_web.session",
        signer=PastSigner,
    )
    return serializer.dumps(value)


async def test_a_session_survives_between_requests() -> None:
    async with open_client(session_app()) as client:
        assert (await client.post("/set/user/ada")).text == "ok"
        assert (await client.get("/")).json() == {"user": "ada"}
        await client.post("/set/theme/dark")
        assert (await client.get("/")).json() == {"user": "ada", "theme": "dark"}


async def test_no_session_sets_no_cookie() -> None:
    async with open_client(session_app()) as client:
        response = await client.get("/")
    assert response.json() == {}
    assert set_cookie_headers(response) == []


async def test_the_cookie_has_secure_defaults() -> None:
    async with open_client(session_app()) as client:
        response = await client.post("/set/a/b")
    [cookie] = set_cookie_headers(response)
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0].startswith("session=")
    assert "HttpOnly" in attributes
    assert "SameSite=Lax" in attributes
    assert "Path=/" in attributes
    assert f"Max-Age={14 * 24 * 3600}" in attributes
    # Plain http: a Secure cookie would never come back.
    assert "Secure" not in attributes


async def test_the_cookie_is_secure_on_https() -> None:
    async with open_client(session_app(), base_url="https://testserver") as client:
        response = await client.post("/set/a/b")
        assert "Secure" in set_cookie_headers(response)[0]
        assert (await client.get("/")).json() == {"a": "b"}


@pytest.mark.parametrize(("https_only", "secure"), [(True, True), (False, False)])
async def test_https_only_forces_the_secure_attribute(
    https_only: bool, secure: bool
) -> None:
    app = session_app(https_only=https_only, same_site="strict", domain="testserver")
    async with open_client(app, base_url="https://testserver") as client:
        response = await client.post("/set/a/b")
    cookie = set_cookie_headers(response)[0]
    assert ("Secure" in cookie) is secure
    assert "SameSite=Strict" in cookie
    assert "Domain=testserver" in cookie


async def test_a_tampered_cookie_is_ignored_and_deleted() -> None:
    async with open_client(session_app()) as client:
        await client.post("/set/user/ada")
        value = client.cookies["session"]
        # The payload is readable JSON; change it and keep the signature.
        payload, _, rest = value.partition(".")
        forged = cookie_made_with(["another key"], {"user": "admin"})
        for bad in (forged, payload[:-2] + "xx." + rest, "garbage"):
            client.cookies.clear()
            client.cookies.set("session", bad)
            response = await client.get("/")
            assert response.json() == {}
            [deletion] = set_cookie_headers(response)
            assert deletion.startswith("session=;")
            assert "Max-Age=0" in deletion


async def test_an_expired_cookie_is_ignored() -> None:
    app = session_app(max_age=60)
    async with open_client(app) as client:
        client.cookies.set("session", cookie_made_with([KEY], {"user": "ada"}, age=30))
        assert (await client.get("/")).json() == {"user": "ada"}
        client.cookies.set("session", cookie_made_with([KEY], {"user": "ada"}, age=90))
        response = await client.get("/")
        assert response.json() == {}
        assert "Max-Age=0" in set_cookie_headers(response)[0]


async def test_without_max_age_the_cookie_ends_with_the_browser() -> None:
    app = session_app(max_age=None)
    async with open_client(app) as client:
        response = await client.post("/set/a/b")
        assert "Max-Age" not in set_cookie_headers(response)[0]
        client.cookies.clear()
        old = cookie_made_with([KEY], {"user": "ada"}, age=10 * 365 * 24 * 3600)
        client.cookies.set("session", old)
        assert (await client.get("/")).json() == {"user": "ada"}


async def test_key_rotation_accepts_old_keys_and_signs_with_the_new_one() -> None:
    app = session_app(secret_key=["new key", "old key"])
    async with open_client(app) as client:
        client.cookies.set("session", cookie_made_with(["old key"], {"user": "ada"}))
        response = await client.get("/")
        assert response.json() == {"user": "ada"}
        # Re-signed with the newest key: it verifies without the old one.
        renewed = response.cookies["session"]
    assert renewed != cookie_made_with(["old key"], {"user": "ada"})
    async with open_client(session_app(secret_key="new key")) as client:
        client.cookies.set("session", renewed)
        assert (await client.get("/")).json() == {"user": "ada"}
    async with open_client(session_app(secret_key="new key")) as client:
        client.cookies.set("session", cookie_made_with(["old key"], {"user": "ada"}))
        assert (await client.get("/")).json() == {}


async def test_changes_in_place_are_saved() -> None:
    async with open_client(session_app()) as client:
        await client.post("/append")
        await client.post("/append")
        assert (await client.get("/")).json() == {"items": [0, 1]}


async def test_clearing_the_session_deletes_the_cookie() -> None:
    async with open_client(session_app()) as client:
        await client.post("/set/a/b")
        response = await client.post("/clear")
        assert "Max-Age=0" in set_cookie_headers(response)[0]
        assert "session" not in client.cookies


async def test_a_value_that_is_not_json_is_a_clear_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_client(session_app()) as client:
        response = await client.post("/bad")
    assert response.status_code == 500
    assert "session['when'] cannot be stored" in caplog.text
    assert "JSON values" in caplog.text


async def test_a_cookie_too_large_for_browsers_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_client(session_app()) as client:
        response = await client.post("/huge")
    assert response.status_code == 500
    assert f"more than the {MAX_COOKIE_SIZE} browsers keep" in caplog.text


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty secret_key"):
        SessionMiddleware(App(), secret_key="")
    with pytest.raises(ValueError, match="non-empty secret_key"):
        SessionMiddleware(App(), secret_key=[])


async def test_request_session_without_the_middleware_says_what_is_missing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.get("/")
    async def show(request: Request) -> str:
        return str(request.session)

    async with open_client(app) as client:
        assert (await client.get("/")).status_code == 500
    assert "request.session needs SessionMiddleware" in caplog.text


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_store_keeps_the_data_on_the_server() -> None:
    clock = Clock()
    store = MemorySessionStore(clock=clock)
    async with open_client(session_app(store=store, max_age=60)) as client:
        await client.post("/set/user/ada")
        assert len(store) == 1
        # The cookie holds a signed identifier, not the data.
        assert "ada" not in client.cookies["session"]
        assert (await client.get("/")).json() == {"user": "ada"}
        [session_id] = store._sessions
        assert await store.load(session_id) == {"user": "ada"}
        clock.now += 61
        response = await client.get("/")
        assert response.json() == {}
        assert len(store) == 0
        assert "Max-Age=0" in set_cookie_headers(response)[0]


async def test_a_store_session_is_deleted_when_cleared() -> None:
    store = MemorySessionStore()
    async with open_client(session_app(store=store)) as client:
        await client.post("/set/user/ada")
        first = client.cookies["session"]
        await client.post("/set/theme/dark")
        # The same session: the identifier is kept while it lives.
        assert client.cookies["session"] == first
        assert len(store) == 1
        await client.post("/clear")
        assert len(store) == 0
        client.cookies.set("session", first)
        assert (await client.get("/")).json() == {}


async def test_a_store_refuses_a_forged_identifier() -> None:
    store = MemorySessionStore()
    async with open_client(session_app(store=store)) as client:
        await client.post("/set/user/ada")
        [session_id] = store._sessions
        client.cookies.clear()
        client.cookies.set("session", session_id)
        assert (await client.get("/")).json() == {}
        # A signed value that is not an identifier is refused too.
        client.cookies.set("session", cookie_made_with([KEY], {"not": "an id"}))
        assert (await client.get("/")).json() == {}


async def test_store_without_expiry_keeps_sessions() -> None:
    store = MemorySessionStore()
    await store.save("id", {"a": 1}, None)
    assert await store.load("id") == {"a": 1}
    assert await store.load("other") is None
    await store.delete("other")
    await store.delete("id")
    assert len(store) == 0


async def test_lifespan_passes_through() -> None:
    started: list[bool] = []
    app = session_app()
    app.on_startup(lambda: started.append(True))
    async with open_client(app):
        pass
    assert started == [True]


async def test_a_cleared_store_session_gets_a_new_identifier() -> None:
    store = MemorySessionStore()
    app = session_app(store=store)

    @app.post("/login/{name}")
    async def login(request: Request, name: str) -> str:
        request.session.clear()
        request.session["user"] = name
        return "ok"

    async with open_client(app) as client:
        await client.post("/set/theme/dark")
        before = client.cookies["session"]
        [old_id] = store._sessions
        await client.post("/login/ada")
        after = client.cookies["session"]
        [new_id] = store._sessions
        assert (before, old_id) != (after, new_id)
        assert (await client.get("/")).json() == {"user": "ada"}
        # The identifier from before the login no longer opens a session.
        client.cookies.clear()
        client.cookies.set("session", before)
        assert (await client.get("/")).json() == {}
