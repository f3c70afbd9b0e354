"""``--workers``: a real supervisor and real worker processes on loopback.

The application answers with the pid of the worker that served it, and
writes a line to a file when its lifespan shutdown runs, so each test can
tell which process did what. Every wait is bounded by :data:`HANG`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import NEW_CONNECTION_GRACE, ServerShared
from trasgi._ops.worker_process import PONG, Channel
from trasgi._server.serve import _request_budget, serve_tcp

from ..helpers import Receive, Send, read_until_closed
from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
#: Long enough for a few Python processes to start on a slow machine.
HANG = 30.0

PID_APP = """
import os
import time
from pathlib import Path

EVENTS = Path(__file__).with_name("events.txt")


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                continue
            with EVENTS.open("a") as events:
                events.write(f"shutdown {os.getpid()}\\n")
            await send({"type": "lifespan.shutdown.complete"})
            return
    if scope["path"] == "/block":
        time.sleep(3600)  # blocks the worker's event loop
    body = str(os.getpid()).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
"""

READY = rb"worker (\d+) is ready"


class Server:
    """A ``python -m trasgi`` process whose standard error is read as it comes.

    Reading all the time keeps the pipe from filling up and blocking the
    server's log writes.
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.log = bytearray()
        self.closed = False
        self._grew = trio.Event()

    async def drain(self) -> None:
        assert self.process.stderr is not None
        while chunk := await self.process.stderr.receive_some(65536):
            self.log += chunk
            self._grew.set()
            self._grew = trio.Event()
        self.closed = True
        self._grew.set()

    async def wait_for(self, pattern: bytes, count: int = 1) -> list[re.Match[bytes]]:
        """Wait until ``pattern`` occurs ``count`` times in the log."""
        with trio.fail_after(HANG):
            while True:
                found = list(re.finditer(pattern, bytes(self.log)))
                if len(found) >= count:
                    return found
                if self.closed:
                    raise AssertionError(f"no {pattern!r} x{count} in {self.text}")
                await self._grew.wait()

    async def wait_closed(self) -> None:
        """Wait until every process writing to the log (workers too) is gone."""
        with trio.fail_after(HANG):
            while not self.closed:
                await self._grew.wait()

    async def ready_pids(self, count: int) -> list[int]:
        return [int(m[1]) for m in await self.wait_for(READY, count)]

    async def port(self) -> int:
        (found, *_) = await self.wait_for(rb"listening on http://127\.0\.0\.1:(\d+)")
        return int(found[1])

    async def exit_status(self) -> int:
        with trio.fail_after(HANG):
            return await self.process.wait()

    @property
    def text(self) -> str:
        return self.log.decode(errors="replace")


@asynccontextmanager
async def running(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> AsyncIterator[Server]:
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trasgi", *args],
        cwd=cwd,
        stderr=subprocess.PIPE,
        env=None if env is None else {**os.environ, **env},
    )
    server = Server(process)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.drain)
            yield server
            nursery.cancel_scope.cancel()
    finally:
        if process.returncode is None:
            process.kill()  # the workers see the end of the channel and stop
            with trio.CancelScope(shield=True):
                await process.wait()


def pid_app(directory: Path) -> Path:
    (directory / "pidapp.py").write_text(PID_APP)
    return directory / "events.txt"


async def get(port: int, path: str = "/") -> tuple[int, bytes]:
    """One request on a new connection; the status and the body."""
    with trio.fail_after(HANG):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            request = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            await stream.send_all(request.encode())
            data = b""
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 "), data
    return int(head.split()[1]), body


