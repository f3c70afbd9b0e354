"""Typed bodies: JSON decoded into models, forms, returned models, 400 vs 422."""

import dataclasses
from typing import Annotated, Any, TypedDict

import attrs
import msgspec
import pydantic
import pytest

from trasgi.testing import open_client
from trasgi_web import App, Body, Form, Response, UploadFile


@dataclasses.dataclass
class NoteIn:
    title: str
    body: str = ""
    stars: Annotated[int, msgspec.Meta(ge=0, le=5)] = 0


@attrs.define
class Point:
    x: int
    y: int


class Tagged(TypedDict):
    name: str
    tags: list[str]


class Item(msgspec.Struct):
    name: str
    price: float
    count: int = 1


class User(pydantic.BaseModel):
    name: str
    age: int = pydantic.Field(ge=0)


@dataclasses.dataclass
class Login:
    user: str
    remember: bool = False
    roles: list[str] = dataclasses.field(default_factory=list)


def body_app() -> App:
    app = App()

    @app.post("/notes", status_code=201)
    async def create(note: NoteIn, dry_run: bool = False) -> NoteIn:
        return note

    @app.post("/points")
    async def points(point: Point) -> dict[str, int]:
        return {"sum": point.x + point.y}

    @app.post("/tagged")
    async def tagged(data: Tagged) -> Tagged:
        return data

    @app.post("/items")
    async def items(item: Item) -> list[Item]:
        return [item, Item(item.name.upper(), item.price * 2)]

    @app.post("/users")
    async def users(user: User) -> User:
        return user

    @app.post("/many")
    async def many(items: Annotated[list[Item], Body()]) -> dict[str, int]:
        return {"count": sum(item.count for item in items)}

    @app.post("/optional")
    async def optional(point: Point | None = None) -> dict[str, Any]:
        return {"point": None if point is None else [point.x, point.y]}

    @app.post("/login")
    async def login(form: Annotated[Login, Form()]) -> Login:
        return form

    @app.post("/small", max_body_size=40)
    async def small(item: Item) -> Item:
        return item

    @app.delete("/notes/{note_id:int}", status_code=204)
    async def delete(note_id: int) -> None:
        return None

    return app


async def post(url: str, **options: Any) -> tuple[int, Any]:
    async with open_client(body_app()) as client:
        response = await client.post(url, **options)
    if response.headers.get("content-type") == "application/json":
        return response.status_code, response.json()
    return response.status_code, response.text


async def test_a_dataclass_body_is_decoded_and_the_model_returned() -> None:
    assert await post("/notes", json={"title": "t", "stars": 3}) == (
        201,
        {"title": "t", "body": "", "stars": 3},
    )


@pytest.mark.parametrize(
    ("url", "payload", "expected"),
    [
        ("/points", {"x": 1, "y": 2}, {"sum": 3}),
        ("/tagged", {"name": "n", "tags": ["a"]}, {"name": "n", "tags": ["a"]}),
        (
            "/items",
            {"name": "pen", "price": 1.5},
            [
                {"name": "pen", "price": 1.5, "count": 1},
                {"name": "PEN", "price": 3.0, "count": 1},
            ],
        ),
        ("/users", {"name": "ann", "age": 30}, {"name": "ann", "age": 30}),
        (
            "/many",
            [{"name": "a", "price": 1, "count": 2}, {"name": "b", "price": 2}],
            {"count": 3},
        ),
        ("/optional", {"x": 1, "y": 2}, {"point": [1, 2]}),
    ],
)
async def test_each_model_kind(url: str, payload: Any, expected: Any) -> None:
    assert await post(url, json=payload) == (200, expected)


async def test_an_optional_body_may_be_absent() -> None:
    assert await post("/optional") == (200, {"point": None})


async def test_a_required_body_that_is_absent() -> None:
    assert await post("/points") == (
        422,
        {"detail": [{"loc": ["body"], "msg": "Field required", "type": "missing"}]},
    )


async def test_malformed_json_stays_400() -> None:
    status, text = await post("/points", content=b"{")
    assert (status, text) == (400, "Invalid JSON: Input data was truncated")


async def test_every_failing_body_field_is_listed() -> None:
    assert await post("/notes", json={"body": 5, "stars": 9}) == (
        422,
        {
            "detail": [
                {"loc": ["body", "title"], "msg": "Field required", "type": "missing"},
                {
                    "loc": ["body", "body"],
                    "msg": "Expected `str`, got `int`",
                    "type": "type_error",
                },
                {
                    "loc": ["body", "stars"],
                    "msg": "Expected `int` <= 5",
                    "type": "value_error",
                },
            ]
        },
    )


async def test_query_and_body_errors_come_together() -> None:
    assert await post("/notes?dry_run=perhaps", json={}) == (
        422,
        {
            "detail": [
                {
                    "loc": ["query", "dry_run"],
                    "msg": "Expected `bool`, got `str`",
                    "type": "type_error",
                },
                {"loc": ["body", "title"], "msg": "Field required", "type": "missing"},
            ]
        },
    )


