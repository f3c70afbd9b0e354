"""The plumbing under the scenarios: venv, wrk, h2load, servers, pinning, RSS.

Everything here uses the standard library only, so ``bench/run.py`` runs with
any Python 3.10+ that has ``venv``; the servers, the bare loops and the idle
client run in ``bench/.venv``, which :func:`ensure_venv` creates.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
VENV = BENCH / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
RESULTS = BENCH / "results"
LOGS = RESULTS / "logs"
WRK_SCRIPT = BENCH / "wrk_report.lua"
HOST = "127.0.0.1"
#: The bare reference loops, by target name: trio with h11, raw bytes, h2.
BARE_SCRIPTS = {
    "bare-h11": "bare_h11.py",
    "bare-raw": "bare_raw.py",
    "bare-h2": "bare_h2.py",
}
#: Servers that speak only HTTP/2: the HTTP/1.1 route check skips them
#: (h2load reports any answer that is not 2xx).
HTTP2_ONLY = frozenset({"bare-h2"})

#: What the bench venv holds besides the project itself (installed editable).
REQUIREMENTS = (
    "uvicorn",
    # uvicorn's default install (uvicorn[standard]) parses with httptools on
    # uvloop; trasgi --http httptools uses the same parser.
    "httptools",
    "uvloop",
    # gunicorn's own ASGI worker (gunicorn -k asgi, from gunicorn 24 on).
    "gunicorn",
    "hypercorn[trio]",
    "anycorn",
    "h2",
    # The WebSocket echo scenario's load client (ws_echo_client.py).
    "websockets",
    "starlette",
    # The typed scenario's peers, served by trasgi on trio (both run on
    # AnyIO, which has a trio backend).
    "fastapi",
    "litestar",
    "matplotlib",
    "py-spy",
)
#: Distributions whose versions are recorded with every run.
RECORDED = (
    "trasgi",
    "uvicorn",
    "httptools",
    "uvloop",
    "gunicorn",
    "websockets",
    "wsproto",
    "hypercorn",
    "anycorn",
    "starlette",
    "fastapi",
    "litestar",
    "pydantic",
    "msgspec",
    "trio",
    "anyio",
    "h11",
    "h2",
    "py-spy",
)
#: The load generators, by command: the Debian package that provides each.
TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client"}
_STAMP = VENV / "bench-requirements.json"

#: Keep-alive and header-read timeouts for the idle scenario, long enough
#: that no server closes an idle connection while the measurement runs.
IDLE_TIMEOUT_SECONDS = "600"
READY_SECONDS = 30.0
H2LOAD_TIMEOUT_SECONDS = 300.0
STOP_SECONDS = 10.0


class BenchError(RuntimeError):
    """A step of the benchmark could not be carried out."""


# -- setup ------------------------------------------------------------------


def ensure_venv() -> None:
    """Create ``bench/.venv`` and install the peers and the project (editable)."""
    if not VENV_PYTHON.exists():
        print(f"bench: creating {VENV.relative_to(REPO)}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = json.dumps({"requirements": REQUIREMENTS, "project": str(REPO)})
    if _STAMP.exists() and _STAMP.read_text() == wanted:
        return
    print(
        "bench: installing " + ", ".join(REQUIREMENTS) + " and the project", flush=True
    )
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *REQUIREMENTS, "-e", str(REPO)], check=True)
    _STAMP.write_text(wanted)


def ensure_tools(commands: Iterable[str]) -> None:
    """Install the Debian package of each load generator missing from the PATH."""
    for command in dict.fromkeys(commands):
        ensure_tool(command)


def ensure_tool(command: str) -> None:
    """Install Debian's package for ``command`` (see TOOLS) if it is missing."""
    if shutil.which(command):
        return
    package = TOOLS[command]
    if os.geteuid() != 0:
        raise BenchError(
            f"{command} is missing: install it (apt-get install {package}) "
            "or run as root"
        )
    print(f"bench: installing {package} with apt-get", flush=True)
    quiet = subprocess.DEVNULL
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=quiet)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package], check=True, stdout=quiet
    )
    if not shutil.which(command):
        raise BenchError(f"apt-get install {package} did not put {command} on the PATH")


def raise_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (children inherit it)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def serve_bare(handle: Callable[[Any], Awaitable[None]], description: str) -> None:
    """Run a bare reference server: ``--host``/``--port``, trio's ``serve_tcp``.

    The two bare loops (``bare_h11.py``, ``bare_raw.py``) differ only in
    ``handle``, the task of one connection; this is the rest of them.
    """
    import argparse
    import functools

    import trio

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    raise_file_limit()
    serve = functools.partial(
        trio.serve_tcp, handle, args.port, host=args.host, backlog=2048
    )
    try:
        trio.run(serve)
    except BaseException as exc:  # Ctrl-C, possibly grouped by a nursery
        if not _only_interrupts(exc):
            raise


