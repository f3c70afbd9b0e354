"""The trasgi_web examples, through the real server in memory."""

import hashlib
from typing import Any

import pytest
import trio

from examples import hello, sse_clock, todo_api, upload
from trasgi.testing import open_client


async def test_hello_answers_everywhere_in_plain_text() -> None:
    async with open_client(hello.app) as client:
        root = await client.get("/")
        other = await client.post("/any/path")
    assert (root.status_code, root.text) == (200, "Hello, world!")
    assert root.headers["content-type"] == "text/plain; charset=utf-8"
    assert other.text == "Hello, world!"


@pytest.fixture
def todo_app() -> Any:
    todo_api.app.state.store = todo_api.TodoStore()
    return todo_api.app


async def test_todo_crud(todo_app: Any) -> None:
    async with open_client(todo_app) as client:
        created = await client.post("/todos", json={"title": " write docs "})
        second = await client.post("/todos", json={"title": "test", "done": True})
        listed = await client.get("/todos")
        done = await client.get("/todos?done=true")
        patched = await client.patch("/todos/1", json={"done": True})
        fetched = await client.get("/todos/1")
        deleted = await client.delete("/todos/1")
        gone = await client.get("/todos/1")
    assert created.status_code == 201
    assert created.headers["location"] == "/todos/1"
    assert created.json() == {"id": 1, "title": "write docs", "done": False}
    assert second.json()["id"] == 2
    assert [todo["id"] for todo in listed.json()] == [1, 2]
    assert [todo["id"] for todo in done.json()] == [2]
    assert patched.json()["done"] is True
    assert fetched.json() == {"id": 1, "title": "write docs", "done": True}
    assert deleted.status_code == 204
    assert (gone.status_code, gone.text) == (404, "Todo 1 not found")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("POST", "/todos", b"{", 400, "Invalid JSON"),
        (
            "POST",
            "/todos",
            b"[]",
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
        ),
        (
            "POST",
            "/todos",
            b'{"title": "  "}',
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "title"],
                        "msg": "Expected `str` matching regex '[^ ]'",
                        "type": "value_error",
                    }
                ]
            },
        ),
        (
            "POST",
            "/todos",
            b'{"title": "x", "done": "yes", "color": 1}',
            422,
            {
                "detail": [
                    {
                        "loc": ["body", "done"],
                        "msg": "Expected `bool`, got `str`",
                        "type": "type_error",
                    },
                    {
                        "loc": ["body", "color"],
                        "msg": "Unknown field",
                        "type": "value_error",
                    },
                ]
            },
        ),
        (
            "GET",
            "/todos?done=maybe",
            b"",
            422,
            {
                "detail": [
                    {
                        "loc": ["query", "done"],
                        "msg": "Expected `bool | null`, got `str`",
                        "type": "type_error",
                    }
                ]
            },
        ),
        ("PATCH", "/todos/99", b"{}", 404, "Todo 99 not found"),
        ("GET", "/todos/abc", b"", 404, "Not Found"),
        ("PUT", "/todos/1", b"{}", 405, "Method Not Allowed"),
    ],
)
async def test_todo_errors(
    todo_app: Any, method: str, path: str, body: bytes, status: int, expected: Any
) -> None:
    async with open_client(todo_app) as client:
        response = await client.request(method, path, content=body)
    assert response.status_code == status
    if isinstance(expected, dict):
        assert response.json() == expected
    else:
        assert response.text.startswith(expected)
    if status == 405:
        assert response.headers["allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH"


async def test_sse_clock(autojump_clock: trio.testing.MockClock) -> None:
    async with open_client(sse_clock.app) as client:
        page = await client.get("/")
        response = await client.get("/clock?count=3")
    assert 'new EventSource("clock")' in page.text
    events = response.text.strip().split("\n\n")
    assert len(events) == 3
    assert events[2].startswith('event: tick\nid: 2\ndata: {"now":')


async def test_upload() -> None:
    big = b"z" * (2 * 1024 * 1024)
    async with open_client(upload.app) as client:
        page = await client.get("/")
        response = await client.post(
            "/upload",
            data={"note": "two files"},
            files=[("files", ("a.txt", b"small")), ("files", ("big.bin", big))],
        )
        too_big = await client.post(
            "/upload", files={"files": ("huge", b"x" * (21 * 1024 * 1024))}
        )
    assert 'enctype="multipart/form-data"' in page.text
    assert response.json() == {
        "note": "two files",
        "files": [
            {
                "filename": "a.txt",
                "size": 5,
                "sha256": hashlib.sha256(b"small").hexdigest(),
                "on_disk": False,
            },
            {
                "filename": "big.bin",
                "size": len(big),
                "sha256": hashlib.sha256(big).hexdigest(),
                "on_disk": True,
            },
        ],
    }
    assert too_big.status_code == 413