async def test_nested_errors_are_located() -> None:
    assert await post(
        "/many", json=[{"name": "a", "price": 1}, {"name": 2, "price": 1}]
    ) == (
        422,
        {
            "detail": [
                {
                    "loc": ["body", 1, "name"],
                    "msg": "Expected `str`, got `int`",
                    "type": "type_error",
                }
            ]
        },
    )


async def test_a_wrong_top_level_type() -> None:
    assert await post("/points", json=[1, 2]) == (
        422,
        {
            "detail": [
                {
                    "loc": ["body"],
                    "msg": "Expected `object`, got `array`",
                    "type": "type_error",
                }
            ]
        },
    )


async def test_pydantic_errors_keep_pydantic_types() -> None:
    assert await post("/users", json={"name": "ann", "age": -1}) == (
        422,
        {
            "detail": [
                {
                    "loc": ["body", "age"],
                    "msg": "Input should be greater than or equal to 0",
                    "type": "greater_than_equal",
                }
            ]
        },
    )
    status, text = await post("/users", content=b"{nope")
    assert status == 400
    assert text.startswith("Invalid JSON: ")


async def test_form_models() -> None:
    assert await post(
        "/login", data={"user": "ann", "remember": "true", "roles": ["a", "b"]}
    ) == (
        200,
        {"user": "ann", "remember": True, "roles": ["a", "b"]},
    )
    assert await post("/login", data={"remember": "x"}) == (
        422,
        {
            "detail": [
                {"loc": ["body", "user"], "msg": "Field required", "type": "missing"},
                {
                    "loc": ["body", "remember"],
                    "msg": "Expected `bool`, got `str`",
                    "type": "type_error",
                },
            ]
        },
    )


async def test_the_route_body_limit_applies_to_typed_bodies() -> None:
    status, text = await post("/small", json={"name": "x" * 50, "price": 1})
    assert (status, text) == (413, "Request body exceeds 40 bytes")
    assert await post("/small", json={"name": "x", "price": 1}) == (
        200,
        {"name": "x", "price": 1.0, "count": 1},
    )


async def test_none_with_a_declared_status_is_an_empty_answer() -> None:
    async with open_client(body_app()) as client:
        response = await client.delete("/notes/3")
    assert (response.status_code, response.content) == (204, b"")


async def test_untyped_handlers_may_return_models_too() -> None:
    app = App()

    @app.get("/")
    async def plain() -> Point:
        return Point(1, 2)

    @app.get("/response")
    async def response() -> Response:
        return Response("as is", media_type="text/plain")

    async with open_client(app) as client:
        model = await client.get("/")
        as_is = await client.get("/response")
    assert (model.headers["content-type"], model.json()) == (
        "application/json",
        {"x": 1, "y": 2},
    )
    assert as_is.text == "as is"


@dataclasses.dataclass
class Upload:
    name: str
    file: UploadFile
    more: list[UploadFile] = dataclasses.field(default_factory=list)


async def test_form_models_take_uploaded_files() -> None:
    app = App()

    @app.post("/upload")
    async def upload(form: Annotated[Upload, Form()]) -> dict[str, Any]:
        return {
            "name": form.name,
            "file": [form.file.filename, (await form.file.read()).decode()],
            "more": [file.filename for file in form.more],
        }

    async with open_client(app) as client:
        sent = await client.post(
            "/upload",
            data={"name": "n"},
            files=[
                ("file", ("a.txt", b"hello")),
                ("more", ("b", b"1")),
                ("more", ("c", b"2")),
            ],
        )
        text_for_a_file = await client.post(
            "/upload", data={"name": "n", "file": "text"}
        )
    assert sent.json() == {"name": "n", "file": ["a.txt", "hello"], "more": ["b", "c"]}
    assert text_for_a_file.json() == {
        "detail": [
            {
                "loc": ["body", "file"],
                "msg": "Expected `UploadFile`, got `str`",
                "type": "type_error",
            }
        ]
    }


def test_a_form_reads_a_model() -> None:
    app = App()

    async def bare(file: Annotated[UploadFile, Form()]) -> str:
        return ""

    with pytest.raises(TypeError, match="Form\\(\\) reads a model"):
        app.add_route("/x", bare, ["POST"])


def test_two_bodies_are_refused() -> None:
    app = App()

    async def twice(a: Point, b: Item) -> str:
        return ""

    with pytest.raises(TypeError, match="reads the body twice"):
        app.add_route("/x", twice, ["POST"])


def test_a_websocket_has_no_body() -> None:
    app = App()

    async def ws(websocket: Any, point: Point) -> None: ...

    with pytest.raises(TypeError, match="which a websocket does not have"):
        app.add_websocket_route("/ws", ws)