def _only_interrupts(exc: BaseException) -> bool:
    """Whether ``exc`` is KeyboardInterrupt, alone or grouped by a nursery."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_interrupts(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)


def venv_versions() -> dict[str, str]:
    """The versions of the recorded distributions in the bench venv."""
    code = (
        "import json, importlib.metadata as m\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return 'missing'\n"
        f"print(json.dumps({{n: v(n) for n in {RECORDED!r}}}))"
    )
    out = subprocess.run(
        [str(VENV_PYTHON), "-c", code], check=True, capture_output=True, text=True
    )
    versions: dict[str, str] = json.loads(out.stdout)
    versions["python"] = python_version()
    versions["wrk"] = _wrk_version()
    versions["h2load"] = _h2load_version()
    return versions


def python_version() -> str:
    out = subprocess.run(
        [str(VENV_PYTHON), "--version"], check=True, capture_output=True, text=True
    )
    return out.stdout.split()[-1]


def _wrk_version() -> str:
    if not shutil.which("wrk"):
        return "missing"
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).split("[")[0].strip()


def _h2load_version() -> str:
    if not shutil.which("h2load"):
        return "missing"
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True)
    return out.stdout.strip().removeprefix("h2load ")


def server_env() -> dict[str, str]:
    """Environment for every server: the working tree and bench/ importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(BENCH)])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def check_import(code: str) -> str | None:
    """Run ``code`` in the bench venv as a server would; the error, or None."""
    result = subprocess.run(
        [str(VENV_PYTHON), "-c", code],
        capture_output=True,
        text=True,
        env=server_env(),
        cwd=REPO,
    )
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"


def source_state() -> dict[str, str]:
    """The commit checked out and a hash of the server's and framework's code.

    The working tree is measured as it is, so a change to ``trasgi/`` or
    ``trasgi_web/`` during a run shows as a different hash at the end.
    """
    digest = hashlib.sha256()
    for package in ("trasgi", "trasgi_web"):
        for path in sorted((REPO / package).glob("**/*.py")):
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(path.read_bytes())
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {"commit": commit or "unknown", "code_sha256": digest.hexdigest()[:16]}


# -- CPU pinning ------------------------------------------------------------


@dataclass(frozen=True)
class Pinning:
    """Which CPU the server and which the load generator run on (None: any)."""

    server: str | None
    client: str | None

    @classmethod
    def detect(cls) -> Pinning:
        if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
            return cls(server="0", client="1")
        print("bench: fewer than 2 CPUs or no taskset: not pinning", flush=True)
        return cls(server=None, client=None)


def pinned(argv: Sequence[str], cpu: str | None) -> list[str]:
    """Prefix ``argv`` with ``taskset -c CPU`` (taskset execs, keeping the pid)."""
    return ["taskset", "-c", cpu, *argv] if cpu is not None else list(argv)


