"""The notes example: logins, CSRF-protected forms, uploads, live updates."""

import json
import re

import httpx
import pytest

from examples.notes.app import create_app
from examples.notes.store import BACKLOG, Notes, Users
from trasgi.testing import TestClient, WebSocketDenied, open_client

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(page: httpx.Response) -> str:
    found = _TOKEN.search(page.text)
    assert found is not None, page.text
    return found.group(1)


@pytest.fixture
def users() -> Users:
    users = Users()
    users.add("ada", "lovelace")
    users.add("grace", "hopper")
    return users


async def log_in(client: TestClient, name: str, password: str) -> httpx.Response:
    token = token_of(await client.get("/login"))
    return await client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": ""},
    )


async def test_pages_need_a_login_and_come_back_after_it(users: Users) -> None:
    async with open_client(create_app("key", users)) as client:
        home = await client.get("/")
        assert home.headers["location"] == "/notes"
        anonymous = await client.get("/notes")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Fnotes"
        login_page = await client.get(anonymous.headers["location"])
        assert 'name="next" value="/notes"' in login_page.text
        response = await client.post(
            "/login",
            data={
                "name": "ada",
                "password": "lovelace",
                "next": "/notes",
                "csrf_token": token_of(login_page),
            },
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/notes"
        page = await client.get("/notes")
        assert "Welcome, ada." in page.text
        assert "No notes yet." in page.text
        # A flash message shows once.
        assert "Welcome" not in (await client.get("/notes")).text


async def test_a_wrong_password_and_a_missing_token_are_refused(users: Users) -> None:
    async with open_client(create_app("key", users)) as client:
        wrong = await log_in(client, "ada", "babbage")
        assert wrong.status_code == 400
        assert "Wrong name or password." in wrong.text
        unknown = await log_in(client, "nobody", "x")
        assert unknown.status_code == 400
        forged = await client.post(
            "/login", data={"name": "ada", "password": "lovelace"}
        )
        assert forged.status_code == 403
        assert (await client.get("/notes")).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\x"])
async def test_next_never_leaves_the_site(users: Users, target: str) -> None:
    async with open_client(create_app("key", users)) as client:
        token = token_of(await client.get("/login"))
        response = await client.post(
            "/login",
            data={
                "name": "ada",
                "password": "lovelace",
                "next": target,
                "csrf_token": token,
            },
        )
    assert response.headers["location"] == "/notes"


async def test_notes_with_uploads_and_live_updates(users: Users) -> None:
    async with open_client(create_app("key", users)) as client:
        await log_in(client, "ada", "lovelace")
        token = token_of(await client.get("/notes"))
        async with client.websocket_connect("/live") as live:
            created = await client.post(
                "/notes",
                data={
                    "title": "<script>x</script>",
                    "body": "milk",
                    "csrf_token": token,
                },
                files={"attachment": ("list.txt", b"eggs\n", "text/plain")},
            )
            assert created.status_code == 303
            event = json.loads(await live.receive_text())
            assert event == {
                "event": "created",
                "note": {
                    "id": 1,
                    "author": "ada",
                    "title": "<script>x</script>",
                    "body": "milk",
                    "attachment": "list.txt",
                },
            }
            listing = await client.get("/notes")
            assert "&lt;script&gt;x&lt;/script&gt;" in listing.text
            assert "<script>x</script>" not in listing.text
            assert "Added" in listing.text
            note = await client.get("/notes/1")
            assert "list.txt" in note.text
            download = await client.get("/notes/1/attachment")
            assert download.content == b"eggs\n"
            assert download.headers["content-disposition"] == "attachment"
            assert download.headers["content-type"] == "application/octet-stream"
            api = await client.get("/api/notes")
            assert api.json()[0]["title"] == "<script>x</script>"
            deleted = await client.post("/notes/1/delete", data={"csrf_token": token})
            assert deleted.status_code == 303
            assert json.loads(await live.receive_text()) == {
                "event": "deleted",
                "id": 1,
            }
        assert (await client.get("/notes/1")).status_code == 404


async def test_titles_are_required_and_attachments_optional(users: Users) -> None:
    async with open_client(create_app("key", users)) as client:
        await log_in(client, "ada", "lovelace")
        token = token_of(await client.get("/notes"))
        empty = await client.post("/notes", data={"title": " ", "csrf_token": token})
        assert (
            "A note needs a title."
            in (await client.get(empty.headers["location"])).text
        )
        await client.post("/notes", data={"title": "plain", "csrf_token": token})
        assert (await client.get("/notes/1/attachment")).status_code == 404
        assert (await client.get("/notes/2")).status_code == 404


async def test_only_the_author_deletes_and_logout_ends_the_session(
    users: Users,
) -> None:
    async with open_client(create_app("key", users)) as client:
        # Two browsers on one server: each its own cookie jar.
        await log_in(client, "grace", "hopper")
        grace_token = token_of(await client.get("/notes"))
        grace_jar = httpx.Cookies(client.cookies)
        client.cookies = httpx.Cookies()
        await log_in(client, "ada", "lovelace")
        token = token_of(await client.get("/notes"))
        ada_jar = httpx.Cookies(client.cookies)
        await client.post("/notes", data={"title": "mine", "csrf_token": token})
        # Another user's token does not work in this session.
        stolen = await client.post("/notes/1/delete", data={"csrf_token": grace_token})
        assert stolen.status_code == 403
        client.cookies = grace_jar
        refused = await client.post("/notes/1/delete", data={"csrf_token": grace_token})
        assert (refused.status_code, refused.text) == (
            403,
            "Only its author may delete a note",
        )
        client.cookies = ada_jar
        out = await client.post("/logout", data={"csrf_token": token})
        assert out.headers["location"] == "/login"
        assert (await client.get("/notes")).status_code == 303
        assert (await client.get("/api/notes")).status_code == 401


async def test_the_live_feed_needs_a_login(users: Users) -> None:
    async with open_client(create_app("key", users)) as client:
        with pytest.raises(WebSocketDenied) as denied:
            async with client.websocket_connect("/live"):
                pass  # pragma: no cover
    assert denied.value.status_code == 401


async def test_a_listener_that_falls_behind_is_dropped() -> None:
    notes = Notes()
    async with notes.listen() as slow:
        for number in range(BACKLOG + 1):
            notes.add("ada", f"n{number}", "")
        assert not notes.listeners
        received = [event async for event in slow]
    assert len(received) == BACKLOG
