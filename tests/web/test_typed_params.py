"""Typed handler parameters: path, query, header and cookie values, and 422s."""

import datetime
import enum
import uuid
from typing import Annotated, Any

import pytest

from trasgi.testing import open_client
from trasgi_web import (
    App,
    Cookie,
    Header,
    JSONResponse,
    Path,
    Query,
    Request,
    RequestValidationError,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


def typed_app() -> App:
    app = App()

    @app.get("/items")
    async def items(limit: int = 20, q: str | None = None) -> dict[str, Any]:
        return {"limit": limit, "q": q}

    @app.get("/kinds")
    async def kinds(
        ratio: float,
        flag: bool,
        color: Color,
        day: datetime.date,
        at: datetime.datetime,
        id: uuid.UUID,
    ) -> dict[str, Any]:
        return {
            "ratio": ratio,
            "flag": flag,
            "color": color.value,
            "day": day.isoformat(),
            "at": at.isoformat(),
            "id": str(id),
        }

    @app.get("/tags")
    async def tags(tag: list[str], n: list[int] | None = None) -> dict[str, Any]:
        return {"tag": tag, "n": n}

    @app.get("/bounded")
    async def bounded(
        page: Annotated[int, Query(ge=1, le=10)] = 1,
        name: Annotated[str | None, Query(alias="user-name", min_length=2)] = None,
        code: Annotated[str, Query(pattern="^[A-Z]{3}$")] = "ABC",
    ) -> dict[str, Any]:
        return {"page": page, "name": name, "code": code}

    @app.get("/headers")
    async def headers(
        request: Request,
        user_agent: Annotated[str, Header()],
        x_count: Annotated[int, Header()] = 0,
        token: Annotated[str | None, Header(alias="X-Token")] = None,
        session: Annotated[str | None, Cookie()] = None,
        visits: Annotated[int, Cookie()] = 0,
    ) -> dict[str, Any]:
        return {
            "user_agent": user_agent,
            "x_count": x_count,
            "token": token,
            "session": session,
            "visits": visits,
            "method": request.method,
        }

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        return {"user_id": user_id}

    @app.get("/pages/{number:int}")
    async def page(number: Annotated[int, Path(le=100)]) -> dict[str, int]:
        return {"number": number}

    return app


async def get(app: App, url: str, **options: Any) -> tuple[int, Any]:
    async with open_client(app) as client:
        response = await client.get(url, **options)
    return response.status_code, response.json()


async def test_the_silent_trap_is_gone_query_values_reach_the_handler() -> None:
    app = typed_app()
    assert await get(app, "/items?limit=5") == (200, {"limit": 5, "q": None})
    assert await get(app, "/items") == (200, {"limit": 20, "q": None})
    assert await get(app, "/items?q=x") == (200, {"limit": 20, "q": "x"})


async def test_scalar_kinds_are_converted() -> None:
    ident = "0e8c3d6e-2b4a-4a8e-9e39-1a2b3c4d5e6f"
    status, body = await get(
        typed_app(),
        "/kinds",
        params={
            "ratio": "2.5",
            "flag": "true",
            "color": "blue",
            "day": "2026-12-03",
            "at": "2026-12-03T10:00:00Z",
            "id": ident,
        },
    )
    assert status == 200
    assert body == {
        "ratio": 2.5,
        "flag": True,
        "color": "blue",
        "day": "2026-12-03",
        "at": "2026-12-03T10:00:00+00:00",
        "id": ident,
    }


async def test_repeated_keys_fill_lists() -> None:
    app = typed_app()
    assert await get(app, "/tags?tag=a&tag=b&n=1&n=2") == (
        200,
        {"tag": ["a", "b"], "n": [1, 2]},
    )
    assert await get(app, "/tags?tag=a") == (200, {"tag": ["a"], "n": None})


async def test_every_failing_field_is_listed_in_one_422() -> None:
    status, body = await get(
        typed_app(),
        "/kinds?ratio=x&flag=maybe&color=green&day=3&at=now",
    )
    assert status == 422
    assert body == {
        "detail": [
            {
                "loc": ["query", "ratio"],
                "msg": "Expected `float`, got `str`",
                "type": "type_error",
            },
            {
                "loc": ["query", "flag"],
                "msg": "Expected `bool`, got `str`",
                "type": "type_error",
            },
            {
                "loc": ["query", "color"],
                "msg": "Invalid enum value 'green'",
                "type": "value_error",
            },
            {
                "loc": ["query", "day"],
                "msg": "Invalid RFC3339 encoded date",
                "type": "value_error",
            },
            {
                "loc": ["query", "at"],
                "msg": "Invalid RFC3339 encoded datetime",
                "type": "value_error",
            },
            {"loc": ["query", "id"], "msg": "Field required", "type": "missing"},
        ]
    }


async def test_list_items_are_located() -> None:
    assert await get(typed_app(), "/tags?tag=a&n=1&n=x") == (
        422,
        {
            "detail": [
                {
                    "loc": ["query", "n", 1],
                    "msg": "Expected `int`, got `str`",
                    "type": "type_error",
                }
            ]
        },
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/bounded?page=3&user-name=al&code=XYZ",
            {"page": 3, "name": "al", "code": "XYZ"},
        ),
        ("/bounded", {"page": 1, "name": None, "code": "ABC"}),
    ],
)
async def test_markers_rename_and_constrain(url: str, expected: Any) -> None:
    assert await get(typed_app(), url) == (200, expected)


