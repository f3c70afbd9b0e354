"""Routing through the real server: 404/405/HEAD/OPTIONS, slashes, mounts."""

from collections.abc import Iterator
from typing import Any

import pytest

from trasgi.testing import open_client
from trasgi_web import (
    App,
    JSONResponse,
    Mount,
    PlainTextResponse,
    Request,
    Route,
    Router,
    WebSocketRoute,
)
from trasgi_web._types import Receive, Scope, Send


def make_app(**options: Any) -> App:
    app = App(**options)

    @app.get("/items/{item_id:int}", name="item")
    async def get_item(request: Request, item_id: int) -> dict[str, Any]:
        return {"id": item_id, "type": type(item_id).__name__}

    @app.put("/items/{item_id:int}")
    async def put_item(request: Request, item_id: int) -> str:
        return "put"

    @app.delete("/items/{other:int}")
    async def delete_item(request: Request, other: int) -> str:
        return "deleted"

    @app.post("/items/")
    async def create(request: Request) -> str:
        return "created"

    @app.get("/plain")
    async def plain() -> str:
        return "no request parameter"

    return app


async def test_path_params_are_converted_and_passed_by_keyword() -> None:
    async with open_client(make_app()) as client:
        response = await client.get("/items/12")
        other = await client.get("/plain")
    assert response.json() == {"id": 12, "type": "int"}
    assert other.text == "no request parameter"


async def test_path_params_are_new_per_request_and_keep_enclosing_ones() -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int, **enclosing: str) -> Any:
        seen = dict(request.path_params)
        request.path_params["mutated"] = True  # must not leak to later requests
        return seen

    class Tenant:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["path"].startswith("/items/1"):
                scope["path_params"] = {"tenant": "acme"}
            await self.app(scope, receive, send)

    app.add_middleware(Tenant)
    async with open_client(app) as client:
        enclosed = await client.get("/items/1")
        first = await client.get("/items/2")
        second = await client.get("/items/2")
    assert enclosed.json() == {"tenant": "acme", "item_id": 1}
    assert first.json() == second.json() == {"item_id": 2}


async def test_converter_mismatch_is_404() -> None:
    async with open_client(make_app()) as client:
        response = await client.get("/items/twelve")
    assert response.status_code == 404
    assert response.text == "Not Found"


async def test_405_lists_the_union_of_methods_of_every_route_of_the_path() -> None:
    async with open_client(make_app()) as client:
        response = await client.post("/items/3")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"


async def test_head_is_served_wherever_get_is_without_a_body() -> None:
    async with open_client(make_app()) as client:
        get = await client.get("/items/3")
        head = await client.head("/items/3")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"


async def test_head_is_405_where_get_is_not_served() -> None:
    app = App()

    @app.post("/submit")
    async def submit() -> str:
        return "posted"  # pragma: no cover

    async with open_client(app) as client:
        response = await client.head("/submit")
    assert response.status_code == 405
    assert response.headers["allow"] == "OPTIONS, POST"


async def test_explicit_head_route_beats_the_implicit_one() -> None:
    app = App()

    @app.get("/r")
    async def get_r() -> str:
        return "get"

    @app.route("/r", methods=["HEAD"])
    async def head_r() -> PlainTextResponse:
        return PlainTextResponse("", headers={"x-head": "explicit"})

    async with open_client(app) as client:
        response = await client.head("/r")
    assert response.headers["x-head"] == "explicit"


async def test_automatic_options_answers_204_with_allow() -> None:
    async with open_client(make_app()) as client:
        response = await client.options("/items/3")
    assert response.status_code == 204
    assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PUT"
    assert response.content == b""


async def test_explicit_options_route_replaces_the_automatic_answer() -> None:
    app = App()

    @app.get("/o")
    async def get_o() -> str:
        return "o"

    @app.options("/o")
    async def options_o() -> tuple[str, int]:
        return "custom", 200

    async with open_client(app) as client:
        response = await client.options("/o")
    assert (response.status_code, response.text) == (200, "custom")


async def test_unknown_path_is_404_and_no_allow() -> None:
    async with open_client(make_app()) as client:
        response = await client.get("/nowhere")
    assert response.status_code == 404
    assert "allow" not in response.headers


async def test_trailing_slash_redirects_with_308_to_a_relative_location() -> None:
    async with open_client(make_app()) as client:
        removed = await client.get("/items/3/?q=1")
        added = await client.post("/items")
    assert removed.status_code == 308
    assert removed.headers["location"] == "/items/3?q=1"
    assert added.status_code == 308
    assert added.headers["location"] == "/items/"


