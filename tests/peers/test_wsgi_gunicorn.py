"""A WSGI application under gunicorn's trasgi worker: --interface applies there too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_gunicorn import MAIN, WAIT, launch, running

pytestmark = pytest.mark.process


def test_a_flask_app_is_served_by_the_trasgi_worker(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1", app="examples.wsgi_flask:app") as server:
        body = json.loads(server.get("/"))
    assert body == {"hello": "world", "scheme": "http", "client": "127.0.0.1"}


def test_an_ambiguous_app_stops_gunicorn_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "vague_app.py").write_text("def app(*args):\n    pass\n")
    process = launch(
        tmp_path,
        MAIN,
        ("-w", "1", "--chdir", str(tmp_path)),
        "vague_app:app",
        {},
    )
    try:
        status = process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (tmp_path / "gunicorn.err").read_text(errors="replace")
    assert status == 3  # gunicorn's "worker failed to boot"
    assert (
        "trasgi worker: cannot load the application: cannot tell which interface "
        "app(*args) speaks (it fits both ASGI 3 and WSGI); pass --interface asgi3, "
        "asgi2 or wsgi"
    ) in log
    assert "Traceback" not in log
