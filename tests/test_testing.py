"""trasgi.testing: the httpx client over the real server, in memory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trasgi import Config
from trasgi.testing import open_client

from .helpers import Receive, Send, echo_app

ROOT = Path(__file__).resolve().parent.parent


async def scope_app(scope: Any, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan")
    body = repr(
        (
            scope["scheme"],
            scope["client"],
            scope["server"],
            scope["path"],
            scope["query_string"],
        )
    ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def test_scope_seen_through_the_client() -> None:
    async with open_client(scope_app) as client:
        response = await client.get("/a%20b?x=1")
    assert response.text == repr(
        ("http", ("testclient", 50000), ("testserver", 80), "/a b", b"x=1")
    )


async def test_https_base_url_gives_https_scheme() -> None:
    async with open_client(scope_app, base_url="https://example.org") as client:
        response = await client.get("/")
    assert response.text.startswith(
        "('https', ('testclient', 50000), ('example.org', 443)"
    )


async def test_streaming_upload_and_download() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):
            yield b"%03d," % i

    async with (
        open_client(echo_app) as client,
        client.stream("POST", "/", content=chunks()) as response,
    ):
        received = b"".join([part async for part in response.aiter_bytes()])
    assert received == b"".join(b"%03d," % i for i in range(100))


async def test_streamed_response_arrives_in_pieces() -> None:
    step = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        await step.wait()
        await send({"type": "http.response.body", "body": b"second"})

    parts: list[bytes] = []
    async with open_client(app) as client, client.stream("GET", "/") as response:
        async for part in response.aiter_raw():
            parts.append(part)
            step.set()  # the second part is sent only after the first arrived
    assert parts == [b"first", b"second"]


async def test_connections_are_kept_alive() -> None:
    async with open_client(scope_app) as client:
        first = await client.get("/")
        second = await client.get("/")
    assert first.text == second.text  # same client port: the same connection


async def test_server_errors_are_responses() -> None:
    async def failing(scope: Any, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async with open_client(failing, config=Config(lifespan="off")) as client:
        response = await client.get("/")
    assert response.status_code == 500


async def test_a_failing_assert_in_the_test_is_raised_as_itself() -> None:
    with pytest.raises(AssertionError, match="visible"):
        async with open_client(scope_app):
            raise AssertionError("visible")


async def test_timeouts_are_honoured(autojump_clock: trio.testing.MockClock) -> None:
    async def hangs(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await trio.sleep_forever()

    async with open_client(hangs, config=Config(lifespan="off")) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/", timeout=2)


def answers_500_then_fails(checkpoints: int) -> Any:
    """An app whose whole 500 is sent before it raises, ``checkpoints`` later."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-length", b"4"),
                    (b"x-client-port", str(scope["client"][1]).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"oops"})
        for _ in range(checkpoints):
            await trio.lowlevel.checkpoint()
        raise RuntimeError("after the response")

    return app


@pytest.mark.parametrize("checkpoints", [0, 50])
async def test_a_connection_the_server_closed_is_not_reused(checkpoints: int) -> None:
    # The server ends a connection whose application failed; the next
    # request goes to a new connection (another client port), as httpx does
    # over a socket the server has closed.
    app = answers_500_then_fails(checkpoints)
    async with open_client(app, config=Config(lifespan="off")) as client:
        first = await client.get("/")
        second = await client.get("/")
    assert (first.status_code, second.status_code) == (500, 500)
    assert first.headers["x-client-port"] != second.headers["x-client-port"]


# A Python without httpx (nor httpcore): an import finder that refuses them
# runs first, then the raw and WebSocket clients serve an app and the httpx
# client names the extra to install.
WITHOUT_HTTPX = """
    import sys

    class NotInstalled:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in ("httpx", "httpcore"):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NotInstalled())

    import trio

    from trasgi import Config
    from trasgi.testing import open_client, open_connection, open_websocket

    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": "hello"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"raw"})

    async def main():
        async with open_connection(app) as stream:
            await stream.send_all(b"GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n")
            print("raw:", bytes(await stream.receive_some()).split(b"\\r\\n")[0])
        async with open_websocket(app) as ws:
            print("websocket:", await ws.receive())
        try:
            async with open_client(app, config=Config(lifespan="off")):
                pass
        except ModuleNotFoundError as exc:
            print("open_client:", exc)
        try:
            from trasgi.testing import TestClient
        except ModuleNotFoundError as exc:
            print("TestClient:", exc)
        print("httpx imported:", "httpx" in sys.modules or "httpcore" in sys.modules)

    trio.run(main)
"""


@pytest.mark.process
def test_the_raw_and_websocket_clients_work_without_httpx() -> None:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WITHOUT_HTTPX)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    needs = (
        "trasgi.testing.open_client needs httpx (httpcore is not installed): "
        "install the testing extra, pip install -e '.[testing]'"
    )
    assert result.stdout.splitlines() == [
        "raw: b'HTTP/1.1 200 OK'",
        "websocket: hello",
        f"open_client: {needs}",
        f"TestClient: {needs}",
        "httpx imported: False",
    ]