async def test_trailing_slash_strict_answers_404() -> None:
    async with open_client(make_app(trailing_slash="strict")) as client:
        response = await client.get("/items/3/")
    assert response.status_code == 404


async def test_trailing_slash_match_serves_the_other_form() -> None:
    async with open_client(make_app(trailing_slash="match")) as client:
        response = await client.get("/items/3/")
    assert response.json()["id"] == 3


async def test_custom_converter_registered_per_app() -> None:
    class SlugConverter:
        regex = "[a-z0-9]+(?:-[a-z0-9]+)*"

        def convert(self, value: str) -> str:
            return value

        def to_string(self, value: Any) -> str:
            return str(value)

    class EvenConverter:
        regex = "[0-9]+"

        def convert(self, value: str) -> int:
            if int(value) % 2:
                raise ValueError("odd")
            return int(value)

        def to_string(self, value: Any) -> str:
            return str(value)

    app = App(converters={"slug": SlugConverter()})
    app.register_converter("even", EvenConverter())

    @app.get("/posts/{slug:slug}")
    async def post(request: Request, slug: str) -> str:
        return slug

    @app.get("/even/{n:even}")
    async def even(request: Request, n: int) -> str:
        return f"{n} is even"

    async with open_client(app) as client:
        ok = await client.get("/posts/hello-world")
        bad = await client.get("/posts/Hello_World")
        even_ok = await client.get("/even/4")
        odd = await client.get("/even/3")
    assert ok.text == "hello-world"
    assert bad.status_code == 404
    assert even_ok.text == "4 is even"
    assert odd.status_code == 404
    with pytest.raises(ValueError, match="already registered"):
        app.register_converter("slug", SlugConverter())
    other_app = App()
    with pytest.raises(ValueError, match="unknown converter 'slug'"):
        other_app.add_route("/posts/{slug:slug}", post)


async def test_router_prefix_and_include_router() -> None:
    router = Router(prefix="/api")

    @router.get("/users/{user_id:int}", name="user")
    async def user(request: Request, user_id: int) -> dict[str, int]:
        return {"user": user_id}

    app = App()
    app.include_router(router, prefix="/v1")
    assert [route.path for route in app.routes] == ["/v1/api/users/{user_id:int}"]
    async with open_client(app) as client:
        response = await client.get("/v1/api/users/5")
    assert response.json() == {"user": 5}
    assert app.url_for("user", user_id=5) == "/v1/api/users/5"


async def test_mount_adjusts_root_path_and_keeps_the_full_path() -> None:
    seen: list[tuple[str, str]] = []

    async def raw_app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope["root_path"], scope["path"]))
        await PlainTextResponse("raw")(scope, receive, send)

    inner = App()

    @inner.get("/hello/{name}", name="hello")
    async def hello(request: Request, name: str) -> dict[str, str]:
        return {
            "name": name,
            "path": request.path,
            "root_path": request.root_path,
            "url_for": request.url_for("hello", name="x"),
        }

    app = App()
    app.mount("/raw", raw_app)
    app.mount("/inner", inner, name="inner")
    async with open_client(app) as client:
        raw = await client.get("/raw/a/b")
        nested = await client.get("/inner/hello/ann")
        root = await client.post("/raw")
    assert raw.text == root.text == "raw"
    assert seen == [("/raw", "/raw/a/b"), ("/raw", "/raw")]
    assert nested.json() == {
        "name": "ann",
        "path": "/hello/ann",
        "root_path": "/inner",
        "url_for": "/inner/hello/x",
    }
    assert app.url_for("inner:hello", name="bo") == "/inner/hello/bo"


def test_url_for_errors() -> None:
    app = make_app()
    assert app.url_for("item", item_id=7) == "/items/7"
    with pytest.raises(LookupError, match="no route named 'nope'"):
        app.url_for("nope")
    with pytest.raises(ValueError, match="takes parameters"):
        app.url_for("item")
    with pytest.raises(ValueError, match="non-negative int"):
        app.url_for("item", item_id="abc")