# -- servers ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One server running one application: a column of the results.

    Attributes:
        name: The column label (``trasgi``, ``uvicorn-h11``, ``starlette``...).
        server: Which server: trasgi, uvicorn, hypercorn, anycorn, gunicorn,
            bare-h11 or bare-raw or bare-h2 (hypercorn and anycorn run their
            trio worker, gunicorn its ASGI worker).
        app: ``MODULE:ATTRIBUTE`` in ``bench/`` (ignored by the bare loops).
        factory: Call the attribute to get the application.
        options: The server's options that make this variant: for trasgi,
            added to its command line (``--http httptools``); for uvicorn, in
            place of :data:`UVICORN_H11` (its parser, loop and WebSocket
            library).
        requires: Python run in the bench venv that fails where the target
            cannot run (a peer that did not install); empty: always runs.
    """

    name: str
    server: str
    app: str = "bench_apps:app"
    factory: bool = False
    options: tuple[str, ...] = ()
    requires: str = ""


#: uvicorn as the h11 peer: pure-Python parsing on asyncio's own loop.
UVICORN_H11 = ("--http", "h11", "--loop", "asyncio")


def server_argv(target: Target, port: int, *, idle: bool) -> list[str]:
    """The command line that starts ``target`` on ``port``."""
    py = str(VENV_PYTHON)
    if target.server == "trasgi":
        argv = [py, "-m", "trasgi", target.app, "--host", HOST, "--port", str(port)]
        argv += ["--no-access-log", "--log-level", "warning"]
        argv += ["--factory"] if target.factory else []
        argv += target.options
        keep = ["--timeout-keep-alive", IDLE_TIMEOUT_SECONDS]
        return argv + (
            [*keep, "--timeout-header-read", IDLE_TIMEOUT_SECONDS] if idle else []
        )
    if target.server == "uvicorn":
        argv = [py, "-m", "uvicorn", target.app, "--host", HOST, "--port", str(port)]
        argv += [*(target.options or UVICORN_H11), "--no-access-log"]
        argv += ["--log-level", "warning"] + (["--factory"] if target.factory else [])
        return argv + (["--timeout-keep-alive", IDLE_TIMEOUT_SECONDS] if idle else [])
    if target.server in ("hypercorn", "anycorn"):
        # anycorn is a fork of hypercorn on AnyIO: the same command line, and
        # ``-k trio`` runs it on AnyIO's trio backend. Both serve h2c with
        # prior knowledge on a plain port by default.
        app = target.app + ("()" if target.factory else "")
        argv = [py, "-m", target.server, "-k", "trio", "-w", "0", "--backlog", "2048"]
        argv += ["--bind", f"{HOST}:{port}", "--log-level", "warning"]
        return argv + (["--keep-alive", IDLE_TIMEOUT_SECONDS] if idle else []) + [app]
    if target.server == "gunicorn":
        return _gunicorn_argv(target, port, idle=idle)
    bare = {
        "bare-h11": "bare_h11.py",
        "bare-raw": "bare_raw.py",
        "bare-h2": "bare_h2.py",
    }
    if target.server in bare:
        script = BENCH / bare[target.server]
        return [py, str(script), "--host", HOST, "--port", str(port)]
    raise BenchError(f"unknown server {target.server!r}")


def _gunicorn_argv(target: Target, port: int, *, idle: bool) -> list[str]:
    """gunicorn's own ASGI worker, one process, as ``gunicorn -k asgi`` runs it.

    Its defaults choose the loop (uvloop when installed) and the parser; the
    connection cap is raised past the 1,000-connection and idle scenarios.
    """
    app = target.app + ("()" if target.factory else "")
    argv = [str(VENV_PYTHON), "-m", "gunicorn", "-k", "asgi", "-w", "1"]
    argv += ["--bind", f"{HOST}:{port}", "--backlog", "2048"]
    argv += ["--worker-connections", "20000", "--log-level", "warning"]
    keep = ["--keep-alive", IDLE_TIMEOUT_SECONDS, "--timeout", IDLE_TIMEOUT_SECONDS]
    return argv + (keep if idle else []) + [app]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RunningServer:
    target: Target
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        """The process that serves: gunicorn's worker rather than its arbiter.

        Memory, CPU time and profiles are read from it.
        """
        if self.target.server != "gunicorn":
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        workers = children.read_text().split()
        if len(workers) != 1:
            raise BenchError(f"gunicorn runs {len(workers)} workers, not one")
        return int(workers[0])

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"


@contextlib.contextmanager
def running_server(
    target: Target, pinning: Pinning, *, idle: bool = False
) -> Iterator[RunningServer]:
    """Start ``target`` in its own process group; stop the whole group after."""
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{target.name}.log"
    argv = pinned(server_argv(target, port, idle=idle), pinning.server)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env=server_env(),
            start_new_session=True,
        )
    server = RunningServer(target, process, port, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop_group(process)


def _wait_ready(server: RunningServer) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"{server.target.name} exited: {_log_tail(server.log)}")
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, server.port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise BenchError(f"{server.target.name} did not listen within {READY_SECONDS:.0f}s")


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(no output)"


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
            return


def probe(server: RunningServer, path: str, json_body: str = "") -> int:
    """Send one GET (or a POST of ``json_body``) and return the status.

    It checks the route before loading it.
    """
    conn = http.client.HTTPConnection(HOST, server.port, timeout=10)
    try:
        if json_body:
            headers = {"Content-Type": "application/json"}
            conn.request("POST", path, json_body.encode(), headers)
        else:
            conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (peak resident) of ``pid``, in KiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    if "VmRSS" not in fields:
        raise BenchError(f"process {pid} has no memory: it exited")
    return fields


# -- wrk --------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """One wrk run: how many connections, for how long, and what to send."""

    path: str = "/"
    connections: int = 64
    headers: tuple[str, ...] = ()
    body_bytes: int = 0
    #: A JSON document POSTed with every request (the typed scenario).
    json_body: str = ""


def run_wrk(
    server: RunningServer, load: Load, seconds: float, pinning: Pinning
) -> dict[str, float]:
    """Run wrk against ``server`` and return its figures.

    Returns requests/s, MiB/s, latency percentiles in milliseconds, and the
    count of errors of every kind.
    """
    argv = ["wrk", "-t1", f"-c{load.connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--latency", "--timeout", "10s", "-s", str(WRK_SCRIPT)]
    for header in load.headers:
        argv += ["-H", header]
    argv.append(server.url(load.path))
    env = dict(
        os.environ,
        BENCH_BODY_BYTES=str(load.body_bytes),
        BENCH_JSON_BODY=load.json_body,
    )
    result = subprocess.run(
        pinned(argv, pinning.client),
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + 60,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return _wrk_figures(json.loads(line.removeprefix("BENCH_JSON ")))
    raise BenchError(f"wrk failed: {result.stderr.strip() or result.stdout.strip()}")


def _wrk_figures(raw: dict[str, float]) -> dict[str, float]:
    seconds = raw["duration_us"] / 1e6
    errors = sum(
        raw[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors")
    )
    return {
        "requests": raw["requests"],
        "rps": raw["requests"] / seconds,
        "mib_s": raw["bytes"] / seconds / 2**20,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "timeouts": raw["timeouts"],
    }


# -- h2load -------------------------------------------------------------------


@dataclass(frozen=True)
class H2Load:
    """One h2load run: HTTP/2 with prior knowledge (h2c) on a plain port.

    Attributes:
        path: The path every request asks for.
        connections: Client connections (``-c``).
        streams: Concurrent streams on each connection (``-m``).
    """

    path: str = "/"
    connections: int = 10
    streams: int = 10


def run_h2load(
    server: RunningServer, load: H2Load, requests: int, pinning: Pinning
) -> dict[str, float]:
    """Run h2load for ``requests`` requests against ``server``; its figures.

    A count, not a duration (``-n``, not ``-D``): at the end of a timed run
    h2load closes its connections with streams in flight, and hypercorn's
    trio worker dies of that (trio's BusyResourceError: its close sends EOF
    while a response is being written). Counted runs end with no stream open.

    Returns requests/s, latency percentiles in milliseconds (from h2load's
    per-request log) and the count of failed, errored and timed-out requests.
    """
    LOGS.mkdir(parents=True, exist_ok=True)
    per_request = LOGS / f"h2load-{server.target.name}.tsv"
    per_request.unlink(missing_ok=True)
    argv = ["h2load", "-t1", f"-c{load.connections}", f"-m{load.streams}"]
    argv += [f"-n{requests}", f"--log-file={per_request}"]
    argv.append(server.url(load.path))
    try:
        result = subprocess.run(
            pinned(argv, pinning.client),
            capture_output=True,
            text=True,
            timeout=H2LOAD_TIMEOUT_SECONDS,
        )
        figures = _h2load_figures(result.stdout)
        if figures is None or result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise BenchError("h2load failed: " + " / ".join(tail))
        figures.update(_latencies(per_request))
        return figures
    finally:
        per_request.unlink(missing_ok=True)


def _h2load_figures(output: str) -> dict[str, float] | None:
    """Requests/s and error counts from h2load's summary, None if it has none."""
    figures: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("finished in "):
            # finished in 3.00s, 12345.67 req/s, 1.23MB/s
            figures["rps"] = float(line.split(",")[1].split()[0])
        elif line.startswith("requests: "):
            # requests: N total, N started, N done, N succeeded, N failed, ...
            counts = {
                part.split()[1]: float(part.split()[0])
                for part in line.removeprefix("requests: ").split(", ")
            }
            figures["requests"] = counts.get("succeeded", 0.0)
            figures["errors"] = counts.get("failed", 0.0) + counts.get("errored", 0.0)
            figures["timeouts"] = counts.get("timeout", 0.0)
    return figures if "rps" in figures and "requests" in figures else None


def _latencies(per_request: Path) -> dict[str, float]:
    """p50, p90, p99 and max of the third column of h2load's log (µs), in ms."""
    durations = sorted(
        int(line.split("\t")[2])
        for line in per_request.read_text().splitlines()
        if line.count("\t") >= 2
    )
    if not durations:
        return {}

    def at(fraction: float) -> float:
        index = min(len(durations) - 1, int(fraction * len(durations)))
        return durations[index] / 1000

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": durations[-1] / 1000,
    }
