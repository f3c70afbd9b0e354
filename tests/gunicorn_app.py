"""The application ``tests/peers/test_gunicorn.py`` runs under a real gunicorn.

Every response is the worker's process id, so a test can tell the workers
apart. The lifespan events are appended to the file named by
``GUNICORN_APP_EVENTS`` as ``startup PID`` and ``shutdown PID`` lines; with
``GUNICORN_APP_FAIL_STARTUP`` set, the startup fails.

Paths: ``/`` answers at once; ``/slow?SECONDS`` records ``slow PID`` and
awaits that long (the event loop stays free); ``/block?SECONDS`` sleeps that
long without awaiting (the event loop is stuck, as with CPU-bound work).

The module is also a gunicorn configuration (``-c python:tests.gunicorn_app``):
its ``worker_int`` and ``worker_abort`` hooks record ``worker_int PID`` and
``worker_abort PID``; gunicorn ignores the other names.
"""

from __future__ import annotations

import os
import time
from typing import Any

import trio


def _record(event: str) -> None:
    with open(os.environ["GUNICORN_APP_EVENTS"], "a") as events:
        events.write(f"{event} {os.getpid()}\n")


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _record("startup")
            if os.environ.get("GUNICORN_APP_FAIL_STARTUP"):
                await send({"type": "lifespan.startup.failed", "message": "no db"})
                return
            await send({"type": "lifespan.startup.complete"})
        else:
            _record("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    seconds = float(scope["query_string"] or 0)
    if scope["path"] == "/slow":
        _record("slow")
        await trio.sleep(seconds)
    elif scope["path"] == "/block":
        time.sleep(seconds)  # noqa: ASYNC251 - blocking the loop is the point
    body = str(os.getpid()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def worker_int(worker: Any) -> None:
    _record("worker_int")


def worker_abort(worker: Any) -> None:
    _record("worker_abort")
