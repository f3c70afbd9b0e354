"""--log-level trace, YAML without PyYAML, and trasgi_web's lines in trasgi's format."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from trasgi import Config
from trasgi._observe.logs import TRACE, LogConfigError, apply_log_config, tracing
from trasgi._observe.trace import describe_message, trace_asgi
from trasgi.testing import open_client

from ..helpers import echo_app
from .test_log_config import run_requests

ROOT = Path(__file__).resolve().parents[2]
#: trasgi's own line: "2026-01-01 12:00:00,000 LEVEL   message".
LINE = rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "


async def serve_and_get(app_dir: Path, app: str, paths: list[str], *args: str) -> bytes:
    """Run the CLI, GET each path, stop it with SIGTERM; return its stderr."""
    command = [sys.executable, "-m", "trasgi", app, "--port", "0"]
    command += ["--app-dir", str(app_dir), *args]
    stderr, _, _ = await run_requests(command, paths)
    return stderr


# -- trace -----------------------------------------------------------------------


def test_trace_is_a_level_below_debug() -> None:
    assert TRACE < logging.DEBUG
    assert logging.getLevelName(TRACE) == "TRACE"
    assert Config(log_level="trace").log_level == "trace"
    # The server asks once, at startup; the test runner's level is not trace.
    assert not tracing()


def test_a_trace_line_shows_sizes_not_payloads() -> None:
    shown = describe_message(
        {"type": "http.response.body", "body": b"secret=1", "more_body": True}
    )
    assert (
        shown
        == "{'type': 'http.response.body', 'body': '<8 bytes>', 'more_body': True}"
    )
    assert "<5 chars>" in describe_message({"type": "websocket.send", "text": "hello"})


async def test_every_message_of_an_exchange_is_traced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(TRACE, logger="trasgi.error")
    async with open_client(trace_asgi(echo_app)) as client:
        response = await client.post("/echo", content=b"abc")
    assert response.content == b"abc"
    traced = [r.getMessage() for r in caplog.records if r.levelno == TRACE]
    (called,) = [line for line in traced if "called: {'type': 'http'" in line]
    number = called.split("]")[0] + "]"  # "ASGI [2]": this exchange's lines
    assert "'method': 'POST'" in called
    assert "'path': '/echo'" in called
    assert [line for line in traced if line.startswith(number + " ")] == [
        called,
        f"{number} receive {{'type': 'http.request', 'body': '<3 bytes>', "
        "'more_body': False}",
        f"{number} send {{'type': 'http.response.start', 'status': 200, "
        "'headers': [(b'content-length', b'3'), (b'x-path', b'/echo')]}",
        f"{number} send {{'type': 'http.response.body', 'body': '<3 bytes>'}}",
        f"{number} returned",
    ]


async def test_an_exception_is_traced_and_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(TRACE, logger="trasgi.error")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise KeyError("boom")

    async with open_client(trace_asgi(app)) as client:
        assert (await client.get("/")).status_code == 500
    traced = [r.getMessage() for r in caplog.records if r.levelno == TRACE]
    assert any(line.endswith("] raised KeyError") for line in traced)


@pytest.mark.process
async def test_the_command_line_traces_connections_and_messages(tmp_path: Path) -> None:
    seen = await serve_and_get(
        ROOT, "examples.hello:app", ["/"], "--log-level", "trace"
    )
    assert re.search(LINE + rb"TRACE   connection from 127\.0\.0\.1:\d+ opened", seen)
    assert re.search(LINE + rb"TRACE   ASGI \[\d+\] called: \{'type': 'http'", seen)
    assert re.search(
        LINE
        + rb"TRACE   ASGI \[\d+\] send \{'type': 'http.response.body', 'body': '<13 bytes>'",
        seen,
    )
    assert re.search(LINE + rb"TRACE   connection from 127\.0\.0\.1:\d+ closed", seen)


@pytest.mark.process
async def test_info_traces_nothing(tmp_path: Path) -> None:
    seen = await serve_and_get(ROOT, "examples.hello:app", ["/"])
    assert b"TRACE" not in seen
    assert b"ASGI [" not in seen


# -- YAML without PyYAML ---------------------------------------------------------


def test_yaml_without_pyyaml_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "logging.yaml"
    path.write_text("version: 1\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml then fails
    with pytest.raises(LogConfigError) as raised:
        apply_log_config(str(path))
    assert str(raised.value) == (
        f"{path}: YAML needs PyYAML: pip install -e '.[yaml]' in a checkout of trasgi"
    )


@pytest.mark.process
def test_yaml_without_pyyaml_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "logging.yml"
    path.write_text("version: 1\n")
    script = (
        "import sys; sys.modules['yaml'] = None; "
        "from trasgi._ops.cli import main; "
        f"sys.exit(main(['examples.hello:app', '--log-config', {str(path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"trasgi: error: --log-config {path}: YAML needs PyYAML: "
            "pip install -e '.[yaml]' in a checkout of trasgi"
        )
    )
    assert "Traceback" not in result.stderr


# -- trasgi_web's lines ----------------------------------------------------------

FAILING_APP = """
from trasgi_web import App

app = App()


@app.get("/boom")
async def boom() -> str:
    raise RuntimeError("kaput")
"""


@pytest.mark.process
async def test_trasgi_web_lines_have_trasgis_time_and_level(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(FAILING_APP)
    seen = await serve_and_get(tmp_path, "failing:app", ["/boom"])
    assert re.search(
        LINE + rb"ERROR   Exception in handler for GET /boom\n"
        rb"Traceback \(most recent call last\):",
        seen,
    ), seen.decode()
    assert b"RuntimeError: kaput" in seen
    # Not twice: the line does not also reach the root logger's handler.
    assert seen.count(b"Exception in handler for GET /boom") == 1
