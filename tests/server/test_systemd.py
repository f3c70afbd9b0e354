"""systemd: socket activation, sd_notify, and the units of the how-to page.

systemd itself is stood in for by real sockets: a datagram socket the test
binds and reads plays systemd's notify socket, and listening sockets moved to
descriptors 3, 4, ... before ``exec`` play the sockets of a ``.socket`` unit.
``systemd-analyze`` and ``systemd-socket-activate`` (Debian's ``systemd``
package, which ``.ci/run`` installs) check the page's units and commands.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from trasgi import Config, serve_listeners, serve_tcp
from trasgi._edge.activation import (
    PassedSocket,
    SocketActivationError,
    parse_listen_fds,
    take_listen_fds,
)
from trasgi._edge.listeners import open_listeners
from trasgi._server.notify import Notifier, notify_address, watchdog_interval

from ..helpers import (
    Receive,
    Send,
    require_tool,
    text_response,
)
from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "how-to" / "systemd.md"
NO_LIFESPAN = Config(lifespan="off")
#: Long enough for a Python process to start; short enough that a hang fails.
PROCESS_DEADLINE = 20.0


# -- the socket-activation variables, a pure parser ---------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ()),
        ({"LISTEN_FDS": "1"}, ()),
        ({"LISTEN_PID": "99", "LISTEN_FDS": "1"}, ()),  # another process's
        ({"LISTEN_PID": "42"}, ()),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "1"}, (PassedSocket(3, "unknown"),)),
        (
            {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"},
            (PassedSocket(3, "web"), PassedSocket(4, "admin")),
        ),
    ],
)
def test_listen_fds_are_read_for_this_process_only(
    environ: dict[str, str], expected: tuple[PassedSocket, ...]
) -> None:
    assert parse_listen_fds(environ, 42) == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LISTEN_PID": "me", "LISTEN_FDS": "1"}, "LISTEN_PID must be a process id"),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "0"}, "LISTEN_FDS must be a number"),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "-1"}, "LISTEN_FDS must be a number"),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "two"}, "LISTEN_FDS must be a number"),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "\u0663"}, "LISTEN_FDS must be a number"),
        ({"LISTEN_PID": "42", "LISTEN_FDS": "9" * 12}, "LISTEN_FDS must be a number"),
        (
            {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web"},
            "LISTEN_FDNAMES names 1 sockets but LISTEN_FDS is 2",
        ),
    ],
)
def test_malformed_listen_variables_are_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SocketActivationError, match=message) as caught:
        parse_listen_fds(environ, 42)
    assert caught.value.errno == errno.EINVAL


@pytest.mark.parametrize("pid_offset", [0, 1])
def test_the_variables_are_unset_once_read(pid_offset: int) -> None:
    environ = {
        "LISTEN_PID": str(os.getpid() + pid_offset),
        "LISTEN_FDS": "1",
        "LISTEN_FDNAMES": "web",
        "OTHER": "kept",
    }
    expected = (PassedSocket(3, "web"),) if pid_offset == 0 else ()
    assert take_listen_fds(environ) == expected
    assert environ == {"OTHER": "kept"}


def test_the_variables_are_unset_even_when_malformed() -> None:
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"}
    with pytest.raises(SocketActivationError):
        take_listen_fds(environ)
    assert environ == {}


# -- the notify variables -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "address"),
    [
        (None, None),
        ("", None),
        ("/run/systemd/notify", "/run/systemd/notify"),
        ("@trasgi/notify", "\0trasgi/notify"),
    ],
)
def test_notify_address(value: str | None, address: str | None) -> None:
    environ = {} if value is None else {"NOTIFY_SOCKET": value}
    assert notify_address(environ) == address


@pytest.mark.parametrize("value", ["run/notify", "@", "vsock:2:1234"])
def test_unsupported_notify_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="NOTIFY_SOCKET must be a path or @"):
        notify_address({"NOTIFY_SOCKET": value})


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 15.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "99"}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(
    environ: dict[str, str], interval: float | None
) -> None:
    assert watchdog_interval(environ, 42) == interval


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WATCHDOG_USEC": "0"}, "WATCHDOG_USEC must be a number of microseconds"),
        ({"WATCHDOG_USEC": "10s"}, "WATCHDOG_USEC must be a number of microseconds"),
        ({"WATCHDOG_USEC": "1", "WATCHDOG_PID": "x"}, "WATCHDOG_PID must be a"),
    ],
)
def test_malformed_watchdog_variables_are_refused(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        watchdog_interval(environ, 42)


# -- a fake systemd: a real notify socket -----------------------------------------


class FakeNotifySocket:
    """The receiving end of sd_notify: a bound AF_UNIX datagram socket."""

    def __init__(self, address: str) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        self.socket.setblocking(False)
        self.seen: list[dict[str, str]] = []

    def _read(self) -> dict[str, str]:
        data = self.socket.recv(4096)  # BlockingIOError when nothing is queued
        message = dict(line.split("=", 1) for line in data.decode().split("\n"))
        self.seen.append(message)
        return message

    async def receive(self) -> dict[str, str]:
        await trio.lowlevel.wait_readable(self.socket)
        return self._read()

    async def wait_for(self, name: str) -> dict[str, str]:
        """Read datagrams until one carries ``name``; return that one."""
        with trio.fail_after(PROCESS_DEADLINE):
            while True:
                message = await self.receive()
                if name in message:
                    return message

    def drain(self) -> list[dict[str, str]]:
        """Read whatever datagrams are already queued; return all seen."""
        with contextlib.suppress(BlockingIOError):
            while True:
                self._read()
        return self.seen

    def pings(self) -> int:
        return sum(1 for message in self.drain() if message == {"WATCHDOG": "1"})


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory whose paths fit the 108 bytes of a Unix socket address."""
    with tempfile.TemporaryDirectory(prefix="sd", dir="/tmp") as name:
        yield Path(name)


