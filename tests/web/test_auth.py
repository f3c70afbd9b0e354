"""Authentication and route requirements, however the routes are declared."""

from collections.abc import Callable
from typing import Any

import pytest

from trasgi.testing import WebSocketDenied, open_client, open_websocket
from trasgi_web import (
    App,
    AuthCredentials,
    AuthenticationError,
    AuthenticationMiddleware,
    BaseUser,
    HTTPConnection,
    PlainTextResponse,
    Request,
    Requires,
    Response,
    Router,
    SimpleUser,
    WebSocket,
    requires,
)

USERS = {"ada-token": ("ada", ["read"]), "root-token": ("root", ["read", "admin"])}


class TokenBackend:
    """``Authorization: Bearer <token>``, or ``?token=`` for websockets."""

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization", "")
        token = header.removeprefix("Bearer ") if header else conn.query.get("token")
        if token is None:
            return None
        if token not in USERS:
            raise AuthenticationError("unknown token")
        name, scopes = USERS[token]
        return AuthCredentials(scopes), SimpleUser(name)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def whoami(request: Request) -> str:
    return request.user.display_name or "anonymous"


def with_auth(app: App, **options: Any) -> App:
    app.add_middleware(AuthenticationMiddleware, backend=TokenBackend(), **options)
    return app


async def test_anonymous_and_authenticated_users() -> None:
    app = App()
    app.add_route("/", whoami)

    @app.get("/scopes")
    async def scopes(request: Request) -> list[str]:
        return list(request.auth.scopes)

    async with open_client(with_auth(app)) as client:
        assert (await client.get("/")).text == "anonymous"
        assert (await client.get("/", headers=bearer("ada-token"))).text == "ada"
        response = await client.get("/scopes", headers=bearer("root-token"))
        assert response.json() == ["read", "admin"]
        bad = await client.get("/", headers=bearer("nope"))
        assert (bad.status_code, bad.text) == (400, "unknown token")


async def test_on_error_builds_the_answer() -> None:
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        return PlainTextResponse(f"refused: {exc}", 401)

    app = App()
    app.add_route("/", whoami)
    async with open_client(with_auth(app, on_error=on_error)) as client:
        response = await client.get("/", headers=bearer("nope"))
    assert (response.status_code, response.text) == (401, "refused: unknown token")


async def test_requirements_answer_401_403_and_pass() -> None:
    app = App()
    app.add_route("/read", whoami, requires=Requires("read"))
    app.add_route("/admin", whoami, requires=Requires("admin"))
    app.add_route("/hidden", whoami, requires=Requires("admin", status_code=404))
    app.add_route("/api", whoami, requires=Requires(challenge='Bearer realm="api"'))
    async with open_client(with_auth(app)) as client:
        anonymous = await client.get("/read")
        assert anonymous.status_code == 401
        # RFC 9110 section 11.6.1: a 401 names how to authenticate.
        assert anonymous.headers["www-authenticate"] == "Session"
        api = await client.get("/api")
        assert api.headers["www-authenticate"] == 'Bearer realm="api"'
        assert (await client.get("/read", headers=bearer("ada-token"))).text == "ada"
        ada_admin = await client.get("/admin", headers=bearer("ada-token"))
        assert ada_admin.status_code == 403
        ada_hidden = await client.get("/hidden", headers=bearer("ada-token"))
        assert ada_hidden.status_code == 404
        root = await client.get("/admin", headers=bearer("root-token"))
        assert root.text == "root"


async def test_a_login_redirect_keeps_the_page_asked_for() -> None:
    app = App()

    @app.get("/login")
    async def login() -> str:
        return "login page"

    app.add_route(
        "/private", whoami, methods=["GET", "POST"], requires=Requires(redirect="login")
    )
    app.add_route("/elsewhere", whoami, requires=Requires(redirect="/signin"))
    async with open_client(with_auth(app)) as client:
        response = await client.get("/private?tab=2")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fprivate%3Ftab%3D2"
        posted = await client.post("/private")
        assert posted.headers["location"] == "/login"
        other = await client.get("/elsewhere")
        assert other.headers["location"] == "/signin?next=%2Felsewhere"
        allowed = await client.get("/private", headers=bearer("ada-token"))
        assert allowed.text == "ada"


async def test_a_requirement_without_authentication_fails_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    app.add_route("/", whoami, requires=Requires())
    async with open_client(app) as client:
        assert (await client.get("/")).status_code == 500
    assert "needs AuthenticationMiddleware" in caplog.text


# -- the unprotected-route trap ----------------------------------------------
#
# However a protected route is declared, an anonymous request must never
# reach its handler. Each way below declares "/secret" on a fresh app.


def by_route_option(app: App) -> None:
    @app.get("/secret", requires=Requires("read"))
    async def secret(request: Request) -> str:
        return "the secret"


def by_add_route(app: App) -> None:
    async def secret(request: Request) -> str:
        return "the secret"

    app.add_route("/secret", secret, requires=Requires("read"))


def by_decorator_below_the_route(app: App) -> None:
    @app.get("/secret")
    @requires("read")
    async def secret(request: Request) -> str:
        return "the secret"


