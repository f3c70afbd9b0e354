"""A notes API with typed parameters, bodies, dependencies and OpenAPI.

Run it with ``python -m trasgi examples.notes_api:app``, then open
http://localhost:8000/docs, or::

    curl -X POST localhost:8000/notes -H 'Authorization: Bearer secret' \\
        -H 'Content-Type: application/json' -d '{"title": "trio", "tags": ["py"]}'
    curl 'localhost:8000/notes?tag=py&limit=5'
    curl localhost:8000/notes/1
    curl 'localhost:8000/notes?limit=0'      # 422, with where and why

Every handler parameter is typed: query values, a header, the JSON body, and
dependencies. The store lives in the lifespan state and reaches handlers
with its type (``FromState``); a yielding dependency wraps each writing
request in a transaction, committed or rolled back after the handler.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

import msgspec

from trasgi_web import (
    App,
    Depends,
    FromState,
    Header,
    HTTPException,
    OpenAPIConfig,
    Query,
)


class NoteIn(msgspec.Struct):
    """What a client sends to create a note."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    body: str = ""
    tags: list[str] = []


class Note(msgspec.Struct):
    """A stored note."""

    id: int
    title: str
    body: str
    tags: list[str]
    created: datetime


class Store:
    """Notes in memory, numbered from 1; writes happen in transactions."""

    def __init__(self) -> None:
        self.notes: dict[int, Note] = {}
        self.pending: list[Note] = []
        self.next_id = 1

    def add(self, note: NoteIn) -> Note:
        created = Note(
            self.next_id, note.title, note.body, note.tags, datetime.now(timezone.utc)
        )
        self.next_id += 1
        self.pending.append(created)
        return created

    def commit(self) -> None:
        self.notes.update((note.id, note) for note in self.pending)
        self.pending.clear()

    def rollback(self) -> None:
        self.next_id -= len(self.pending)
        self.pending.clear()


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[Mapping[str, Any]]:
    yield {"store": Store()}


app = App(
    lifespan=lifespan,
    openapi=OpenAPIConfig(
        title="Notes",
        version="1.0",
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
    ),
)

StoreDep = Annotated[Store, FromState("store")]


async def transaction(store: StoreDep) -> AsyncIterator[Store]:
    """The store, committed after the handler succeeds, rolled back otherwise."""
    try:
        yield store
    except Exception:
        store.rollback()
        raise
    store.commit()


async def author(authorization: Annotated[str | None, Header()] = None) -> str:
    """The caller, from a bearer token; 401 without a valid one."""
    if authorization != "Bearer secret":
        raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
    return "writer"


@app.get("/notes", tags=["notes"])
async def list_notes(
    store: StoreDep,
    tag: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[Note]:
    """List notes, newest first.

    Filter by one tag with ``?tag=``.
    """
    notes = sorted(store.notes.values(), key=lambda note: note.id, reverse=True)
    if tag is not None:
        notes = [note for note in notes if tag in note.tags]
    return notes[:limit]


@app.get("/notes/{note_id:int}", tags=["notes"], responses={404: "No such note"})
async def get_note(note_id: int, store: StoreDep) -> Note:
    """One note."""
    try:
        return store.notes[note_id]
    except KeyError:
        raise HTTPException(404, f"Note {note_id} not found") from None


@app.post(
    "/notes",
    status_code=201,
    tags=["notes"],
    security=[{"bearer": []}],
    responses={401: "Not authenticated"},
)
async def create_note(
    note: NoteIn,
    store: Annotated[Store, Depends(transaction)],
    user: Annotated[str, Depends(author)],
) -> Note:
    """Create a note."""
    if any(known.title == note.title for known in store.notes.values()):
        raise HTTPException(409, f"A note titled {note.title!r} exists")
    return store.add(note)


@app.get("/export", tags=["notes"])
def export(store: StoreDep) -> str:
    """Every note as Markdown: a plain def, so it runs in a worker thread."""
    return "\n".join(f"- {note.title}" for note in store.notes.values())
