"""The notes site: trasgi_web's sessions, logins, CSRF, templates and websockets.

Run it with ``python -m trasgi examples.notes.app:app``; see the package's
docstring.
"""

from __future__ import annotations

import os
import pathlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from trasgi_web import (
    App,
    AuthCredentials,
    AuthenticationMiddleware,
    BaseUser,
    CSRFMiddleware,
    FormLimits,
    HTTPConnection,
    HTTPException,
    Jinja2Templates,
    RedirectResponse,
    Request,
    Requires,
    Response,
    Router,
    SessionMiddleware,
    SimpleUser,
    UploadFile,
    WebSocket,
    flash,
)

from .store import Notes, Users

templates = Jinja2Templates(directory=pathlib.Path(__file__).parent / "templates")
#: An anonymous visitor of a page goes to the login page, and comes back.
LOGGED_IN = Requires(redirect="login")
UPLOAD_LIMITS = FormLimits(max_files=1, max_fields=5)


class SessionBackend:
    """The user whose name the login put in the session."""

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.session.get("user")
        if not isinstance(name, str):
            return None
        return AuthCredentials(["authenticated"]), SimpleUser(name)


def notes_of(conn: HTTPConnection) -> Notes:
    notes: Notes = conn.state.notes
    return notes


# -- logging in and out -----------------------------------------------------

account = Router()


@account.get("/login")
async def login_form(request: Request) -> Response:
    return templates.TemplateResponse(
        request, "login.html", {"next": request.query.get("next", "")}
    )


@account.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    users: Users = request.state.users
    if not await trio.to_thread.run_sync(users.check, name, password):
        flash(request, "Wrong name or password.", "error")
        return templates.TemplateResponse(
            request, "login.html", {"next": form.get("next", "")}, status_code=400
        )
    # A new session at login: nothing from before it carries over.
    request.session.clear()
    request.session["user"] = name
    flash(request, f"Welcome, {name}.")
    return RedirectResponse(_local(str(form.get("next", ""))), 303)


@account.post("/logout", requires=LOGGED_IN)
async def logout(request: Request) -> Response:
    request.session.clear()
    flash(request, "You are logged out.")
    return RedirectResponse(request.url_for("login_form"), 303)


def _local(target: str) -> str:
    # Only a path of this site: "next" must not send the user elsewhere.
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/notes"


# -- the notes: pages, a JSON API, live updates ------------------------------

notes = Router(requires=LOGGED_IN)


@notes.get("/notes")
async def list_notes(request: Request) -> Response:
    listed = sorted(notes_of(request).notes.values(), key=lambda note: -note.id)
    return templates.TemplateResponse(request, "notes.html", {"notes": listed})


@notes.post("/notes", max_body_size=5 * 1024 * 1024)
async def create_note(request: Request) -> Response:
    form = await request.form(UPLOAD_LIMITS)
    title = str(form.get("title", "")).strip()
    if not title:
        flash(request, "A note needs a title.", "error")
        return RedirectResponse(request.url_for("list_notes"), 303)
    upload = form.get("attachment")
    attachment = None
    if isinstance(upload, UploadFile) and upload.filename:
        attachment = (upload.filename, upload.content_type, await upload.read())
    note = notes_of(request).add(
        request.user.identity, title, str(form.get("body", "")), attachment
    )
    flash(request, f"Added “{note.title}”.")
    return RedirectResponse(request.url_for("list_notes"), 303)


@notes.get("/notes/{note_id:int}")
async def show_note(request: Request, note_id: int) -> Response:
    return templates.TemplateResponse(
        request, "note.html", {"note": _find(request, note_id)}
    )


@notes.get("/notes/{note_id:int}/attachment")
async def attachment(request: Request, note_id: int) -> Response:
    note = _find(request, note_id)
    if note.attachment is None:
        raise HTTPException(404)
    filename, _, data = note.attachment
    # Served as a download in a neutral type: an uploaded page never runs
    # in this site's origin.
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": "attachment", "x-filename": filename},
    )


@notes.post("/notes/{note_id:int}/delete")
async def delete_note(request: Request, note_id: int) -> Response:
    note = _find(request, note_id)
    if note.author != request.user.identity:
        raise HTTPException(403, "Only its author may delete a note")
    notes_of(request).delete(note_id)
    flash(request, f"Deleted “{note.title}”.")
    return RedirectResponse(request.url_for("list_notes"), 303)


# The JSON API answers 401 rather than redirecting to a page.
api = Router("/api", requires=Requires())


@api.get("/notes")
async def api_notes(request: Request) -> list[dict[str, Any]]:
    return [note.as_json() for note in notes_of(request).notes.values()]


@notes.websocket("/live")
async def live(websocket: WebSocket) -> None:
    async with notes_of(websocket).listen() as events, trio.open_nursery() as nursery:
        # Listening before accepting: no change is missed once it is open.
        await websocket.accept()
        # The client sends nothing; reading notices when it leaves.
        nursery.start_soon(_until_closed, websocket, nursery.cancel_scope)
        async for event in events:
            await websocket.send_json(event)
        # Dropped for falling behind: the handler returns, closing with 1000.
        nursery.cancel_scope.cancel()


async def _until_closed(websocket: WebSocket, scope: trio.CancelScope) -> None:
    async for _ in websocket.iter_text():
        pass
    scope.cancel()


def _find(request: Request, note_id: int) -> Any:
    found = notes_of(request).notes.get(note_id)
    if found is None:
        raise HTTPException(404, "No such note")
    return found


# -- the application ---------------------------------------------------------


def create_app(secret_key: str | None = None, users: Users | None = None) -> App:
    """The site; ``secret_key`` signs the session cookies."""
    if users is None:
        users = Users()
        users.add("ada", "lovelace")
        users.add("grace", "hopper")

    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[dict[str, Any]]:
        yield {"notes": Notes(), "users": users}

    app = App(lifespan=lifespan)

    @app.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse(request.url_for("list_notes"), 303)

    app.include_router(account)
    app.include_router(notes)
    app.include_router(api)
    # The last added runs first: the session, then who the user is, then
    # the CSRF checks, which need both.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(AuthenticationMiddleware, backend=SessionBackend())
    # A key from the environment keeps sessions across restarts; a random
    # one logs everybody out at each start, which is fine for a demo.
    key = secret_key or os.environ.get("NOTES_SECRET_KEY") or secrets.token_hex(32)
    app.add_middleware(SessionMiddleware, secret_key=key)
    return app


app = create_app()
