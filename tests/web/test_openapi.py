"""The OpenAPI document made from the route table, validated, and the docs page."""

import dataclasses
import enum
from typing import Annotated, Any

import msgspec
import pydantic
import pytest
from openapi_spec_validator import validate

from trasgi.testing import open_client
from trasgi_web import (
    App,
    Depends,
    Form,
    Header,
    OpenAPIConfig,
    Query,
    Request,
    Response,
    Router,
    UploadFile,
)


class Kind(enum.Enum):
    NOTE = "note"
    TODO = "todo"


@dataclasses.dataclass
class NoteIn:
    title: str
    kind: Kind = Kind.NOTE


class Note(msgspec.Struct):
    id: int
    title: str
    kind: Kind


class Problem(pydantic.BaseModel):
    detail: str


def api() -> App:
    app = App(
        openapi=OpenAPIConfig(
            title="Notes",
            version="2.0",
            description="Notes and todos.",
            security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        )
    )

    async def token(authorization: Annotated[str | None, Header()] = None) -> str:
        return authorization or ""

    @app.get("/notes", tags=["notes"])
    async def list_notes(
        limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
        kind: Kind | None = None,
        tag: list[str] | None = None,
    ) -> list[Note]:
        """List the notes.

        Newest first.
        """
        return []

    @app.post(
        "/notes",
        status_code=201,
        tags=["notes"],
        security=[{"bearer": []}],
        responses={409: "A note with that title exists", 400: Problem},
    )
    async def create_note(note: NoteIn, who: Annotated[str, Depends(token)]) -> Note:
        return Note(1, note.title, note.kind)

    @app.get("/notes/{note_id:int}", summary="One note", deprecated=True)
    async def get_note(request: Request, note_id: int) -> Note:
        return Note(note_id, "t", Kind.NOTE)

    @app.delete("/notes/{note_id:int}", status_code=204)
    async def delete_note(note_id: int) -> None:
        return None

    @app.get("/users/{name}")
    async def user(request: Request, name: str) -> Response:
        return Response(name)

    @app.post("/people")
    async def people(person: Problem) -> Problem:
        return person

    @app.get("/hidden", include_in_schema=False)
    async def hidden(request: Request) -> str:
        return ""

    router = Router()

    @router.get("/ping")
    async def ping(request: Request) -> str:
        return "pong"

    app.mount("/sub", router)
    return app


def test_the_document_validates_and_describes_the_routes() -> None:
    document = api().openapi()
    validate(document)
    assert document["info"] == {
        "title": "Notes",
        "version": "2.0",
        "description": "Notes and todos.",
    }
    assert sorted(document["paths"]) == [
        "/notes",
        "/notes/{note_id}",
        "/people",
        "/sub/ping",
        "/users/{name}",
    ]
    listing = document["paths"]["/notes"]["get"]
    assert listing["summary"] == "List the notes."
    assert listing["description"] == "Newest first."
    assert listing["tags"] == ["notes"]
    assert listing["parameters"] == [
        {
            "name": "limit",
            "in": "query",
            "required": False,
            "description": "Page size",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        {
            "name": "kind",
            "in": "query",
            "required": False,
            "schema": {
                "anyOf": [{"$ref": "#/components/schemas/Kind"}, {"type": "null"}]
            },
        },
        {
            "name": "tag",
            "in": "query",
            "required": False,
            "schema": {
                "anyOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "null"},
                ]
            },
        },
    ]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Note"},
    }
    assert "422" in listing["responses"]


def test_bodies_statuses_security_and_extra_responses() -> None:
    document = api().openapi()
    create = document["paths"]["/notes"]["post"]
    assert create["requestBody"] == {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/NoteIn"}}
        },
    }
    # A provider's parameters are the operation's parameters too.
    assert create["parameters"] == [
        {
            "name": "authorization",
            "in": "header",
            "required": False,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        }
    ]
    assert create["security"] == [{"bearer": []}]
    assert sorted(create["responses"]) == ["201", "400", "409", "422"]
    assert create["responses"]["409"] == {
        "description": "A note with that title exists"
    }
    assert create["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    components = document["components"]
    assert components["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer"}
    }
    assert components["schemas"]["NoteIn"]["required"] == ["title"]
    assert components["schemas"]["Kind"] == {"title": "Kind", "enum": ["note", "todo"]}
    assert components["schemas"]["Problem"]["properties"] == {
        "detail": {"title": "Detail", "type": "string"}
    }
    assert "HTTPValidationError" in components["schemas"]


