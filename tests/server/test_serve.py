"""The server around the connections, over real loopback sockets."""

from __future__ import annotations

import os
import socket
from typing import Any

import httpx
import pytest
import trio

import trasgi
from trasgi import Config
from trasgi._server.serve import serve

from ..helpers import Receive, Send


def recording_app(
    events: list[str],
    release: trio.Event | None = None,
    entered: trio.Event | None = None,
) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        events.append("request " + scope["path"])
        if entered is not None:
            entered.set()
        if release is not None:
            await release.wait()
        client = scope["client"][0] if scope["client"] else None
        body = repr((client, scope["server"])).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


def port_of(listeners: list[trio.SocketListener]) -> int:
    return int(listeners[0].socket.getsockname()[1])


async def refused(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False


async def test_serve_tcp_reports_listeners_after_startup_and_stops_on_cancel() -> None:
    events: list[str] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(_serve_local, recording_app(events))
        assert events == ["lifespan.startup"]
        port = port_of(listeners)
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/hello")
        assert response.status_code == 200
        assert response.text == repr(("127.0.0.1", ("127.0.0.1", port)))
        nursery.cancel_scope.cancel()
    assert await refused(port)
    # Cancellation means "stop now": no lifespan shutdown.
    assert events == ["lifespan.startup", "request /hello"]


async def _serve_local(
    app: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED, **kw: Any
) -> None:
    await trasgi.serve_tcp(app, 0, host="127.0.0.1", task_status=task_status, **kw)


async def test_graceful_shutdown() -> None:
    """In-flight requests finish, new connections are refused, idle ones close."""
    events: list[str] = []
    release = trio.Event()
    entered = trio.Event()
    stop = trio.Event()
    finished = trio.Event()
    async with trio.open_nursery() as nursery:

        async def server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            await _serve_local(
                recording_app(events, release, entered),
                task_status=task_status,
                shutdown_trigger=stop.wait,
            )
            finished.set()

        listeners = await nursery.start(server)
        port = port_of(listeners)
        idle = await trio.open_tcp_stream("127.0.0.1", port)
        results: list[httpx.Response] = []

        async def in_flight() -> None:
            async with httpx.AsyncClient() as client:
                results.append(await client.get(f"http://127.0.0.1:{port}/slow"))

        nursery.start_soon(in_flight)
        with trio.fail_after(5):
            await entered.wait()
        stop.set()
        with trio.fail_after(5):
            # The listener closes as the accept loop is cancelled; poll the
            # port from outside, as a client would see it.
            while not await refused(port):  # noqa: ASYNC110
                await trio.sleep(0.01)
            # The idle connection is closed by the server.
            assert await idle.receive_some(100) == b""
        await idle.aclose()
        assert not finished.is_set()
        release.set()
        with trio.fail_after(5):
            await finished.wait()
    assert results[0].status_code == 200
    assert results[0].headers["connection"] == "close"
    assert events[-1] == "lifespan.shutdown"


async def test_graceful_shutdown_deadline_cancels_stuck_requests() -> None:
    events: list[str] = []
    never = trio.Event()
    entered = trio.Event()
    stop = trio.Event()
    config = Config(timeout_graceful_shutdown=0.3)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: _serve_local(
                recording_app(events, never, entered),
                task_status=task_status,
                config=config,
                shutdown_trigger=stop.wait,
            )
        )
        port = port_of(listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
        with trio.fail_after(5):
            await entered.wait()
        stop.set()
        start = trio.current_time()
        with trio.fail_after(5):
            data = b""
            while chunk := await stream.receive_some(1000):
                data += chunk
        await stream.aclose()
        assert 0.2 < trio.current_time() - start < 3
    assert events[-1] == "lifespan.shutdown"
    # No response had started: the client is told to retry, not dropped.
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"retry-after: 1\r\n" in data


async def test_unix_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "trasgi.sock")
    events: list[str] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                recording_app(events), Config(uds=path), task_status=task_status
            )
        )
        transport = httpx.AsyncHTTPTransport(uds=path)
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get("http://localhost/over-unix")
        nursery.cancel_scope.cancel()
    assert response.status_code == 200
    assert response.text == repr((None, (path, None)))
    assert events[-1] == "request /over-unix"


async def test_unix_socket_refuses_to_replace_a_live_server(tmp_path: Any) -> None:
    path = str(tmp_path / "live.sock")
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    try:
        with pytest.raises(OSError, match="already listening"):
            await serve(recording_app([]), Config(uds=path))
    finally:
        live.close()
    os.unlink(path)


async def test_inherited_file_descriptor() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    port = sock.getsockname()[1]
    events: list[str] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve(
                    recording_app(events),
                    Config(fd=sock.fileno()),
                    task_status=task_status,
                )
            )
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://127.0.0.1:{port}/fd")
            nursery.cancel_scope.cancel()
    finally:
        sock.detach()  # the server adopted the descriptor and closed it
    assert response.status_code == 200
    # The listener is closed, not a copy of it: new clients are refused.
    assert await refused(port)


async def test_a_burst_of_connections_is_accepted_in_batches() -> None:
    """Connections queued in the kernel are all taken and served."""
    events: list[str] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(_serve_local, recording_app(events))
        port = port_of(listeners)
        # Queue many connections while the server is busy elsewhere: the
        # kernel holds them until the accept loop drains the queue.
        streams = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(150)]
        for stream in streams:
            await stream.send_all(
                b"GET /burst HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
        with trio.fail_after(10):
            for stream in streams:
                data = b""
                while chunk := await stream.receive_some(4096):
                    data += chunk
                assert data.startswith(b"HTTP/1.1 200 OK\r\n")
                await stream.aclose()
        nursery.cancel_scope.cancel()
    assert events.count("request /burst") == 150