def test_route_table_is_inspectable() -> None:
    app = make_app()

    async def ws(websocket: Any) -> None: ...

    app.add_websocket_route("/ws", ws)
    app.mount("/static", make_app(), name="static")
    kinds = [type(route) for route in app.routes]
    assert kinds == [Route] * 5 + [WebSocketRoute, Mount]
    first = app.routes[0]
    assert isinstance(first, Route)
    assert (first.path, first.name, first.methods) == (
        "/items/{item_id:int}",
        "item",
        frozenset({"GET"}),
    )
    assert first.allowed_methods == {"GET", "HEAD"}
    assert app.url_for("static", path="/css/a.css") == "/static/css/a.css"


async def handler(request: Request) -> str:
    return ""


async def handler_with_id(request: Request, id: int) -> str:
    return ""


def generator_handler(request: Request) -> Iterator[str]:
    yield ""


async def needs_extra(request: Request, extra) -> str:  # type: ignore[no-untyped-def]
    return ""


@pytest.mark.parametrize(
    ("define", "error", "message"),
    [
        (lambda app: app.add_route("nope", handler), ValueError, "must start with '/'"),
        (lambda app: app.add_route("/{id", handler), ValueError, "unbalanced"),
        (
            lambda app: app.add_route("/{id:int}", handler),
            ValueError,
            "does not accept path parameter 'id'",
        ),
        (
            lambda app: app.add_route("/x", needs_extra),
            TypeError,
            "parameter 'extra' of needs_extra of '/x' has no annotation",
        ),
        (
            lambda app: app.add_route("/x", generator_handler),
            TypeError,
            "is a generator; only providers may yield",
        ),
        (
            lambda app: app.add_route("/x", handler, ["G ET"]),
            ValueError,
            "not a valid HTTP method",
        ),
        (lambda app: app.add_route("/x", handler, "GET"), TypeError, "must be a list"),
        (lambda app: app.add_route("/x", handler, []), ValueError, "at least one"),
        (
            lambda app: app.add_route("/x", handler, timeout=0),
            ValueError,
            "timeout must be positive",
        ),
        (lambda app: app.mount("static", App()), ValueError, "must start"),
        (lambda app: app.mount("/s/{x}", App()), ValueError, "cannot hold parameters"),
        (lambda app: Router(prefix="api/"), ValueError, "must start and not end"),
        (
            lambda app: App(trailing_slash="sometimes"),  # type: ignore[arg-type]
            ValueError,
            "trailing_slash",
        ),
    ],
)
def test_invalid_definitions_raise_at_definition_time(
    define: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        define(App())


def test_conflicting_routes_raise_value_error() -> None:
    app = App()
    app.add_route("/items/{a:int}", handler_with_id_a, ["GET", "POST"])
    with pytest.raises(ValueError, match=r"conflicts with Route\('/items/\{a:int\}'"):
        app.add_route("/items/{b:int}", handler_with_id_b, ["POST"])
    # Same shape, other methods: no conflict. Other converter: no conflict.
    app.add_route("/items/{b:int}", handler_with_id_b, ["DELETE"])
    app.add_route("/items/{b}", handler_with_id_b, ["GET"])
    app.add_route("/named", handler, name="dup")
    with pytest.raises(ValueError, match="route name 'dup' is already used"):
        app.add_route("/other", handler, name="dup")
    app.mount("/m", App())
    with pytest.raises(ValueError, match="already mounted"):
        app.mount("/m", App())

    async def ws(websocket: Any, **params: Any) -> None: ...

    app.add_websocket_route("/ws/{x}", ws)
    with pytest.raises(ValueError, match="websocket route"):
        app.add_websocket_route("/ws/{y}", ws)


async def handler_with_id_a(request: Request, a: int) -> str:
    return ""


async def handler_with_id_b(request: Request, b: Any) -> str:
    return ""


async def test_handlers_may_share_a_default_name() -> None:
    app = App()
    app.add_route("/a", handler)
    app.add_route("/b", handler)
    assert app.url_for("handler") == "/a"


async def test_tuple_return_sets_status_and_headers() -> None:
    app = App()

    @app.post("/t")
    async def created() -> tuple[dict[str, bool], int, dict[str, str]]:
        return {"ok": True}, 201, {"Location": "/t/1"}

    async with open_client(app) as client:
        response = await client.post("/t")
    assert response.status_code == 201
    assert response.headers["location"] == "/t/1"
    assert response.json() == {"ok": True}


async def test_json_response_subclass_is_passed_through() -> None:
    app = App()

    @app.get("/j")
    async def j() -> JSONResponse:
        return JSONResponse(["é"], status_code=202)

    async with open_client(app) as client:
        response = await client.get("/j")
    assert (response.status_code, response.json()) == (202, ["é"])
