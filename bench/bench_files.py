"""The applications of the ``file`` scenario: one 100 MiB file, three ways.

``pathsend`` hands the file to the server by path (ASGI path send: trasgi
answers with ``os.sendfile`` on a plain socket); ``chunks`` reads it and
sends 64 KiB body messages, as an application does without the extension;
``starlette_file`` is Starlette's ``FileResponse``, served by the peers.
Every server process finds (or first writes) the same file under
``bench/.data``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

FILE_BYTES = 100 * 2**20
CHUNK = 64 * 1024
DATA = Path(__file__).resolve().parent / ".data" / "file100.bin"


def data_file() -> Path:
    """The 100 MiB file, written once (random bytes: nothing compresses it)."""
    if not DATA.exists() or DATA.stat().st_size != FILE_BYTES:
        DATA.parent.mkdir(exist_ok=True)
        partial = DATA.with_suffix(f".{os.getpid()}")
        with partial.open("wb") as out:
            for _ in range(FILE_BYTES // 2**20):
                out.write(os.urandom(2**20))
        partial.replace(DATA)
    return DATA


PATH = str(data_file())
_HEADERS = [
    (b"content-type", b"application/octet-stream"),
    (b"content-length", str(FILE_BYTES).encode()),
]


async def pathsend(scope: Any, receive: Any, send: Any) -> None:
    """The whole file by ASGI path send."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.pathsend", "path": PATH})


async def chunks(scope: Any, receive: Any, send: Any) -> None:
    """The whole file read and sent in 64 KiB body messages."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    with open(PATH, "rb") as file:  # noqa: ASYNC230 (a page-cached file)
        while data := file.read(CHUNK):
            await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body"})


def starlette_file() -> Any:
    """Starlette's FileResponse for every path."""
    applications = importlib.import_module("starlette.applications")
    responses = importlib.import_module("starlette.responses")
    routing = importlib.import_module("starlette.routing")

    async def file_route(request: Any) -> Any:
        return responses.FileResponse(PATH)

    return applications.Starlette(routes=[routing.Route("/", file_route)])
