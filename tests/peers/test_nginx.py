"""trasgi behind a real nginx, configured as ``docs/how-to/behind-nginx.md`` says.

The nginx blocks and trasgi commands are read from the page, so the page
cannot drift from what works: each test swaps the page's ports and paths for
free ports and a temporary directory (failing if the page no longer has them),
starts trasgi with the page's command and nginx with the page's blocks, and
checks what the application sees. Clients connect from 127.0.0.5, a loopback
address outside the default ``--forwarded-allow-ips``, so the client address
the application sees must have come through nginx.

nginx is a Debian package (``nginx``, and ``libnginx-mod-stream`` for the
PROXY protocol test), installed by ``.ci/run``; without it these tests fail
and say so, rather than skip.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
from websockets.sync.client import connect

from trasgi._ops import cli as _cli

from ..helpers import require_tool
from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "how-to" / "behind-nginx.md"
#: A client address nginx sees that no default allow-list trusts.
CLIENT_IP = "127.0.0.5"
#: Startup, requests and shutdown are each well under this on loopback.
TIMEOUT = 20.0

APP_SOURCE = """
import json


def seen(scope):
    host = dict(scope["headers"]).get(b"host", b"").decode()
    return {
        "client": scope["client"],
        "server": scope["server"],
        "scheme": scope["scheme"],
        "host": host,
    }


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(seen(scope))})
        await send({"type": "websocket.close"})
        return
    body = json.dumps(seen(scope)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""


# -- the page -------------------------------------------------------------------


def page_blocks(language: str) -> list[str]:
    return [block.code for block in fenced_blocks(PAGE) if block.info == language]


def page_commands() -> list[list[str]]:
    """Every ``python -m trasgi`` command on the page, split into words."""
    return [
        shlex.split(line)
        for code in page_blocks("sh")
        for line in code.splitlines()
        if line.startswith("python -m trasgi ")
    ]


def command_with(*options: str) -> list[str]:
    """The one command on the page that has all these options."""
    [command] = [
        words for words in page_commands() if all(option in words for option in options)
    ]
    return command


def on_any_port(command: list[str]) -> list[str]:
    """The command with ``--port 0``: the port is read from the log line."""
    index = command.index("--port")
    return [*command[:index], "--port", "0", *command[index + 2 :]]


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{PAGE.name} no longer has exactly one {old!r}"
    return text.replace(old, new)


def nginx_http_block() -> str:
    return page_blocks("nginx")[0]


def nginx_unix_upstream() -> str:
    return page_blocks("nginx")[1]


def nginx_stream_block() -> str:
    return page_blocks("nginx")[2]


def test_every_command_on_the_page_is_a_valid_configuration() -> None:
    commands = page_commands()
    assert len(commands) == 4
    for words in commands:
        assert words[:3] == ["python", "-m", "trasgi"]
        namespace = _cli.build_parser().parse_args(words[3:])
        config, app = _cli.config_from_args(namespace, {})
        assert app == "main:app"
        assert config.proxy_headers or config.proxy_protocol != "off"


# -- nginx ------------------------------------------------------------------------


def nginx_binary() -> str:
    found = shutil.which("/usr/sbin/nginx")
    return found if found is not None else require_tool("nginx", "nginx")


def stream_module_line() -> str:
    """The ``load_module`` line for nginx's stream module, if it is a module."""
    built = subprocess.run(
        [nginx_binary(), "-V"], capture_output=True, text=True, check=True
    ).stderr
    if "--with-stream=dynamic" not in built:
        assert "--with-stream" in built, "this nginx has no stream module"
        return ""
    found = re.search(r"--modules-path=(\S+)", built)
    module = Path(found.group(1) if found else "/usr/lib/nginx/modules")
    module /= "ngx_stream_module.so"
    if not module.exists():
        require_tool(str(module), "libnginx-mod-stream")
    return f"load_module {module};"


def nginx_conf(tmp: Path, http: str = "", main: str = "") -> str:
    """A whole nginx.conf around the page's blocks, everything under ``tmp``."""
    temp_paths = "\n".join(
        f"{kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Running as root, nginx would switch its workers to an unprivileged user
    # that cannot reach a socket under the test's private directory.
    user = "user root;" if os.geteuid() == 0 else ""
    return "\n".join(
        [
            stream_module_line() if "stream {" in main else "",
            user,
            "worker_processes 1;",
            f"pid {tmp}/nginx.pid;",
            f"error_log {tmp}/error.log info;",
            "events { worker_connections 64; }",
            "http {",
            "access_log off;",
            temp_paths,
            http,
            "}",
            main,
        ]
    )


@asynccontextmanager
async def running_nginx(tmp: Path, conf: str, ports: list[int]) -> AsyncIterator[None]:
    """Run nginx in the foreground with ``conf``; wait until ``ports`` accept."""
    (tmp / "nginx.conf").write_text(conf)
    process = await trio.lowlevel.open_process(
        [
            nginx_binary(),
            "-p",
            str(tmp),
            "-c",
            str(tmp / "nginx.conf"),
            "-e",
            str(tmp / "error.log"),
            "-g",
            "daemon off;",
        ],
        stderr=subprocess.PIPE,
    )
    try:
        for port in ports:
            await wait_for_port(port, process, tmp)
        yield
    finally:
        await stop(process)


async def wait_for_port(port: int, process: trio.Process, tmp: Path) -> None:
    with trio.fail_after(TIMEOUT):
        while True:
            if process.poll() is not None:
                log = (
                    (tmp / "error.log").read_text()
                    if (tmp / "error.log").exists()
                    else ""
                )
                raise AssertionError(f"nginx exited: {log}")
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)
                continue
            await stream.aclose()
            return


async def stop(process: trio.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        with trio.move_on_after(TIMEOUT):
            await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- trasgi -----------------------------------------------------------------------


@attrs.frozen
class Served:
    port: int | None
    stderr: bytearray


@asynccontextmanager
async def running_trasgi(tmp: Path, command: list[str]) -> AsyncIterator[Served]:
    """Run the page's trasgi command, on the test's application and paths."""
    (tmp / "proxy_report.py").write_text(textwrap.dedent(APP_SOURCE))
    words = ["proxy_report:app" if word == "main:app" else word for word in command]
    words += ["--app-dir", str(tmp)]
    process = await trio.lowlevel.open_process(
        [sys.executable, *words[1:]], cwd=tmp, stderr=subprocess.PIPE
    )
    seen = bytearray()
    try:
        found = await read_until(process, rb"listening on (\S+)", seen)
        address = found.group(1).decode()
        port = re.search(r"^http://[^/]+:(\d+)$", address)
        yield Served(int(port.group(1)) if port else None, seen)
    finally:
        await stop(process)
    assert b"Traceback" not in seen, seen.decode()


async def read_until(
    process: trio.Process, pattern: bytes, seen: bytearray
) -> re.Match[bytes]:
    assert process.stderr is not None
    with trio.fail_after(TIMEOUT):
        while True:
            found = re.search(pattern, bytes(seen))
            if found:
                return found
            chunk = await process.stderr.receive_some(4096)
            if not chunk:
                raise AssertionError(f"trasgi ended: {bytes(seen).decode()}")
            seen += chunk


# -- clients ------------------------------------------------------------------------


async def get(port: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    transport = httpx.AsyncHTTPTransport(local_address=CLIENT_IP)
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        response = await client.get(f"http://127.0.0.1:{port}/", headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def websocket(port: int) -> dict[str, Any]:
    def talk() -> dict[str, Any]:
        with connect(
            f"ws://127.0.0.1:{port}/chat",
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            source_address=(CLIENT_IP, 0),
        ) as ws:
            answer: dict[str, Any] = json.loads(ws.recv(timeout=TIMEOUT))
            return answer

    with trio.fail_after(TIMEOUT):
        return await trio.to_thread.run_sync(talk)


async def check_forwarding(port: int, server: Any) -> None:
    """What the application sees through the page's ``http`` configuration."""
    answer = await get(port)
    assert answer == {
        "client": [CLIENT_IP, 0],
        "server": server,
        "scheme": "http",
        "host": f"127.0.0.1:{port}",  # X-Forwarded-Host, not nginx's "trasgi"
    }
    # A client naming its own address is appended to, not believed.
    spoofed = await get(
        port, {"X-Forwarded-For": "10.9.9.9", "Forwarded": "for=1.2.3.4"}
    )
    assert spoofed["client"] == [CLIENT_IP, 0]
    # Several requests over nginx's kept-alive upstream connections.
    for _ in range(3):
        assert (await get(port))["client"] == [CLIENT_IP, 0]
    ws = await websocket(port)
    assert ws == {
        "client": [CLIENT_IP, 0],
        "server": server,
        "scheme": "ws",
        "host": f"127.0.0.1:{port}",
    }


def http_conf(tmp: Path, upstream: str | None, listen: int, trasgi_port: int) -> str:
    block = nginx_http_block()
    block = replace_once(block, "listen 80;", f"listen 127.0.0.1:{listen};")
    if upstream is None:
        block = replace_once(
            block, "server 127.0.0.1:8000;", f"server 127.0.0.1:{trasgi_port};"
        )
    else:
        block, count = re.subn(
            r"upstream trasgi \{.*?\n\}\n", upstream, block, flags=re.S
        )
        assert count == 1, "the page's http block has no upstream trasgi { } to replace"
    return nginx_conf(tmp, http=block)


# -- the tests -------------------------------------------------------------------------


@pytest.mark.process
async def test_tcp_upstream_with_proxy_headers(tmp_path: Path) -> None:
    command = on_any_port(command_with("--port", "--proxy-headers"))
    async with running_trasgi(tmp_path, command) as served:
        assert served.port is not None
        listen = free_port()
        conf = http_conf(tmp_path, None, listen, served.port)
        async with running_nginx(tmp_path, conf, [listen]):
            await check_forwarding(listen, ["127.0.0.1", served.port])


@pytest.mark.process
async def test_unix_socket_upstream_with_proxy_headers(tmp_path: Path) -> None:
    page_path = "/run/trasgi/trasgi.sock"
    socket_path = str(tmp_path / "trasgi.sock")
    command = [
        socket_path if word == page_path else word for word in command_with("--uds")
    ]
    assert socket_path in command
    upstream = replace_once(nginx_unix_upstream(), page_path, socket_path)
    async with running_trasgi(tmp_path, command):
        listen = free_port()
        conf = http_conf(tmp_path, upstream, listen, 0)
        async with running_nginx(tmp_path, conf, [listen]):
            await check_forwarding(listen, [socket_path, None])


@pytest.mark.process
async def test_proxy_protocol_from_nginx_stream(tmp_path: Path) -> None:
    command = on_any_port(command_with("--proxy-protocol"))
    async with running_trasgi(tmp_path, command) as served:
        assert served.port is not None
        listen = free_port()
        block = nginx_stream_block()
        block = replace_once(block, "listen 8080;", f"listen 127.0.0.1:{listen};")
        block = replace_once(
            block, "proxy_pass 127.0.0.1:8001;", f"proxy_pass 127.0.0.1:{served.port};"
        )
        async with running_nginx(tmp_path, nginx_conf(tmp_path, main=block), [listen]):
            for _ in range(2):
                answer, local_port = await raw_get(listen)
                assert answer == {
                    "client": [CLIENT_IP, local_port],
                    "server": ["127.0.0.1", listen],
                    "scheme": "http",
                    "host": f"127.0.0.1:{listen}",
                }
        # nginx's own readiness probes (connect, then close) are connections
        # without a header: closed quietly, never an error.
        assert b"ERROR" not in served.stderr


async def raw_get(port: int) -> tuple[dict[str, Any], int]:
    """One request over a socket bound to CLIENT_IP; the answer and our port."""
    sock = trio.socket.socket()
    await sock.bind((CLIENT_IP, 0))
    local_port = sock.getsockname()[1]
    with trio.fail_after(TIMEOUT):
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        request = (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        await stream.send_all(request.encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
        await stream.aclose()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), data
    return json.loads(body), local_port