def test_path_parameters_and_plain_routes() -> None:
    document = api().openapi()
    one = document["paths"]["/notes/{note_id}"]
    assert one["get"]["summary"] == "One note"
    assert one["get"]["deprecated"] is True
    assert one["get"]["parameters"] == [
        {
            "name": "note_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    ]
    assert one["delete"]["responses"] == {"204": {"description": "No Content"}}
    user = document["paths"]["/users/{name}"]["get"]
    assert user["summary"] == "User"
    assert user["responses"] == {"200": {"description": "OK"}}
    ping = document["paths"]["/sub/ping"]["get"]
    assert ping["responses"]["200"]["content"] == {
        "text/plain": {"schema": {"type": "string"}}
    }


async def test_served_at_openapi_json_with_a_docs_page() -> None:
    app = api()
    async with open_client(app) as client:
        document = await client.get("/openapi.json")
        page = await client.get("/docs")
    assert document.headers["content-type"] == "application/json"
    assert document.json() == app.openapi()
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert 'SwaggerUIBundle({url: "/openapi.json"' in page.text
    assert (
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
        in page.text
    )


async def test_urls_and_assets_are_configurable_and_pages_can_be_off() -> None:
    config = OpenAPIConfig(
        openapi_url="/api/schema.json",
        docs_url="/api/docs",
        swagger_js_url="/static/swagger.js",
        swagger_css_url="/static/swagger.css",
    )
    moved = App(openapi=config)
    off = App(openapi=None)
    async with open_client(moved) as client:
        old = await client.get("/openapi.json")
        new = await client.get("/api/schema.json")
        page = await client.get("/api/docs")
    async with open_client(off) as client:
        none = await client.get("/openapi.json")
        no_docs = await client.get("/docs")
    assert (old.status_code, new.status_code) == (404, 200)
    assert new.json()["paths"] == {}
    assert '"/api/schema.json"' in page.text
    assert 'src="/static/swagger.js"' in page.text
    assert 'href="/static/swagger.css"' in page.text
    assert (none.status_code, no_docs.status_code) == (404, 404)
    validate(off.openapi())


async def test_the_docs_page_follows_the_root_path() -> None:
    outer = App(openapi=None)
    outer.mount("/v1", api())
    async with open_client(outer) as client:
        page = await client.get("/v1/docs")
    assert 'SwaggerUIBundle({url: "/v1/openapi.json"' in page.text


@pytest.mark.parametrize(
    "name", ["hello", "sse_clock", "upload", "todo_api", "notes_api"]
)
def test_every_example_app_has_a_valid_document(name: str) -> None:
    import importlib

    module: Any = importlib.import_module(f"examples.{name}")
    validate(module.app.openapi())


@dataclasses.dataclass
class Login:
    user: str
    remember: bool = False


@dataclasses.dataclass
class Upload:
    title: str
    file: UploadFile


def test_form_bodies_declare_their_content_type() -> None:
    app = App()

    @app.post("/login")
    async def login(form: Annotated[Login, Form()]) -> str:
        return form.user

    @app.post("/upload")
    async def upload(form: Annotated[Upload, Form()]) -> str:
        return form.title

    document = app.openapi()
    validate(document)
    login_body = document["paths"]["/login"]["post"]["requestBody"]["content"]
    upload_body = document["paths"]["/upload"]["post"]["requestBody"]["content"]
    assert list(login_body) == ["application/x-www-form-urlencoded"]
    assert list(upload_body) == ["multipart/form-data"]
    upload_schema = document["components"]["schemas"]["Upload"]
    assert upload_schema["properties"]["file"] == {"type": "string", "format": "binary"}
