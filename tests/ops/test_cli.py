"""The command line, run as a real subprocess: ``python -m trasgi``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

import trasgi

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, cwd: Path = ROOT, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trasgi", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_module(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


async def read_until(
    process: trio.Process, pattern: bytes, seen: bytearray
) -> re.Match[bytes]:
    assert process.stderr is not None
    with trio.fail_after(20):
        while True:
            found = re.search(pattern, bytes(seen))
            if found:
                return found
            chunk = await process.stderr.receive_some(4096)
            if not chunk:
                raise AssertionError(
                    f"process ended before {pattern!r}: {bytes(seen)!r}"
                )
            seen += chunk


async def test_hello_example_serves_and_stops_cleanly_on_sigterm() -> None:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trasgi", "examples.hello:app", "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    try:
        found = await read_until(
            process, rb"listening on http://127\.0\.0\.1:(\d+)", seen
        )
        port = int(found.group(1))
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
        assert response.text == "Hello, world!"
        process.send_signal(signal.SIGTERM)
        await read_until(process, rb"application shutdown complete", seen)
        with trio.fail_after(20):
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 0
    assert b"Traceback" not in seen
    assert b'"GET / HTTP/1.1" 200' in seen  # the access line


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, words: str
) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert words in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1, result.stderr


@pytest.mark.parametrize(
    ("args", "status", "words"),
    [
        (["nosuchmodule:app"], 1, "could not import module 'nosuchmodule'"),
        (["examples.hello:nope"], 1, "module 'examples.hello' has no attribute 'nope'"),
        (["examples.hello"], 1, "must be given as MODULE:ATTRIBUTE"),
        (["examples.hello:__doc__"], 1, "is not callable (it is str)"),
        (["examples.hello:app", "--port", "abc"], 2, "invalid int value: 'abc'"),
        (
            ["examples.hello:app", "--port", "70000"],
            2,
            "--port must be between 0 and 65535",
        ),
        (["examples.hello:app", "--lifespan", "maybe"], 2, "invalid choice: 'maybe'"),
        (
            ["examples.hello:app", "--timeout-keep-alive", "-1"],
            2,
            "--timeout-keep-alive must be between",
        ),
        (
            ["examples.hello:app", "--limit-concurrency", "0"],
            2,
            "--limit-concurrency must be between",
        ),
        (
            ["examples.hello:app", "--no-such-option"],
            2,
            "unrecognized arguments: --no-such-option",
        ),
        ([], 2, "the application is required: APP, TRASGI_APP or app in --config"),
        (
            ["examples.hello:app", "--prot", "8000"],
            2,
            "unrecognized arguments: --prot 8000 (did you mean --port?)",
        ),
        (
            ["examples.hello:app", "--env-file", "/nonexistent/.env"],
            2,
            "--env-file /nonexistent/.env: cannot read: No such file or directory",
        ),
        (
            ["examples.hello:app", "--header", "x-frame-options"],
            2,
            "--header must be NAME:VALUE, got 'x-frame-options'",
        ),
        (
            ["examples.hello:app", "--header", "bad name: 1"],
            2,
            "--header 'bad name: 1': 'bad name' is not a valid header name",
        ),
        (
            ["examples.hello:app", "--ws-per-message-deflate", "maybe"],
            2,
            "expected a boolean (true/false, 1/0, yes/no, on/off), got 'maybe'",
        ),
    ],
)
def test_bad_input_gets_one_line_and_a_non_zero_exit(
    args: list[str], status: int, words: str
) -> None:
    assert_one_line_error(run_cli(*args), status, words)


def test_bad_environment_variable_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trasgi", "examples.hello:app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "TRASGI_PORT": "abc"},
    )
    assert_one_line_error(result, 2, "TRASGI_PORT: invalid value 'abc'")


def test_config_file_is_read(tmp_path: Path) -> None:
    config = tmp_path / "trasgi.toml"
    config.write_text('app = "examples.hello:app"\nport = "eighty"\n')
    result = run_cli("--config", str(config))
    assert_one_line_error(result, 2, "port must be int, got str 'eighty'")


def test_error_inside_the_module_is_explained(tmp_path: Path) -> None:
    write_module(tmp_path, "broken", "import nonexistent_dependency\n")
    result = run_cli("broken:app", "--app-dir", str(tmp_path))
    assert_one_line_error(result, 1, "importing 'broken' raised ModuleNotFoundError")
    assert "nonexistent_dependency" in result.stderr
    assert "broken.py, line 1" in result.stderr


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    write_module(tmp_path, "typo", "x = 1\napp = (\n")
    result = run_cli("typo:app", "--app-dir", str(tmp_path))
    assert_one_line_error(result, 1, "raised SyntaxError")
    assert "typo.py, line 2" in result.stderr


def test_failing_factory_is_explained(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "fact",
        "def make():\n    raise RuntimeError('missing DATABASE_URL')\n",
    )
    result = run_cli("fact:make", "--factory", "--app-dir", str(tmp_path))
    assert_one_line_error(
        result,
        1,
        "calling the factory 'fact:make' raised RuntimeError: missing DATABASE_URL",
    )


def test_factory_without_flag_is_pointed_out(tmp_path: Path) -> None:
    write_module(tmp_path, "fact2", "def make():\n    return None\n")
    result = run_cli("fact2:make", "--app-dir", str(tmp_path))
    assert_one_line_error(result, 1, "pass --factory")


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("examples.hello:app", "--port", str(port), "--lifespan", "off")
    assert_one_line_error(
        result, 1, f"cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_lifespan_startup_failure_exits_3_with_the_apps_message(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "failing",
        """
        async def app(scope, receive, send):
            await receive()
            await send({"type": "lifespan.startup.failed", "message": "redis unreachable"})
        """,
    )
    result = run_cli("failing:app", "--app-dir", str(tmp_path), "--port", "0")
    assert_one_line_error(result, 3, "startup failed: redis unreachable")


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(f"trasgi {trasgi.__version__} (")
    assert "trio" in result.stdout


def test_help_lists_every_config_field() -> None:
    import attrs

    result = run_cli("--help")
    assert result.returncode == 0
    for field in attrs.fields(trasgi.Config):
        assert "--" + field.name.replace("_", "-") in result.stdout


@pytest.mark.skipif(not hasattr(os, "getpgid"), reason="POSIX signals")
async def test_second_sigint_forces_exit(tmp_path: Path) -> None:
    write_module(
        tmp_path,
        "stuck",
        """
        import trio

        async def app(scope, receive, send):
            if scope["type"] == "lifespan":
                await receive()
                await send({"type": "lifespan.startup.complete"})
                await receive()
                await trio.sleep_forever()  # never completes shutdown
            await trio.sleep_forever()
        """,
    )
    process = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "trasgi",
            "stuck:app",
            "--app-dir",
            str(tmp_path),
            "--port",
            "0",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    try:
        await read_until(process, rb"listening on", seen)
        process.send_signal(signal.SIGINT)
        await read_until(process, rb"shutting down gracefully", seen)
        process.send_signal(signal.SIGINT)
        with trio.fail_after(20):
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 1
    await read_until(process, rb"forcing exit", seen)
    assert b"Traceback" not in seen


@asynccontextmanager
async def serving(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> AsyncIterator[tuple[int, bytearray]]:
    """``python -m trasgi ARGS`` until it listens; then SIGTERM, and exit 0."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trasgi", *args],
        cwd=cwd,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    seen = bytearray()
    try:
        found = await read_until(
            process, rb"listening on http://127\.0\.0\.1:(\d+)", seen
        )
        yield int(found.group(1)), seen
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            status = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert status == 0, bytes(seen)
    assert b"Traceback" not in seen