async def test_constraint_errors() -> None:
    status, body = await get(typed_app(), "/bounded?page=11&user-name=a&code=abc")
    assert status == 422
    assert body == {
        "detail": [
            {
                "loc": ["query", "page"],
                "msg": "Expected `int` <= 10",
                "type": "value_error",
            },
            {
                "loc": ["query", "user-name"],
                "msg": "Expected `str` of length >= 2",
                "type": "value_error",
            },
            {
                "loc": ["query", "code"],
                "msg": "Expected `str` matching regex '^[A-Z]{3}$'",
                "type": "value_error",
            },
        ]
    }


async def test_headers_and_cookies() -> None:
    status, body = await get(
        typed_app(),
        "/headers",
        headers={
            "User-Agent": "probe/1",
            "X-Count": "3",
            "X-Token": "t",
            "Cookie": "session=abc; visits=4",
        },
    )
    assert status == 200
    assert body == {
        "user_agent": "probe/1",
        "x_count": 3,
        "token": "t",
        "session": "abc",
        "visits": 4,
        "method": "GET",
    }


async def test_header_and_cookie_errors_name_their_source() -> None:
    status, body = await get(
        typed_app(),
        "/headers",
        headers={"X-Count": "many", "Cookie": "visits=x"},
    )
    assert status == 422
    # httpx sends its own User-Agent, so that one is present.
    assert body == {
        "detail": [
            {
                "loc": ["header", "x-count"],
                "msg": "Expected `int`, got `str`",
                "type": "type_error",
            },
            {
                "loc": ["cookie", "visits"],
                "msg": "Expected `int`, got `str`",
                "type": "type_error",
            },
        ]
    }


async def test_a_required_header_is_missing() -> None:
    app = App()

    @app.get("/")
    async def need(x_key: Annotated[str, Header()]) -> str:
        return x_key

    assert await get(app, "/") == (
        422,
        {
            "detail": [
                {"loc": ["header", "x-key"], "msg": "Field required", "type": "missing"}
            ]
        },
    )


async def test_path_parameters_follow_their_annotation() -> None:
    app = typed_app()
    assert await get(app, "/users/7") == (200, {"user_id": 7})
    assert await get(app, "/users/seven") == (
        422,
        {
            "detail": [
                {
                    "loc": ["path", "user_id"],
                    "msg": "Expected `int`, got `str`",
                    "type": "type_error",
                }
            ]
        },
    )
    assert await get(app, "/pages/100") == (200, {"number": 100})
    assert await get(app, "/pages/101") == (
        422,
        {
            "detail": [
                {
                    "loc": ["path", "number"],
                    "msg": "Expected `int` <= 100",
                    "type": "value_error",
                }
            ]
        },
    )


async def test_an_exception_handler_can_override_the_422() -> None:
    app = typed_app()

    @app.exception_handler(RequestValidationError)
    async def flat(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [".".join(str(part) for part in error["loc"]) for error in exc.errors]
        return JSONResponse({"invalid": fields}, status_code=400)

    assert await get(app, "/items?limit=x") == (400, {"invalid": ["query.limit"]})


async def test_sync_and_async_handlers_without_request() -> None:
    app = App()

    @app.get("/double")
    def double(n: int) -> dict[str, int]:
        return {"n": n * 2}

    assert await get(app, "/double?n=4") == (200, {"n": 8})


async def do_nothing(request: Request, extra: int) -> str:
    return ""


async def untyped(request, limit=20):  # type: ignore[no-untyped-def]
    return {"limit": limit}


async def two_sources(x: Annotated[int, Query(), Header()]) -> str:
    return ""


async def path_marker_without_pattern(x: Annotated[int, Path()]) -> str:
    return ""


class Opaque:
    pass


async def unknown_type(x: Opaque) -> str:
    return ""


@pytest.mark.parametrize(
    ("handler", "message"),
    [
        (untyped, "parameter 'limit' of untyped of '/x' has no annotation"),
        (two_sources, "parameter 'x' of two_sources of '/x' has more than one source"),
        (path_marker_without_pattern, "the pattern has no such parameter"),
        (unknown_type, "'x' of unknown_type of '/x': Opaque cannot be read"),
    ],
)
def test_definition_time_type_errors(handler: Any, message: str) -> None:
    app = App()
    with pytest.raises(TypeError, match=message):
        app.add_route("/x", handler)


async def test_annotations_that_do_not_evaluate() -> None:
    # As with names imported only under TYPE_CHECKING: the annotations stay
    # strings. A handler taking the connection and path parameters is plain.
    async def plain(request, item_id):  # type: ignore[no-untyped-def]
        return {"item_id": item_id}

    async def typed(limit):  # type: ignore[no-untyped-def]
        return {}  # pragma: no cover

    plain.__annotations__ = {"request": "trasgi_web.Request", "item_id": "Unknown"}
    typed.__annotations__ = {"limit": "OnlyForTypeCheckers"}
    app = App()
    app.add_route("/items/{item_id:int}", plain)
    assert await get(app, "/items/3") == (200, {"item_id": 3})
    with pytest.raises(
        TypeError, match=r"annotations of .*typed of '/x' do not resolve"
    ):
        app.add_route("/x", typed)