def by_decorator_above_the_route(app: App) -> None:
    # Flask's trap: with a wrapping decorator, this order registers the
    # unprotected function. Here the mark is read on each request.
    @requires("read")
    @app.get("/secret")
    async def secret(request: Request) -> str:
        return "the secret"


def by_protected_router(app: App) -> None:
    router = Router(requires=Requires("read"))

    @router.get("/secret")
    async def secret(request: Request) -> str:
        return "the secret"

    app.include_router(router)


def by_router_included_into_a_protected_router(app: App) -> None:
    inner = Router()

    @inner.get("/secret")
    async def secret(request: Request) -> str:
        return "the secret"

    outer = Router(requires=Requires("read"))
    outer.include_router(inner)
    app.include_router(outer)


def by_protected_mount(app: App) -> None:
    sub = App()

    @sub.get("/")
    async def secret(request: Request) -> str:
        return "the secret"

    app.mount("/secret", sub, requires=Requires("read"))


def by_mount_in_a_protected_router(app: App) -> None:
    sub = App()

    @sub.get("/")
    async def secret(request: Request) -> str:
        return "the secret"

    router = Router(requires=Requires("read"))
    router.mount("/secret", sub)
    app.include_router(router)


DECLARATIONS = [
    by_route_option,
    by_add_route,
    by_decorator_below_the_route,
    by_decorator_above_the_route,
    by_protected_router,
    by_router_included_into_a_protected_router,
    by_protected_mount,
    by_mount_in_a_protected_router,
]


@pytest.mark.parametrize("declare", DECLARATIONS)
async def test_the_unprotected_route_trap(declare: Callable[[App], None]) -> None:
    app = App(trailing_slash="match")
    declare(app)
    async with open_client(with_auth(app)) as client:
        for method in ("GET", "HEAD"):
            anonymous = await client.request(method, "/secret")
            assert anonymous.status_code == 401
            assert "the secret" not in anonymous.text
        allowed = await client.get("/secret", headers=bearer("ada-token"))
        assert allowed.text == "the secret"


async def test_route_and_router_requirements_add_up() -> None:
    router = Router("/admin", requires=Requires("read"))
    router.add_route("/", whoami, requires=Requires("admin"))
    app = App()
    app.include_router(router)
    async with open_client(with_auth(app)) as client:
        assert (await client.get("/admin/")).status_code == 401
        ada = await client.get("/admin/", headers=bearer("ada-token"))
        assert ada.status_code == 403
        root = await client.get("/admin/", headers=bearer("root-token"))
        assert root.text == "root"


# -- websockets --------------------------------------------------------------


def ws_app() -> App:
    app = App()

    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(f"hello {websocket.user.display_name}")

    app.add_websocket_route("/ws", hello, requires=Requires("read"))
    router = Router(requires=Requires("admin"))
    router.add_websocket_route("/admin", hello)
    app.include_router(router)

    @app.websocket("/late")
    async def late(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_denial_response(PlainTextResponse("too late"))

    return with_auth(app)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/ws", 401, b"Unauthorized"),
        ("/ws?token=nope", 400, b"unknown token"),
        ("/admin?token=ada-token", 403, b"Forbidden"),
    ],
)
async def test_websocket_denials_carry_status_and_body(
    path: str, status: int, body: bytes
) -> None:
    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(ws_app(), path):
            pass  # pragma: no cover
    assert denied.value.status_code == status
    assert denied.value.body == body


async def test_websocket_401_names_the_scheme() -> None:
    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(ws_app(), "/ws"):
            pass  # pragma: no cover
    assert (b"www-authenticate", b"Session") in denied.value.headers


async def test_websocket_allowed_user() -> None:
    async with open_websocket(ws_app(), "/ws?token=ada-token") as ws:
        assert await ws.receive_text() == "hello ada"
    async with open_websocket(ws_app(), "/admin?token=root-token") as ws:
        assert await ws.receive_text() == "hello root"


async def test_a_denial_response_after_accept_is_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_websocket(ws_app(), "/late") as ws:
        with pytest.raises(Exception, match="1011"):
            await ws.receive_text()
    assert "a denial response can only replace the handshake" in caplog.text


async def test_a_websocket_mount_requirement_denies() -> None:
    sub = App()

    @sub.websocket("/")
    async def hello(websocket: WebSocket) -> None:
        await websocket.accept()  # pragma: no cover

    app = App()
    app.mount("/sub", sub, requires=Requires("read"))
    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(with_auth(app), "/sub/"):
            pass  # pragma: no cover
    assert denied.value.status_code == 401


class Recorder:
    """An ASGI server without the denial-response extension."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(self, message: Any) -> None:
        self.sent.append(dict(message))


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/admin", b"token=ada-token", {"code": 1008, "reason": "Forbidden"}),
        # The middleware's refusal: a close before accept, which servers
        # answer with 403.
        ("/ws", b"token=nope", {"code": 1000, "reason": ""}),
    ],
)
async def test_without_the_extension_a_denial_is_a_close_before_accept(
    path: str, query: bytes, expected: dict[str, Any]
) -> None:
    recorder = Recorder()
    scope = {"type": "websocket", "path": path, "headers": [], "query_string": query}
    await ws_app()(scope, recorder.receive, recorder.send)
    assert recorder.sent == [{"type": "websocket.close", **expected}]