@pytest.fixture
def fake_systemd(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeNotifySocket]:
    address = str(short_dir / "notify")
    fake = FakeNotifySocket(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with fake.socket:
        yield fake


def gated_lifespan_app(gate: trio.Event) -> Callable[..., Any]:
    """An app whose lifespan startup waits for ``gate``; it answers ``up``."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await text_response(b"up")(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await gate.wait()
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


async def test_ready_after_the_lifespan_startup_and_stopping_at_shutdown(
    fake_systemd: FakeNotifySocket,
) -> None:
    gate = trio.Event()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(
                serve_tcp,
                gated_lifespan_app(gate),
                0,
                host="127.0.0.1",
                shutdown_trigger=stop.wait,
            )
        )
        await trio.testing.wait_all_tasks_blocked()
        assert fake_systemd.drain() == []  # the startup has not completed
        gate.set()
        ready = await fake_systemd.wait_for("READY")
        assert ready["READY"] == "1"
        found = re.fullmatch(r"serving on http://127\.0\.0\.1:(\d+)", ready["STATUS"])
        assert found is not None, ready
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{found[1]}/")
        assert response.text == "up"
        stop.set()
        stopping = await fake_systemd.wait_for("STOPPING")
    assert stopping == {
        "STOPPING": "1",
        "STATUS": "shutting down: waiting up to 25s for in-flight requests",
    }
    assert [sorted(message) for message in fake_systemd.drain()] == [
        ["READY", "STATUS"],
        ["STATUS", "STOPPING"],
    ]


async def test_an_abstract_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"trasgi-test-{os.getpid()}-{id(monkeypatch)}"
    fake = FakeNotifySocket("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    with fake.socket:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                partial(
                    serve_tcp, text_response(), 0, host="127.0.0.1", config=NO_LIFESPAN
                )
            )
            assert (await fake.wait_for("READY"))["READY"] == "1"
            nursery.cancel_scope.cancel()


async def test_watchdog_pings_at_half_the_interval_until_the_server_ends(
    fake_systemd: FakeNotifySocket,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")  # WatchdogSec=10
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                serve_tcp,
                text_response(),
                0,
                host="127.0.0.1",
                config=NO_LIFESPAN,
                shutdown_trigger=stop.wait,
            )
        )
        await trio.sleep(12)
        assert fake_systemd.pings() == 3  # at 0, 5 and 10 s
        stop.set()
    await trio.sleep(60)
    assert fake_systemd.pings() == 3


async def test_a_watchdog_meant_for_another_process_is_not_fed(
    fake_systemd: FakeNotifySocket,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_tcp, text_response(), 0, host="127.0.0.1", config=NO_LIFESPAN)
        )
        await trio.sleep(60)
        nursery.cancel_scope.cancel()
    assert [list(message) for message in fake_systemd.drain()] == [["READY", "STATUS"]]


async def test_an_unreachable_notify_socket_is_one_warning_and_serving_goes_on(
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_dir / "nobody"))
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(
                serve_tcp,
                text_response(b"still"),
                0,
                host="127.0.0.1",
                config=NO_LIFESPAN,
                shutdown_trigger=stop.wait,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "still"
        stop.set()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"cannot notify systemd at {short_dir / 'nobody'}: No such file or directory"
    ]


@pytest.mark.parametrize(
    ("variables", "warning", "ready"),
    [
        (
            {"NOTIFY_SOCKET": "notify"},
            "not notifying systemd: NOTIFY_SOCKET must be a path or "
            "@abstract-name, got 'notify'",
            False,
        ),
        (
            {"WATCHDOG_USEC": "soon"},
            "not pinging the systemd watchdog: WATCHDOG_USEC must be a number "
            "of microseconds, got 'soon'",
            True,
        ),
    ],
)
async def test_malformed_notify_variables_are_one_warning_each(
    fake_systemd: FakeNotifySocket,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    variables: dict[str, str],
    warning: str,
    ready: bool,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(serve_tcp, text_response(), 0, host="127.0.0.1", config=NO_LIFESPAN)
        )
        nursery.cancel_scope.cancel()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [warning]
    assert bool(fake_systemd.drain()) == ready


async def test_a_status_is_one_line(fake_systemd: FakeNotifySocket) -> None:
    notifier = Notifier.from_environ(os.environ, os.getpid())
    try:
        notifier.ready("two\nlines")
    finally:
        notifier.close()
    assert await fake_systemd.receive() == {"READY": "1", "STATUS": "two lines"}


def test_no_notify_socket_means_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environ({"WATCHDOG_USEC": "1000"}, os.getpid())
    assert notifier.watchdog_interval is None
    notifier.ready("nothing to tell")  # and nothing raised
    notifier.close()


# -- adopting the passed sockets ---------------------------------------------


def listening_socket(family: int, address: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(8)
    return sock


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
        return False
    return True


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_passed_sockets_replace_the_configured_listeners(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.error")
    path = str(short_dir / "http.sock")
    sockets = [
        listening_socket(socket.AF_INET, ("127.0.0.1", 0)),
        listening_socket(socket.AF_UNIX, path),
    ]
    if ipv6_available():
        sockets.append(listening_socket(socket.AF_INET6, ("::1", 0)))
    addresses = [sock.getsockname() for sock in sockets]
    # The listeners take the descriptors over: the test lets go of them.
    passed = [PassedSocket(sock.detach(), f"s{i}") for i, sock in enumerate(sockets)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # Were these used, the port in use would make opening fail.
        config = Config(host="127.0.0.1", port=port, bind=(f"127.0.0.1:{port}",))
        listeners = await open_listeners(config, passed)
    sockets_held = [
        listener.socket.fileno()
        for listener in listeners
        if isinstance(listener, trio.SocketListener)
    ]
    assert sockets_held == [one.fd for one in passed]
    assert not any(os.get_inheritable(one.fd) for one in passed)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(
                serve_listeners,
                text_response(b"adopted"),
                listeners,
                config=NO_LIFESPAN,
            )
        )
        for address in addresses:
            if isinstance(address, str):
                transport = httpx.AsyncHTTPTransport(uds=address)
                url = "http://localhost/"
            else:
                transport = httpx.AsyncHTTPTransport()
                host = f"[{address[0]}]" if ":" in address[0] else address[0]
                url = f"http://{host}:{address[1]}/"
            async with httpx.AsyncClient(transport=transport) as client:
                assert (await client.get(url)).text == "adopted"
        nursery.cancel_scope.cancel()
    assert not any(is_open(one.fd) for one in passed)  # closed with the listeners
    described = ", ".join(f"file descriptor {one.fd} ('{one.name}')" for one in passed)
    assert (
        f"socket activation: using {described} passed by systemd; --host, --port, "
        "--bind, --uds and --fd are not used"
    ) in caplog.messages


def unusable_descriptor(kind: str) -> int:
    if kind == "datagram":
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach()
    if kind == "not listening":
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM).detach()
    reading, writing = os.pipe()
    os.close(writing)
    if kind == "pipe":
        return reading
    os.close(reading)
    return reading  # closed: a number that names nothing


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("datagram", "which is not a listening stream socket: use ListenStream="),
        ("not listening", "which is not a listening stream socket: use ListenStream="),
        ("pipe", "which is not a socket: Socket operation on non-socket"),
        ("closed", "which is not a socket: Bad file descriptor"),
    ],
)
async def test_an_unusable_passed_descriptor_is_refused(
    kind: str, message: str
) -> None:
    good = listening_socket(socket.AF_INET, ("127.0.0.1", 0)).detach()
    bad = unusable_descriptor(kind)
    passed = [PassedSocket(good, "web"), PassedSocket(bad, "other")]
    with pytest.raises(SocketActivationError) as caught:
        await open_listeners(Config(), passed)
    assert str(caught.value.strerror).startswith(
        f"systemd passed file descriptor {bad} ('other'), {message}"
    )
    assert not is_open(good)  # the sockets adopted before are closed
    if kind != "closed":
        assert is_open(bad)  # not adopted: still the caller's
        os.close(bad)


# -- python -m trasgi, activated as systemd does it ---------------------------

#: Stands in for systemd between fork and exec: moves the passed sockets to
#: descriptors 3, 4, ..., names this process in LISTEN_PID and WATCHDOG_PID
#: (its id is known only here), then becomes ``python -m trasgi``.
ACTIVATE = textwrap.dedent(
    """
    import fcntl, os, sys
    fds = [int(fd) for fd in sys.argv[1].split(",") if fd]
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for fd in fds:
        os.close(fd)
    for index, fd in enumerate(high):
        os.dup2(fd, 3 + index)
        os.close(fd)
    os.environ["LISTEN_PID"] = os.environ["WATCHDOG_PID"] = str(os.getpid())
    os.execv(sys.executable, [sys.executable, "-m", "trasgi", *sys.argv[2:]])
    """
)

#: Reports what the process it runs in inherited.
REPORTING_APP = textwrap.dedent(
    """
    import json, os

    async def app(scope, receive, send):
        body = json.dumps({
            "variables": sorted(k for k in os.environ if k.startswith("LISTEN_")),
            "inheritable": os.get_inheritable(3),
        }).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    """
)


@pytest.fixture
async def activated(
    short_dir: Path,
) -> AsyncIterator[Callable[..., Any]]:
    """Start ``python -m trasgi`` with sockets passed; kill it if left running."""
    processes: list[trio.Process] = []

    async def start(
        sockets: list[socket.socket], env: dict[str, str], *args: str
    ) -> trio.Process:
        fds = [sock.fileno() for sock in sockets]
        process = await trio.lowlevel.open_process(
            [sys.executable, "-c", ACTIVATE, ",".join(map(str, fds)), *args],
            cwd=short_dir,
            env={**os.environ, **env},
            pass_fds=fds,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        for sock in sockets:
            sock.close()  # the child's now: the test keeps no copy
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_all(stream: trio.abc.ReceiveStream | None) -> str:
    return await read_until(stream, None)


async def read_until(stream: trio.abc.ReceiveStream | None, text: str | None) -> str:
    """Read until ``text`` has been seen, or to the end when it is None."""
    assert stream is not None
    data = bytearray()
    with trio.fail_after(PROCESS_DEADLINE):
        while text is None or text.encode() not in data:
            chunk = await stream.receive_some()
            if not chunk:
                assert text is None, f"ended before {text!r}: {data.decode()}"
                break
            data += chunk
    return data.decode()


@pytest.mark.process
async def test_python_m_trasgi_under_socket_activation(
    short_dir: Path,
    fake_systemd: FakeNotifySocket,
    activated: Callable[..., Any],
) -> None:
    (short_dir / "reporting.py").write_text(REPORTING_APP)
    path = str(short_dir / "http.sock")
    tcp = listening_socket(socket.AF_INET, ("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    unix = listening_socket(socket.AF_UNIX, path)
    environ = {
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "web:local",
        "WATCHDOG_USEC": "200000",  # a ping every 0.1 s
    }
    # --port names the port the passed socket holds: used, it would fail.
    process = await activated(
        [tcp, unix], environ, "reporting:app", "--lifespan", "off", "--port", str(port)
    )
    ready = await fake_systemd.wait_for("READY")
    assert ready["STATUS"] == f"serving on http://127.0.0.1:{port}, http+unix://{path}"
    for transport, url in [
        (httpx.AsyncHTTPTransport(), f"http://127.0.0.1:{port}/"),
        (httpx.AsyncHTTPTransport(uds=path), "http://localhost/"),
    ]:
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(url)
        assert response.json() == {"variables": [], "inheritable": False}
    for _ in range(2):
        await fake_systemd.wait_for("WATCHDOG")
    process.send_signal(signal.SIGTERM)
    stopping = await fake_systemd.wait_for("STOPPING")
    assert stopping["STOPPING"] == "1"
    with trio.fail_after(PROCESS_DEADLINE):
        assert await process.wait() == 0
    log = await read_all(process.stderr)
    assert (
        "socket activation: using file descriptor 3 ('web'), file descriptor 4 "
        "('local') passed by systemd" in log
    )


@pytest.mark.process
@pytest.mark.parametrize(
    ("environ", "kind", "error"),
    [
        (
            {"LISTEN_FDS": "x"},
            socket.SOCK_STREAM,
            "socket activation: LISTEN_FDS must be a number of sockets "
            "(1 or more), got 'x'",
        ),
        (
            {"LISTEN_FDS": "1"},
            socket.SOCK_DGRAM,
            "socket activation: systemd passed file descriptor 3 ('unknown'), "
            "which is not a listening stream socket: use ListenStream= with "
            "Accept=no",
        ),
    ],
)
async def test_unusable_activation_is_a_one_line_error(
    short_dir: Path,
    activated: Callable[..., Any],
    environ: dict[str, str],
    kind: int,
    error: str,
) -> None:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(1)
    (short_dir / "plain.py").write_text(
        "async def app(scope, receive, send):\n    pass\n"
    )
    process = await activated([sock], environ, "plain:app", "--lifespan", "off")
    log = await read_all(process.stderr)
    with trio.fail_after(PROCESS_DEADLINE):
        assert await process.wait() == 1
    assert log == f"trasgi: error: {error}\n"


# -- the how-to page -------------------------------------------------------------


def unit_files() -> dict[str, str]:
    """The page's unit files, by the name their first comment line gives."""
    units = {}
    for block in fenced_blocks(PAGE):
        first = block.code.splitlines()[0]
        if block.info == "ini" and first.startswith("# /etc/systemd/system/"):
            units[first.rpartition("/")[2]] = block.code
    return units


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections of key=value lines; a key may repeat (ListenStream=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def page_commands(program: str) -> list[str]:
    return [
        line
        for block in fenced_blocks(PAGE)
        if block.info == "sh"
        for line in block.code.splitlines()
        if line.startswith(program + " ")
    ]


def test_the_page_has_a_socket_and_a_service_unit() -> None:
    units = {name: parse_unit(text) for name, text in unit_files().items()}
    assert sorted(units) == ["trasgi.service", "trasgi.socket"]
    socket_unit = units["trasgi.socket"]["Socket"]
    assert socket_unit["ListenStream"]
    assert socket_unit.get("Accept", ["no"]) == ["no"]
    service = units["trasgi.service"]
    assert service["Unit"]["Requires"] == ["trasgi.socket"]
    settings = service["Service"]
    assert settings["Type"] == ["notify"]
    assert settings["KillSignal"] == ["SIGTERM"]
    assert settings.get("NotifyAccess", ["main"]) == ["main"]
    assert int(settings["WatchdogSec"][0]) > 0
    (command,) = settings["ExecStart"]
    words = shlex.split(command)
    assert words[1:3] == ["-m", "trasgi"]
    graceful = float(words[words.index("--timeout-graceful-shutdown") + 1])
    # systemd sends SIGKILL at TimeoutStopSec: the graceful deadline and the
    # lifespan shutdown must both fit before it.
    assert float(settings["TimeoutStopSec"][0]) >= graceful + 5


@pytest.mark.process
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    paths = []
    for name, text in unit_files().items():
        # ExecStart's program must exist: the interpreter running the tests
        # stands in for the page's virtual environment.
        text = text.replace("/srv/myapp/.venv/bin/python", sys.executable)
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    result = subprocess.run(
        [analyze, "verify", *paths],
        capture_output=True,
        text=True,
        timeout=PROCESS_DEADLINE,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.process
async def test_the_socket_activate_command_of_the_page_serves(
    short_dir: Path,
) -> None:
    (command,) = page_commands("systemd-socket-activate")
    (curl,) = set(page_commands("curl"))  # the same in both sections
    require_tool("systemd-socket-activate", "systemd")
    with socket.socket() as probe:  # a free port, for the page's 8000
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    words = shlex.split(command.replace(":8000", f":{port}"))
    words[words.index("python")] = sys.executable
    process = await trio.lowlevel.open_process(words, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        # It says when it listens; the first connection then starts trasgi,
        # and curl waits for its answer.
        log = await read_until(process.stderr, "Listening on")
        result = await trio.run_process(
            [*shlex.split(curl.replace(":8000", f":{port}")), "--max-time", "20"],
            capture_stdout=True,
            check=False,
        )
        assert (result.returncode, result.stdout) == (0, b"Hello, world!")
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(PROCESS_DEADLINE):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log += await read_all(process.stderr)
    assert "socket activation: using file descriptor 3 ('web')" in log
    assert "application shutdown complete" in log
