"""Graceful shutdown ends streaming responses promptly and cleanly.

When shutdown begins, a request whose response has started and whose
application waits in ``receive()`` (or calls it later) gets
``http.disconnect``: server-sent events and long polls end at once, with a
properly ended body (the last chunk on HTTP/1.1, END_STREAM on HTTP/2) and
the connection closed, instead of running to the deadline and being cut.

The connections are the real ones over memory streams, served with one
:class:`ServerShared` whose shutdown the test begins; the mock clock shows
that nothing waited (no tick of the clock example passed).
"""

from __future__ import annotations

import functools
import logging
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import h11
import pytest
import trio
import trio.testing

import trasgi
from examples import sse_clock
from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared

from ..helpers import HANG, Message, Receive, Send, read_until_closed, require_tool
from ..io.h2_client import serving
from ..ops.test_cli import read_until

ROOT = Path(__file__).resolve().parents[2]


def parse_response(data: bytes, target: str) -> list[h11.Event]:
    """The events of one complete HTTP/1.1 response; raises if it was cut."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target=target, headers=[("host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")
    events: list[h11.Event] = []
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return events
        assert not isinstance(event, type), event
        events.append(event)


class Connection:
    """One HTTP/1.1 connection to ``app``, on a server whose shutdown we begin."""

    def __init__(self, nursery: trio.Nursery, app: Any) -> None:
        self.shared = ServerShared()
        self.client, server = trio.testing.memory_stream_pair()
        nursery.start_soon(
            handle_connection, server, app, Config(), ConnectionInfo(), self.shared
        )
        self.received = b""

    async def read_until(self, marker: bytes) -> None:
        with trio.fail_after(HANG):
            while marker not in self.received:
                self.received += await self.client.receive_some(65536)

    async def rest(self) -> bytes:
        self.received += await read_until_closed(self.client)
        return self.received


# -- server-sent events: trasgi_web's EventSourceResponse -------------------------


async def test_shutdown_ends_an_event_stream_over_http1(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        connection = Connection(nursery, sse_clock.app)
        await connection.client.send_all(b"GET /clock HTTP/1.1\r\nHost: x\r\n\r\n")
        await connection.read_until(b"event: tick\nid: 1\n")
        began = trio.current_time()
        connection.shared.begin_shutdown()
        data = await connection.rest()
        assert trio.current_time() == began  # no tick waited for
    events = parse_response(data, "/clock")
    response = events[0]
    assert isinstance(response, h11.Response)
    assert response.status_code == 200
    assert isinstance(events[-1], h11.EndOfMessage)
    assert data.endswith(b"\r\n0\r\n\r\n")  # the last chunk (RFC 9112 7.1)


async def test_shutdown_ends_an_event_stream_over_http2(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with serving(sse_clock.app) as server:
        client = await server.h2()
        stream_id = await client.request(path=b"/clock")
        with trio.fail_after(HANG):
            while b"id: 1\n" not in client.received(stream_id).body:
                await client.read()
        began = trio.current_time()
        server.shared.begin_shutdown()
        response = await client.response(stream_id)
        assert trio.current_time() == began
        await client.read_until_closed()
    assert response.status == 200
    assert response.ended  # END_STREAM
    assert response.reset is None
    assert response.body.endswith(b"\n\n")  # whole events only


# -- raw ASGI: what Starlette's StreamingResponse does ------------------------------


def listening_stream(log: list[str], start_after: trio.Event | None = None) -> Any:
    """A streaming app that listens for the disconnect beside its stream.

    The shape of Starlette's StreamingResponse under ASGI spec versions
    before 2.4: when the listener hears ``http.disconnect`` it cancels the
    stream task, and the application returns without a final body message.
    With ``start_after``, the listener waits before the response starts.
    """

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        async with trio.open_nursery() as nursery:

            async def stream() -> None:
                if start_after is not None:
                    await start_after.wait()
                await send(
                    {"type": "http.response.start", "status": 200, "headers": []}
                )
                log.append("started")
                while True:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": b"data\n",
                            "more_body": True,
                        }
                    )
                    await trio.sleep(1)

            nursery.start_soon(stream)
            message = await receive()
            if message["type"] == "http.request":
                message = await receive()
            log.append(message["type"])
            nursery.cancel_scope.cancel()

    return app


async def test_the_server_ends_the_body_the_application_left_open(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    log: list[str] = []
    async with trio.open_nursery() as nursery:
        connection = Connection(nursery, listening_stream(log))
        await connection.client.send_all(b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n")
        await connection.read_until(b"data\n")
        connection.shared.begin_shutdown()
        data = await connection.rest()
    assert log == ["started", "http.disconnect"]
    assert isinstance(parse_response(data, "/feed")[-1], h11.EndOfMessage)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert '"GET /feed HTTP/1.1" 200 ' in line
    assert "cut_short" not in line


async def test_a_response_not_started_is_not_told_until_it_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A long poll still answers: the disconnect comes once its response started."""
    log: list[str] = []
    answer = trio.Event()
    async with trio.open_nursery() as nursery:
        connection = Connection(nursery, listening_stream(log, start_after=answer))
        await connection.client.send_all(b"GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        connection.shared.begin_shutdown()
        await trio.testing.wait_all_tasks_blocked()
        assert log == []  # still waiting to answer: not disconnected
        answer.set()
        data = await connection.rest()
    assert log == ["started", "http.disconnect"]
    events = parse_response(data, "/poll")
    assert isinstance(events[0], h11.Response)
    assert events[0].status_code == 200
    assert isinstance(events[-1], h11.EndOfMessage)


async def test_a_receive_after_shutdown_began_is_a_disconnect(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[Message] = []
    shutdown = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await shutdown.wait()
        got.append(await receive())  # the (empty) body
        got.append(await receive())  # at once: shutdown began
        await send({"type": "http.response.body", "body": b"b"})

    async with trio.open_nursery() as nursery:
        connection = Connection(nursery, app)
        await connection.client.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await connection.read_until(b"a")
        connection.shared.begin_shutdown()
        shutdown.set()
        data = await connection.rest()
    assert [m["type"] for m in got] == ["http.request", "http.disconnect"]
    assert data.endswith(b"1\r\nb\r\n0\r\n\r\n")


# -- a real process, a real client ---------------------------------------------------


@pytest.mark.process
async def test_sigterm_ends_a_curl_event_stream_cleanly() -> None:
    curl = require_tool("curl", "curl")
    server = await trio.lowlevel.open_process(
        [
            sys.executable,
            "-m",
            "trasgi",
            "examples.sse_clock:app",
            "--port",
            "0",
            "--timeout-graceful-shutdown",
            "60",
        ],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    try:
        found = await read_until(
            server, rb"listening on http://127\.0\.0\.1:(\d+)", seen
        )
        client = await trio.lowlevel.open_process(
            [curl, "-sS", "-N", f"http://127.0.0.1:{found[1].decode()}/clock"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert client.stdout is not None
        assert client.stderr is not None
        events = b""
        with trio.fail_after(HANG):
            while b"event: tick" not in events:
                events += await client.stdout.receive_some(4096)
        server.send_signal(signal.SIGTERM)
        with trio.fail_after(HANG):  # far below the 60 s graceful timeout
            while chunk := await client.stdout.receive_some(4096):
                events += chunk
            # curl exits 18 for a chunked body cut short; 0 means it ended.
            assert await client.wait() == 0, await client.stderr.receive_some(4096)
            await read_until(server, rb"application shutdown complete", seen)
            assert await server.wait() == 0
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert events.startswith(b"event: tick\nid: 0\n")
    assert re.search(
        rb"1 requests were in flight when shutdown began, 0 cancelled", bytes(seen)
    )


# -- what the shutdown says -------------------------------------------------------------


async def test_shutdown_says_what_was_in_flight_and_what_was_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.error")
    caplog.set_level(logging.INFO, logger="trasgi.access")
    entered = trio.Event()
    stop = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        entered.set()
        await trio.sleep_forever()  # and never listens for the disconnect

    config = Config(timeout_graceful_shutdown=0.2)
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trasgi.serve_tcp,
                app,
                0,
                host="127.0.0.1",
                config=config,
                shutdown_trigger=stop.wait,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        streams = []
        for path in (b"/stuck", b"/stream"):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            await stream.send_all(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path)
            with trio.fail_after(HANG):
                await entered.wait()
            entered = trio.Event()
            streams.append(stream)
        stop.set()
        answers = [await read_until_closed(stream) for stream in streams]
        for stream in streams:
            await stream.aclose()
    assert answers[0].startswith(b"HTTP/1.1 503 ")
    lines = [r.getMessage() for r in caplog.records]
    assert "shutting down: waiting up to 0.2s for 2 in-flight requests" in lines
    assert (
        "connections closed: 2 requests were in flight when shutdown began, "
        "2 cancelled at the 0.2s deadline"
    ) in lines
    access = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert any(
        '"GET /stuck HTTP/1.1" 503 ' in line and "reason=" in line for line in access
    )
    assert any(
        '"GET /stream HTTP/1.1" 200 1 ' in line
        and line.endswith('cut_short="shutdown deadline"')
        for line in access
    )
