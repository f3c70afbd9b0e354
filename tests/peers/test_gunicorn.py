"""trasgi under a real gunicorn, run with the commands of ``docs/how-to/gunicorn.md``.

Every test starts the page's ``gunicorn -k trasgi.workers.TrasgiWorker``
command as a subprocess (on a free port, in a temporary directory) with
``tests/gunicorn_app.py``, which answers with the worker's process id and
records its lifespan events in a file. Then it sends the signals gunicorn's
users send and checks what the page says: both workers serve and run the
lifespan, reloads replace them, stops are graceful or quick, killed and
stuck workers are replaced, and a busy worker keeps its heartbeat. Every wait
is bounded, so a hang fails instead of stalling the suite.

The settings mapping is also tested directly, on gunicorn's own parser.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import os
import re
import shlex
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import gunicorn.config
import pytest

from trasgi import Config
from trasgi.workers import (
    _build_config,
    _tls_context,
    _unused_settings,
    _WorkerConfigError,
)

from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "how-to" / "gunicorn.md"
#: The page's commands run ``gunicorn``: the console script of this Python.
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
#: The page's application, and the one the tests serve instead.
PAGE_APP = "examples.hello:app"
APP = "tests.gunicorn_app:app"
#: gunicorn's configuration with the tests' worker_int and worker_abort hooks.
HOOKS = ("-c", "python:tests.gunicorn_app")
#: Booting, reloading and stopping each take well under this on loopback.
WAIT = 10.0
_BIND = re.compile(r"127\.0\.0\.1:\d+")


# -- the page ---------------------------------------------------------------------


def page_lines(info: str) -> list[str]:
    return [
        line
        for block in fenced_blocks(PAGE)
        if block.info == info
        for line in block.code.splitlines()
    ]


def page_command(*words: str) -> str:
    """The one shell line on the page that has all these words."""
    found = {
        line
        for line in page_lines("sh")
        if all(word in shlex.split(line) for word in words)
    }
    assert len(found) == 1, (words, found)
    return found.pop()


MAIN = page_command("gunicorn", "--pid")


def split_command(line: str, app: str) -> tuple[dict[str, str], list[str]]:
    """A page line as (environment assignments, argv), on a free port."""
    words = shlex.split(line)
    environment: dict[str, str] = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        environment[name] = value
    assert words[0] == "gunicorn", line
    assert words[-1] == PAGE_APP, line
    bind = words.index("-b") + 1
    assert _BIND.fullmatch(words[bind]), line
    words[bind] = "127.0.0.1:0"  # gunicorn logs the port it got
    return environment, [GUNICORN, *words[1:-1], app]


# -- a running gunicorn -------------------------------------------------------------


def wait_for(condition: Callable[[], object], what: str, within: float = WAIT) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what} after {within}s")


@attrs.define
class Gunicorn:
    process: subprocess.Popen[bytes]
    directory: Path
    workers: int
    tls: ssl.SSLContext | None = None
    port: int = 0

    @property
    def log(self) -> str:
        return (self.directory / "gunicorn.err").read_text(errors="replace")

    def events(self) -> list[tuple[str, int]]:
        path = self.directory / "events"
        lines = path.read_text().split("\n") if path.exists() else []
        return [(name, int(pid)) for name, pid in map(str.split, filter(None, lines))]

    def pids_with(self, event: str) -> set[int]:
        return {pid for name, pid in self.events() if name == event}

    def connect(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(
                "localhost", self.port, timeout=WAIT, context=self.tls
            )
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)

    def get(self, path: str = "/") -> str:
        """One request on a new connection; the body, after checking for 200."""
        connection = self.connect()
        try:
            connection.request("GET", path, headers={"Connection": "close"})
            response = connection.getresponse()
            body = response.read().decode()
        finally:
            connection.close()
        assert response.status == 200, (response.status, body)
        return body

    def worker_pids(self, count: int) -> set[int]:
        """Ask until ``count`` different workers have answered."""
        seen: set[int] = set()

        def all_seen() -> bool:
            seen.add(int(self.get()))
            return len(seen) >= count

        wait_for(all_seen, f"{count} workers to answer")
        return seen

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_status(self) -> int:
        return self.process.wait(timeout=WAIT)


def environment(directory: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        # gunicorn's control socket goes in $XDG_RUNTIME_DIR or $HOME.
        "HOME": str(directory),
        "XDG_RUNTIME_DIR": str(directory),
        "PYTHONPATH": str(ROOT),
        "GUNICORN_APP_EVENTS": str(directory / "events"),
        **extra,
    }


def launch(
    directory: Path, line: str, options: tuple[str, ...], app: str, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    assignments, argv = split_command(line, app)
    with (
        open(directory / "gunicorn.out", "wb") as out,
        open(directory / "gunicorn.err", "wb") as err,
    ):
        return subprocess.Popen(
            [*argv[:-1], *options, argv[-1]],
            cwd=directory,
            env=environment(directory, {**assignments, **env}),
            stdout=out,
            stderr=err,
        )


@contextmanager
def running(
    directory: Path,
    *options: str,
    line: str = MAIN,
    app: str = APP,
    env: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Iterator[Gunicorn]:
    """gunicorn, once every worker listens; stopped (or killed) at the end."""
    process = launch(directory, line, options, app, env or {})
    argv = [*shlex.split(line), *options]
    last = len(argv) - 1 - argv[::-1].index("-w")
    server = Gunicorn(process, directory, int(argv[last + 1]), tls)
    try:
        found = wait_for(
            lambda: (
                process.poll() is None
                and re.search(r"Listening at: https?://127\.0\.0\.1:(\d+)", server.log)
            ),
            "gunicorn to listen",
        )
        server.port = int(found.group(1))
        wait_for(
            lambda: server.log.count("] listening on http") >= server.workers,
            "every worker to listen",
        )
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_to_exit(
    directory: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """gunicorn that is expected to stop by itself: its status and log."""
    process = launch(directory, MAIN, options, APP, env or {})
    try:
        status = process.wait(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return status, (directory / "gunicorn.err").read_text(errors="replace")


def is_gone(pid: int) -> bool:
    """Whether a process has exited (or is a zombie its new parent has not reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def request_in_flight(server: Gunicorn, path: str) -> socket.socket:
    """A raw connection whose request the application is handling."""
    client = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
    client.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    wait_for(lambda: server.pids_with("slow"), "the request to reach the application")
    return client


def read_all(client: socket.socket) -> bytes:
    data = b""
    with client:
        while chunk := client.recv(65536):
            data += chunk
    return data


# -- workers, lifespan, stops --------------------------------------------------------


@pytest.mark.process
def test_two_workers_serve_each_with_its_lifespan(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        pids = server.worker_pids(2)
        assert server.pids_with("startup") == pids
        assert "Using worker: trasgi.workers.TrasgiWorker" in server.log
        server.send(signal.SIGTERM)
        assert server.exit_status() == 0
    assert server.pids_with("shutdown") == pids
    for pid in pids:  # trasgi's lines, through gunicorn's error log
        assert f"[{pid}] [INFO] application shutdown complete" in server.log
    assert "Traceback" not in server.log
    # gunicorn's access log is off unless asked for, and so is trasgi's.
    assert "GET /" not in server.log + (tmp_path / "gunicorn.out").read_text()


@pytest.mark.process
def test_sigterm_lets_a_request_in_flight_finish(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1", "--graceful-timeout", "8") as server:
        client = request_in_flight(server, "/slow?1.5")
        [pid] = server.pids_with("slow")
        server.send(signal.SIGTERM)
        response = read_all(client)
        assert server.exit_status() == 0
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(str(pid).encode())
    assert server.events()[-1] == ("shutdown", pid)


@pytest.mark.process
def test_sigquit_stops_at_once_cancelling_requests(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1", *HOOKS) as server:
        client = request_in_flight(server, "/slow?60")
        [pid] = server.pids_with("slow")
        started = time.monotonic()
        server.send(signal.SIGQUIT)
        response = read_all(client)
        assert server.exit_status() == 0
    assert time.monotonic() - started < 5
    assert response == b""  # cancelled: the connection closes without a response
    assert ("worker_int", pid) in server.events()
    assert not server.pids_with("shutdown")  # a quick stop skips the lifespan


@pytest.mark.process
def test_sighup_replaces_the_workers(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        old = server.worker_pids(2)
        server.send(signal.SIGHUP)
        wait_for(lambda: server.pids_with("shutdown") == old, "the old workers to stop")
        new = server.worker_pids(2)
    assert not new & old
    assert server.pids_with("startup") == old | new


@pytest.mark.process
def test_a_killed_worker_is_replaced(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        pids = server.worker_pids(2)
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: f"Worker (pid:{victim}) was sent SIGKILL" in server.log,
            "gunicorn to see the worker die",
        )
        [replacement] = wait_for(
            lambda: server.pids_with("startup") - pids, "a new worker"
        )
        assert server.worker_pids(2) == pids - {victim} | {replacement}


@pytest.mark.process
def test_max_requests_restarts_the_worker(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1", "--max-requests", "3") as server:
        answers = [int(server.get()) for _ in range(7)]
    runs = [list(run) for _, run in itertools.groupby(answers)]
    assert len({run[0] for run in runs}) == len(runs) >= 2, answers
    # A worker stops accepting once its third request starts; connections
    # it took while the stop reached its accept loop (a few scheduler trips;
    # a request already sent is answered in one) are still served: graceful.
    assert all(3 <= len(run) <= 5 for run in runs[:-1]), answers
    first = answers[0]
    assert f"[{first}] [INFO] trasgi worker: --max-requests: 3 requests served" in (
        server.log
    )
    assert ("shutdown", first) in server.events()


@pytest.mark.process
def test_the_master_being_gone_stops_the_worker(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1") as server:
        pid = int(server.get())
        server.process.kill()
        server.process.wait()
        wait_for(lambda: ("shutdown", pid) in server.events(), "a graceful stop")
        wait_for(lambda: is_gone(pid), "the worker to exit")
    assert "parent changed: shutting down gracefully" in server.log


# -- the heartbeat -------------------------------------------------------------------


@pytest.mark.process
def test_a_worker_awaiting_longer_than_the_timeout_is_not_killed(
    tmp_path: Path,
) -> None:
    with running(tmp_path, "-w", "1", "--timeout", "2") as server:
        pid = server.get()
        assert server.get("/slow?4") == pid
    assert "WORKER TIMEOUT" not in server.log


@pytest.mark.process
def test_a_worker_whose_event_loop_is_stuck_is_replaced(tmp_path: Path) -> None:
    with running(tmp_path, "-w", "1", "--timeout", "2", *HOOKS) as server:
        pid = int(server.get())
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            server.get("/block?8")
        assert int(server.get()) != pid
    assert f"WORKER TIMEOUT (pid:{pid})" in server.log
    assert f"Worker (pid:{pid}) exited with code 1" in server.log
    assert ("worker_abort", pid) in server.events()


@pytest.mark.process
def test_only_the_arbiter_notifies_systemd(tmp_path: Path) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.setblocking(False)
    with (
        notify,
        running(tmp_path, env={"NOTIFY_SOCKET": str(tmp_path / "notify")}) as server,
    ):
        old = server.worker_pids(2)
        server.send(signal.SIGHUP)  # the old workers stop: no STOPPING=1
        wait_for(lambda: server.pids_with("shutdown") == old, "the old workers to stop")
        server.send(signal.SIGTERM)
        assert server.exit_status() == 0
        messages = []
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(notify.recv(4096))
    assert messages == [b"READY=1\nSTATUS=Gunicorn arbiter booted"]


# -- logs --------------------------------------------------------------------------


@pytest.mark.process
def test_access_lines_go_to_the_access_log_reopened_on_sigusr1(tmp_path: Path) -> None:
    line = page_command("--access-logfile")
    access_log = tmp_path / "access.log"
    with running(tmp_path, line=line, app=PAGE_APP) as server:
        server.get("/before")
        wait_for(lambda: "/before" in access_log.read_text(), "the access line")
        access_log.rename(tmp_path / "rotated.log")
        server.send(signal.SIGUSR1)

        def logged_in_new_file() -> bool:
            server.get("/after")
            return access_log.exists() and "/after" in access_log.read_text()

        wait_for(logged_in_new_file, "an access line in the reopened file")
    assert '"GET /before HTTP/1.1" 200 13 ' in (tmp_path / "rotated.log").read_text()


# -- settings ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files ``python -m trustme`` writes, as the TLS how-to makes them."""
    directory = tmp_path_factory.mktemp("certificates")
    subprocess.run(
        [sys.executable, "-m", "trustme"], cwd=directory, check=True, timeout=WAIT
    )
    return directory


@pytest.mark.process
def test_every_gunicorn_command_on_the_page_serves(
    tmp_path: Path, certificates: Path
) -> None:
    lines = [line for line in page_lines("sh") if "gunicorn -k" in line]
    assert len(lines) == 4
    for number, line in enumerate(lines):
        directory = tmp_path / str(number)
        directory.mkdir()
        tls = None
        if "--certfile" in line:
            for name in ("server.pem", "server.key"):
                (directory / name).write_bytes((certificates / name).read_bytes())
            tls = ssl.create_default_context(cafile=str(certificates / "client.pem"))
        with running(directory, line=line, app=PAGE_APP, tls=tls) as server:
            assert server.get() == "Hello, world!"
            server.send(signal.SIGTERM)
            assert server.exit_status() == 0, server.log


@pytest.mark.process
def test_the_page_kill_commands_reload_and_stop(tmp_path: Path) -> None:
    def kill(signame: str) -> None:
        command = page_command("kill", f"-{signame}")
        subprocess.run(["sh", "-c", command], cwd=tmp_path, check=True, timeout=WAIT)

    with running(tmp_path) as server:
        old = server.worker_pids(2)
        kill("HUP")
        wait_for(lambda: server.pids_with("shutdown") == old, "the old workers to stop")
        assert not server.worker_pids(2) & old
        kill("TERM")
        assert server.exit_status() == 0


@pytest.mark.process
def test_usr2_upgrades_without_refusing_connections(tmp_path: Path) -> None:
    upgrade, stop_old = page_command("kill", "-USR2"), page_command("kill", "-TERM")
    pidfile = tmp_path / "gunicorn.pid"
    new_master = 0
    try:
        with running(tmp_path) as server:
            old = server.worker_pids(2)
            subprocess.run(["sh", "-c", upgrade], cwd=tmp_path, check=True)
            wait_for(lambda: len(server.pids_with("startup")) == 4, "new workers")
            new_master = int((tmp_path / "gunicorn.pid.2").read_text())
            subprocess.run(["sh", "-c", stop_old], cwd=tmp_path, check=True)
            # Requests keep being answered while the old arbiter stops.
            wait_for(
                lambda: server.get() and server.process.poll() is not None,
                "the old arbiter to exit",
            )
            assert server.exit_status() == 0
            wait_for(
                lambda: pidfile.exists() and pidfile.read_text() == f"{new_master}\n",
                "the new arbiter to take over gunicorn.pid",
            )
            assert not server.worker_pids(2) & old
            assert server.pids_with("shutdown") == old
    finally:
        if new_master:
            os.kill(new_master, signal.SIGTERM)
            wait_for(lambda: is_gone(new_master), "the new arbiter to stop")


@pytest.mark.process
def test_a_certfile_without_a_certificate_stops_gunicorn(tmp_path: Path) -> None:
    (tmp_path / "server.pem").write_text("not a certificate\n")
    status, log = run_to_exit(tmp_path, "--certfile", "server.pem")
    assert status == 1
    expected = "Error: trasgi worker: --certfile server.pem: no valid PEM certificate"
    assert expected in page_lines("text")
    assert [line for line in log.splitlines() if "Error" in line] == [expected]
    assert "Booting worker" not in log


@pytest.mark.process
def test_a_trasgi_variable_for_a_gunicorn_setting_stops_gunicorn(
    tmp_path: Path,
) -> None:
    status, log = run_to_exit(tmp_path, env={"TRASGI_PORT": "9000"})
    assert status == 1
    expected = (
        "Error: trasgi worker: TRASGI_PORT is not used under gunicorn: use "
        "gunicorn's --bind"
    )
    assert expected in page_lines("text")
    assert [line for line in log.splitlines() if "Error" in line] == [expected]


@pytest.mark.process
def test_a_failed_lifespan_startup_stops_gunicorn(tmp_path: Path) -> None:
    # One worker: when two fail at once, gunicorn reports the second failure
    # with a traceback of its own while it halts (its arbiter, not trasgi).
    status, log = run_to_exit(
        tmp_path, "-w", "1", env={"GUNICORN_APP_FAIL_STARTUP": "1"}
    )
    assert status == 3  # gunicorn's "worker failed to boot"
    assert "trasgi worker: application startup failed: no db" in log
    assert "Reason: Worker failed to boot." in log
    assert "Traceback" not in log


@pytest.mark.process
def test_https_with_gunicorns_certfile(tmp_path: Path, certificates: Path) -> None:
    options = [
        *("--certfile", str(certificates / "server.pem")),
        *("--keyfile", str(certificates / "server.key")),
    ]
    tls = ssl.create_default_context(cafile=str(certificates / "client.pem"))
    with running(tmp_path, *options, tls=tls) as server:
        assert server.worker_pids(2) == server.pids_with("startup")
    assert "] listening on https://127.0.0.1:" in server.log


# -- the settings mapping, on gunicorn's own parser -----------------------------------


def gunicorn_settings(*argv: str) -> Any:
    """gunicorn's Config, from command-line options, as gunicorn builds it."""
    settings = gunicorn.config.Config()
    parsed = settings.parser().parse_args([*argv, APP])
    for name, value in vars(parsed).items():
        if value is not None and name != "args":
            settings.set(name.lower(), value)
    return settings


def trasgi_config(*argv: str, environ: dict[str, str] | None = None) -> Config:
    """The Config a worker serves with, after the checks it makes at boot."""
    config = _build_config(gunicorn_settings(*argv), None, environ or {})
    _tls_context(config)
    return config


def test_gunicorns_defaults_become_trasgis_options() -> None:
    config = trasgi_config()
    assert config.timeout_keep_alive == 2.0
    assert config.timeout_graceful_shutdown == 30
    assert config.limit_request_line == 4094
    assert config.limit_request_fields == 100
    assert config.forwarded_allow_ips == "127.0.0.1,::1,unix"
    assert config.proxy_headers is True
    assert config.proxy_protocol == "off"
    assert config.access_log is False
    assert config.log_level == "info"
    assert config.ssl_certfile is None


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--keep-alive", "7"], {"timeout_keep_alive": 7.0}),
        (["--keep-alive", "0"], {"limit_requests_per_connection": 1}),
        (["--graceful-timeout", "5"], {"timeout_graceful_shutdown": 5}),
        (["--limit-request-line", "0"], {"limit_request_line": 2**20}),
        (["--limit-request-fields", "0"], {"limit_request_fields": 10_000}),
        (["--limit-request-fields", "30000"], {"limit_request_fields": 10_000}),
        (["--forwarded-allow-ips", "*"], {"forwarded_allow_ips": "*,unix"}),
        (["--proxy-protocol", "v2"], {"proxy_protocol": "v2"}),
        (["--proxy-protocol", "auto"], {"proxy_protocol": "any"}),
        (["--root-path", "/api"], {"root_path": "/api"}),
        (["--log-level", "DEBUG"], {"log_level": "debug"}),
        (["--access-logfile", "-"], {"access_log": True}),
        (["--backlog", "64"], {"backlog": 64}),
    ],
)
def test_gunicorn_settings_map_to_trasgi_options(
    argv: list[str], expected: dict[str, Any]
) -> None:
    config = trasgi_config(*argv)
    assert {name: getattr(config, name) for name in expected} == expected


@pytest.mark.process
def test_tls_settings_map_to_trasgi_options(certificates: Path) -> None:
    certfile, keyfile, cafile = (
        str(certificates / name) for name in ("server.pem", "server.key", "client.pem")
    )
    config = trasgi_config(
        *("--certfile", certfile, "--keyfile", keyfile, "--ca-certs", cafile),
        *("--cert-reqs", "2", "--ciphers", "ECDHE+AESGCM"),
    )
    assert (config.ssl_certfile, config.ssl_keyfile) == (certfile, keyfile)
    assert (config.ssl_ca_certs, config.ssl_cert_reqs) == (cafile, "required")
    assert config.ssl_ciphers == "ECDHE+AESGCM"


def test_trasgi_variables_set_the_other_options() -> None:
    config = trasgi_config(
        environ={
            "TRASGI_WS_MAX_SIZE": "1024",
            "TRASGI_PROXY_HEADERS": "off",
            "TRASGI_TIMEOUT_HEADER_READ": "5",
        }
    )
    assert config.ws_max_size == 1024
    assert config.proxy_headers is False
    assert config.timeout_header_read == 5.0


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (
            [],
            {"TRASGI_TIMEOUT_KEEP_ALIVE": "3"},
            "TRASGI_TIMEOUT_KEEP_ALIVE is not used under gunicorn: use gunicorn's "
            "--keep-alive",
        ),
        (
            [],
            {"TRASGI_WORKERS": "4"},
            "TRASGI_WORKERS is not used under gunicorn: use gunicorn's --workers",
        ),
        (
            [],
            {"TRASGI_APP": "main:app"},
            "TRASGI_APP is not used under gunicorn: the application is gunicorn's "
            "APP_MODULE argument",
        ),
        (
            [],
            {"TRASGI_TIMEOUT_HEADER_READ": "0"},
            "TRASGI_TIMEOUT_HEADER_READ 0.0: timeout_header_read must be between",
        ),
        (
            ["--limit-request-line", "5"],
            {},
            "--limit-request-line 5: limit_request_line must be between 16 and",
        ),
        (
            ["--keyfile", "server.key"],
            {},
            "--keyfile needs --certfile (TLS is off without it)",
        ),
        (
            ["--proxy-protocol", "--proxy-allow-from", "10.0.0.1"],
            {},
            "--proxy-protocol needs --proxy-allow-from equal to "
            "--forwarded-allow-ips: trasgi trusts one list of proxies for both",
        ),
    ],
)
def test_settings_trasgi_cannot_use_are_refused_in_one_line(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(_WorkerConfigError) as raised:
        trasgi_config(*argv, environ=environ)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_unknown_trasgi_variables_are_only_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert trasgi_config(environ={"TRASGI_NOPE": "1"}).port == Config().port
    assert "TRASGI_NOPE: unknown option, ignored" in caplog.text


def test_unused_gunicorn_settings_are_named() -> None:
    assert _unused_settings(gunicorn_settings()) == []
    [warning] = _unused_settings(gunicorn_settings("--limit-request-field_size", "99"))
    assert warning.startswith(
        "--limit-request-field_size is not used by trasgi's worker: trasgi bounds "
        "the whole request head"
    )
