"""examples/notes_api.py (typed parameters, dependencies, OpenAPI), in memory."""

from examples import notes_api
from trasgi.testing import open_client

AUTH = {"Authorization": "Bearer secret"}


async def test_create_list_get_and_export() -> None:
    async with open_client(notes_api.app) as client:
        first = await client.post(
            "/notes", json={"title": "trio", "tags": ["py"]}, headers=AUTH
        )
        second = await client.post("/notes", json={"title": "h11"}, headers=AUTH)
        tagged = await client.get("/notes", params={"tag": "py"})
        limited = await client.get("/notes?limit=1")
        one = await client.get("/notes/1")
        export = await client.get("/export")
    assert first.status_code == 201
    assert {k: v for k, v in first.json().items() if k != "created"} == {
        "id": 1,
        "title": "trio",
        "body": "",
        "tags": ["py"],
    }
    assert second.json()["id"] == 2
    assert [note["id"] for note in tagged.json()] == [1]
    assert [note["id"] for note in limited.json()] == [2]
    assert one.json()["title"] == "trio"
    assert export.text == "- trio\n- h11"


async def test_errors_auth_validation_and_rollback() -> None:
    async with open_client(notes_api.app) as client:
        anonymous = await client.post("/notes", json={"title": "x"})
        invalid = await client.post("/notes?", json={"title": ""}, headers=AUTH)
        bad_limit = await client.get("/notes?limit=0")
        created = await client.post("/notes", json={"title": "x"}, headers=AUTH)
        conflict = await client.post("/notes", json={"title": "x"}, headers=AUTH)
        after = await client.post("/notes", json={"title": "y"}, headers=AUTH)
        missing = await client.get("/notes/99")
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (
        401,
        "Bearer",
    )
    assert invalid.status_code == 422
    assert invalid.json() == {
        "detail": [
            {
                "loc": ["body", "title"],
                "msg": "Expected `str` of length >= 1",
                "type": "value_error",
            }
        ]
    }
    assert bad_limit.json() == {
        "detail": [
            {
                "loc": ["query", "limit"],
                "msg": "Expected `int` >= 1",
                "type": "value_error",
            }
        ]
    }
    assert created.json()["id"] == 1
    assert conflict.status_code == 409
    assert after.json()["id"] == 2
    assert (missing.status_code, missing.text) == (404, "Note 99 not found")