#: What Kubernetes puts in a pod's environment for a Service named trasgi.
SERVICE_LINKS = {
    "TRASGI_SERVICE_HOST": "10.0.0.11",
    "TRASGI_SERVICE_PORT": "8000",
    "TRASGI_PORT": "tcp://10.0.0.11:8000",
    "TRASGI_PORT_8000_TCP": "tcp://10.0.0.11:8000",
    "TRASGI_PORT_8000_TCP_PROTO": "tcp",
    "TRASGI_PORT_8000_TCP_PORT": "8000",
    "TRASGI_PORT_8000_TCP_ADDR": "10.0.0.11",
    "TRASGI_WEB_SERVICE_HOST": "10.0.0.12",
}


@pytest.mark.parametrize(
    "listen",
    [["--port", "0"], ["--bind", "127.0.0.1:0"]],
    ids=["port-on-the-command-line", "port-from-nowhere"],
)
async def test_a_pod_with_service_links_and_stray_variables_starts(
    listen: list[str],
) -> None:
    env = {**SERVICE_LINKS, "TRASGI_VERSION": "1.4.0", "TRASGI_PROT": "9000"}
    async with serving("examples.hello:app", *listen, env=env) as (port, seen):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "Hello, world!"
    warnings = [line for line in seen.decode().splitlines() if "WARNING" in line]
    links, *others = warnings
    assert "enableServiceLinks: false" in links
    assert "TRASGI_SERVICE_HOST" in links
    assert "TRASGI_WEB_SERVICE_HOST" in links
    assert ("TRASGI_PORT," in links) is (listen[0] == "--bind")
    assert [line.partition("WARNING")[2].strip() for line in others] == [
        "TRASGI_PROT: unknown option, ignored (did you mean 'TRASGI_PORT'?)",
        "TRASGI_VERSION: unknown option, ignored",
    ]


async def test_env_file_sets_options_and_the_applications_variables(
    tmp_path: Path,
) -> None:
    write_module(
        tmp_path,
        "greeter",
        """
        import os

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = f"{os.environ['GREETING']} at {scope['root_path']}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        """,
    )
    (tmp_path / ".env").write_text(
        "GREETING='hello from .env'\nTRASGI_ROOT_PATH=/api\n"
    )
    args = ["greeter:app", "--app-dir", str(tmp_path), "--env-file", ".env"]
    async with serving(*args, "--port", "0", cwd=tmp_path) as (port, _):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "hello from .env at /api"


async def test_reload_with_workers_warns_once_and_runs_one_server(
    tmp_path: Path,
) -> None:
    args = ["examples.hello:app", "--app-dir", str(ROOT), "--port", "0"]
    reload = ["--reload", "--reload-dir", str(tmp_path), "--workers", "3"]
    async with serving(*args, *reload, cwd=tmp_path) as (port, seen):
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.status_code == 200
    assert seen.count(b"--workers is ignored with --reload") == 1
    assert b"supervisor" not in seen