class Hammer:
    """Clients requesting in a loop until told to stop; counts what failed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.pids: list[int] = []
        self.failures: list[str] = []
        self.done = trio.Event()
        self._answered = trio.Event()

    async def served(self, count: int) -> None:
        """Wait until ``count`` requests in all were answered."""
        with trio.fail_after(HANG):
            while len(self.pids) < count:
                await self._answered.wait()
                self._answered = trio.Event()

    async def client(self) -> None:
        while not self.done.is_set():
            try:
                status, body = await get(self.port)
            except (OSError, AssertionError) as exc:
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"status {status}")
                continue
            self.pids.append(int(body))
            self._answered.set()

    async def run(self, clients: int) -> None:
        with trio.move_on_after(HANG):  # bounded even if nobody stops it
            async with trio.open_nursery() as nursery:
                for _ in range(clients):
                    nursery.start_soon(self.client)


def serve_args(*extra: str, directory: Path) -> list[str]:
    return ["pidapp:app", "--port", "0", "--app-dir", str(directory), *extra]


async def pids_until(port: int, wanted: int, limit: int = 400) -> set[int]:
    """Request concurrently until ``wanted`` distinct pids answered."""
    seen: set[int] = set()

    async def one() -> None:
        status, body = await get(port)
        assert status == 200
        seen.add(int(body))

    for _ in range(limit // 8):
        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(one)
        if len(seen) >= wanted:
            return seen
    raise AssertionError(f"only {seen} answered {limit} requests")


@pytest.mark.process
async def test_two_workers_serve_requests_from_two_processes(tmp_path: Path) -> None:
    pid_app(tmp_path)
    async with running(
        *serve_args("--workers", "2", directory=tmp_path), cwd=tmp_path
    ) as server:
        workers = set(await server.ready_pids(2))
        assert os.getpid() not in workers
        assert server.process.pid not in workers
        assert await pids_until(await server.port(), 2) == workers
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status() == 0


@pytest.mark.process
async def test_sigterm_stops_every_worker_after_its_lifespan_shutdown(
    tmp_path: Path,
) -> None:
    events = pid_app(tmp_path)
    async with running(
        *serve_args("--workers", "2", directory=tmp_path), cwd=tmp_path
    ) as server:
        workers = await server.ready_pids(2)
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status() == 0
        await server.wait_closed()
    assert sorted(events.read_text().split()) == sorted(
        ["shutdown"] * 2 + [str(pid) for pid in workers]
    )
    assert "all workers stopped" in server.text


@pytest.mark.process
async def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(
    tmp_path: Path,
) -> None:
    pid_app(tmp_path)
    async with running(
        *serve_args("--workers", "2", directory=tmp_path), cwd=tmp_path
    ) as server:
        first, second = await server.ready_pids(2)
        port = await server.port()
        os.kill(first, signal.SIGKILL)
        await server.wait_for(rb"worker %d was killed by SIGKILL" % first)
        # The other worker serves while the replacement starts.
        for _ in range(20):
            status, body = await get(port)
            assert status == 200
            assert int(body) != first
        (*_, replacement) = await server.ready_pids(3)
        assert replacement not in (first, second)
        assert await pids_until(port, 2) == {second, replacement}


@pytest.mark.process
async def test_a_worker_whose_loop_is_blocked_is_killed_and_replaced(
    tmp_path: Path,
) -> None:
    pid_app(tmp_path)
    args = serve_args(
        "--workers", "1", "--timeout-worker-healthcheck", "2", directory=tmp_path
    )
    async with running(*args, cwd=tmp_path) as server:
        (blocked,) = await server.ready_pids(1)
        port = await server.port()
        assert await get(port) == (200, str(blocked).encode())  # healthy
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            await server.wait_for(
                rb"worker %d did not answer a health check within 2s: killing it"
                % blocked
            )
            await server.wait_for(rb"worker %d was killed by SIGKILL" % blocked)
            with contextlib.suppress(trio.BrokenResourceError):  # or reset
                assert await stream.receive_some(65536) == b""  # never answered
        (_, replacement) = await server.ready_pids(2)
        assert await get(port) == (200, str(replacement).encode())


@pytest.mark.process
async def test_a_frozen_worker_is_killed_and_replaced(tmp_path: Path) -> None:
    pid_app(tmp_path)
    args = serve_args(
        "--workers", "2", "--timeout-worker-healthcheck", "2", directory=tmp_path
    )
    async with running(*args, cwd=tmp_path) as server:
        frozen, other = await server.ready_pids(2)
        os.kill(frozen, signal.SIGSTOP)
        await server.wait_for(rb"worker %d did not answer a health check" % frozen)
        await server.wait_for(rb"worker %d was killed by SIGKILL" % frozen)
        (*_, replacement) = await server.ready_pids(3)
        assert await pids_until(await server.port(), 2) == {other, replacement}
        assert b"worker %d did not answer" % other not in server.log


@pytest.mark.process
async def test_sighup_replaces_every_worker_without_a_failed_request(
    tmp_path: Path,
) -> None:
    pid_app(tmp_path)
    async with running(
        *serve_args("--workers", "2", "--no-access-log", directory=tmp_path),
        cwd=tmp_path,
    ) as server:
        old = set(await server.ready_pids(2))
        hammer = Hammer(await server.port())
        async with trio.open_nursery() as nursery:
            nursery.start_soon(hammer.run, 4)
            await hammer.served(20)
            server.process.send_signal(signal.SIGHUP)
            await server.wait_for(rb"restart complete")
            await hammer.served(len(hammer.pids) + 20)
            hammer.done.set()
        new = set(await server.ready_pids(4)) - old
        assert len(new) == 2
        assert hammer.failures == []
        assert set(hammer.pids[-8:]) <= new  # only new workers serve after
        assert old & set(hammer.pids)
        assert new & set(hammer.pids)


@pytest.mark.process
async def test_a_worker_is_replaced_after_its_request_limit(tmp_path: Path) -> None:
    pid_app(tmp_path)
    args = serve_args("--workers", "1", "--limit-max-requests", "3", directory=tmp_path)
    async with running(*args, cwd=tmp_path) as server:
        (first,) = await server.ready_pids(1)
        port = await server.port()
        answered = [int((await get(port))[1]) for _ in range(6)]
        second = (await server.ready_pids(2))[1]
    # A connection accepted before the worker stopped accepting is served
    # too: with one client at a time, that is at most one more request.
    served_by_first = answered.count(first)
    assert answered[:3] == [first] * 3
    assert served_by_first in (3, 4)
    assert answered[served_by_first:] == [second] * (6 - served_by_first)
    assert "served 3 requests (--limit-max-requests): shutting down" in server.text
    assert f"worker {first} exited after its request limit" in server.text


@pytest.mark.process
async def test_workers_stop_by_themselves_when_the_supervisor_dies(
    tmp_path: Path,
) -> None:
    events = pid_app(tmp_path)
    async with running(
        *serve_args("--workers", "2", directory=tmp_path), cwd=tmp_path
    ) as server:
        workers = await server.ready_pids(2)
        server.process.kill()
        await server.wait_closed()  # every process writing to the pipe exited
    assert server.text.count("its parent is gone: stopping") == 2
    assert sorted(events.read_text().split()[1::2]) == sorted(map(str, workers))


@pytest.mark.process
async def test_only_the_supervisor_notifies_systemd(tmp_path: Path) -> None:
    pid_app(tmp_path)
    address = str(tmp_path / "notify")
    with trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        await systemd.bind(address)
        async with running(
            *serve_args("--workers", "2", directory=tmp_path),
            cwd=tmp_path,
            env={"NOTIFY_SOCKET": address},
        ) as server:
            with trio.fail_after(HANG):
                ready = await systemd.recv(4096)
            assert len(await server.ready_pids(2)) == 2  # both, before READY=1
            server.process.send_signal(signal.SIGTERM)
            with trio.fail_after(HANG):
                stopping = await systemd.recv(4096)
            assert await server.exit_status() == 0
            await server.wait_closed()
            # Nothing else was sent: the workers did not notify.
            with socket.socket(fileno=os.dup(systemd.fileno())) as raw:
                raw.setblocking(False)
                with pytest.raises(BlockingIOError):
                    raw.recv(4096)
    assert ready == b"READY=1\nSTATUS=2 workers serving"
    assert stopping.startswith(b"STOPPING=1\n")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trasgi", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=HANG * 2,
        check=False,
    )


def assert_one_error_line(
    result: subprocess.CompletedProcess[str], status: int, words: str
) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("trasgi:")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("trasgi: error: "), errors
    assert words in errors[0], errors


@pytest.mark.process
def test_workers_that_cannot_import_the_app_make_the_supervisor_give_up(
    tmp_path: Path,
) -> None:
    result = run_cli("nosuchmodule:app", "--workers", "2", "--port", "0", cwd=tmp_path)
    assert_one_error_line(
        result,
        1,
        "cannot load the application: could not import module 'nosuchmodule'",
    )
    assert "a worker failed to start 5 times in a row; giving up" in result.stderr


@pytest.mark.process
def test_workers_whose_lifespan_startup_fails_exit_3(tmp_path: Path) -> None:
    (tmp_path / "failing.py").write_text(
        textwrap.dedent(
            """
            async def app(scope, receive, send):
                await receive()
                await send({"type": "lifespan.startup.failed", "message": "no db"})
            """
        )
    )
    result = run_cli(
        "failing:app",
        "--workers",
        "2",
        "--port",
        "0",
        "--app-dir",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert_one_error_line(result, 3, "application startup failed: no db")


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], "--workers must be between 1 and 1024, got 0"),
        (["--workers", "2", "--metrics-port", "0"], "--metrics-port cannot be used"),
        (["--limit-max-requests", "0"], "--limit-max-requests must be between 1"),
        (["--limit-max-requests-jitter", "-1"], "must be between 0"),
    ],
)
def test_unworkable_worker_options_are_usage_errors(
    tmp_path: Path, args: list[str], words: str
) -> None:
    result = run_cli("examples.hello:app", "--app-dir", str(ROOT), *args, cwd=tmp_path)
    assert_one_error_line(result, 2, words)


def test_run_refuses_workers_it_cannot_start() -> None:
    import trasgi

    with pytest.raises(ValueError, match="use the command line"):
        trasgi.run("examples.hello:app", workers=2)


# -- --limit-max-requests in one process ---------------------------------------


async def test_one_server_stops_by_itself_after_its_request_limit() -> None:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    config = Config(limit_max_requests=2, lifespan="off")
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(serve_tcp, app, 0, host="127.0.0.1", config=config)
            )
            port = listeners[0].socket.getsockname()[1]
            assert (await get(port))[0] == 204
            assert (await get(port))[0] == 204
        # serve_tcp returned by itself: the nursery exited with no cancel.
    with pytest.raises(OSError, match="connect"):
        await trio.open_tcp_stream("127.0.0.1", port)


def test_the_request_budget_adds_a_jitter_within_its_bound() -> None:
    assert _request_budget(Config()) is None
    assert _request_budget(Config(limit_max_requests=5)) == 5
    config = Config(limit_max_requests=100, limit_max_requests_jitter=10)
    budgets = {_request_budget(config) for _ in range(500)}
    assert budgets == set(range(100, 111))  # 500 draws of 11 values: all seen


# -- a connection accepted just before a graceful shutdown -------------------


async def ok_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def test_a_new_connection_is_answered_when_shutdown_begins_before_its_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # During a rolling restart, an old worker may accept a connection just as
    # it begins to stop: its request, already on the way, must be answered.
    client, server = trio.testing.memory_stream_pair()
    shared = ServerShared()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            handle_connection, server, ok_app, Config(), ConnectionInfo(), shared
        )
        await trio.testing.wait_all_tasks_blocked()
        shared.begin_shutdown()
        await trio.sleep(NEW_CONNECTION_GRACE / 2)
        await client.send_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = await read_until_closed(client)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in raw.lower()


async def test_a_silent_new_connection_is_closed_soon_after_shutdown_begins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client, server = trio.testing.memory_stream_pair()
    shared = ServerShared()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            handle_connection, server, ok_app, Config(), ConnectionInfo(), shared
        )
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        shared.begin_shutdown()
        assert await read_until_closed(client) == b""
    # The grace, then the close: nothing was sent, so nothing is left unread
    # and there is no reason to linger.
    waited = trio.current_time() - started
    assert waited == pytest.approx(NEW_CONNECTION_GRACE)


# -- the how-to's commands ------------------------------------------------------

HOW_TO = ROOT / "docs" / "how-to" / "workers-and-reload.md"


def how_to_lines() -> list[str]:
    return [
        line
        for block in fenced_blocks(HOW_TO)
        if block.info == "sh"
        for line in block.code.splitlines()
        if line
    ]


def how_to_commands() -> list[str]:
    return [line for line in how_to_lines() if line.startswith("python -m trasgi ")]


def test_the_how_to_runs_every_command_but_two() -> None:
    others = [line for line in how_to_lines() if line not in how_to_commands()]
    # The SIGHUP is sent by test_sighup_replaces_...; installing is not run.
    assert others == ["kill -HUP 4100", "pip install -e '.[reload]'"]
    assert len(how_to_commands()) == 4


@pytest.mark.process
@pytest.mark.parametrize("command", how_to_commands())
async def test_each_how_to_command_serves_and_stops_on_sigterm(command: str) -> None:
    args = [*shlex.split(command)[3:], "--port", "0"]
    async with running(*args, cwd=ROOT) as server:
        port = await server.port()
        assert await get(port) == (200, b"Hello, world!")
        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status() == 0
        await server.wait_closed()
    assert "Traceback" not in server.text


async def test_the_control_channel_takes_two_senders_at_once() -> None:
    # A worker reports (ready, failed) from one task and answers health
    # checks from another; a message larger than the socket buffer keeps
    # the first send busy while the second one comes.
    ours, theirs = (
        Channel(trio.SocketStream(trio.socket.from_stdlib_socket(end)))
        for end in socket.socketpair()
    )
    large = {"event": "large", "padding": "x" * 500_000}
    async with ours.stream, theirs.stream, trio.open_nursery() as nursery:
        nursery.start_soon(ours.send, large)
        nursery.start_soon(ours.send, PONG)
        received = [await theirs.receive(), await theirs.receive()]
    assert sorted(received, key=str) == sorted([large, PONG], key=str)
