"""The scenarios: what each one loads, on which servers, and what it records.

A scenario runs once per round on each of its targets, each time on a freshly
started server: warm-up load first (not recorded), then the measured load,
then the server's memory. Its ``subject`` is the target the ratios are taken
for (trasgi, or trasgi_web for the framework scenario).

The HTTP/2 scenarios (``h2hello``, ``h2stall``, ``h2idle``) speak HTTP/2
with prior knowledge (h2c) on the plain port, to trasgi and to the trio
workers of hypercorn and anycorn; ``h2hello`` also to ``bare_h2.py``, the
ceiling of a server on trio and h2.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench_apps import ITEM_JSON
from harness import (
    BENCH,
    VENV_PYTHON,
    BenchError,
    H2Load,
    Load,
    Pinning,
    RunningServer,
    Target,
    check_import,
    memory_kib,
    pinned,
    probe,
    run_h2load,
    run_wrk,
)

MIB = 2**20
UPLOAD_BYTES = 10 * MIB
STALL_DOWNLOAD_BYTES = 10 * MIB
H2LOAD_MIN_REQUESTS = 1_000
IDLE_OPEN_SECONDS = 300.0


@dataclass(frozen=True)
class Settings:
    """How long to load each server, and with what."""

    duration: float
    warmup: float
    idle_connections: int
    pinning: Pinning
    h2_idle_connections: int = 2_000


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool = True
    digits: int = 0


Measure = Callable[[RunningServer, Settings], dict[str, float]]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    targets: tuple[Target, ...]
    metrics: tuple[Metric, ...]
    measure: Measure
    probe_path: str = "/"
    #: A JSON body to POST to ``probe_path`` instead of a GET.
    probe_json: str = ""
    subject: str = "trasgi"
    idle: bool = False
    requires: dict[str, str] = field(default_factory=dict)
    #: The load generators it runs (installed with apt-get when missing).
    tools: tuple[str, ...] = ("wrk",)
    http2: bool = False

    def unavailable(self, target: Target) -> str | None:
        """Why ``target`` cannot run here (a failed import), or None."""
        for code in (target.requires, self.requires.get(target.name)):
            failed = check_import(code) if code else None
            if failed:
                return failed
        return None

    def held(self, settings: Settings) -> int:
        """How many idle connections an idle scenario holds."""
        if self.http2:
            return settings.h2_idle_connections
        return settings.idle_connections


#: trasgi with llhttp: ``--http httptools`` (the ``trasgi[fast]`` extra).
TRASGI_HTTPTOOLS = Target(
    "trasgi-httptools",
    "trasgi",
    options=("--http", "httptools"),
    requires="import httptools",
)
#: uvicorn as its default install runs: httptools on uvloop.
UVICORN_HTTPTOOLS = Target(
    "uvicorn-httptools",
    "uvicorn",
    options=("--http", "httptools", "--loop", "uvloop"),
    requires="import httptools, uvloop",
)
#: hypercorn on AnyIO, on its trio backend: the other server on trio.
ANYCORN_TRIO = Target("anycorn-trio", "anycorn", requires="import anycorn, trio")
#: gunicorn's own ASGI worker (gunicorn 24 and later), one worker process.
GUNICORN_ASGI = Target(
    "gunicorn-asgi", "gunicorn", requires="import gunicorn.workers.gasgi"
)
SERVERS = (
    Target("trasgi", "trasgi"),
    TRASGI_HTTPTOOLS,
    Target("uvicorn-h11", "uvicorn"),
    UVICORN_HTTPTOOLS,
    Target("hypercorn-trio", "hypercorn"),
    ANYCORN_TRIO,
    GUNICORN_ASGI,
    Target("bare-h11", "bare-h11"),
    Target("bare-raw", "bare-raw"),
)
#: The WebSocket echo: trasgi and the wsproto-based peers.
WS_SERVERS = (
    Target("trasgi", "trasgi"),
    Target(
        "uvicorn-wsproto",
        "uvicorn",
        options=("--http", "h11", "--loop", "asyncio", "--ws", "wsproto"),
        requires="import wsproto",
    ),
    Target("hypercorn-trio", "hypercorn"),
)
FRAMEWORKS = (
    Target("trasgi_web", "trasgi", "bench_apps:trasgi_web_json", factory=True),
    Target("starlette", "trasgi", "bench_apps:starlette_json", factory=True),
    Target("plain-asgi", "trasgi", "bench_apps:app"),
)
#: The typed route (bench_typed.py), all served by trasgi.
TYPED = (
    Target("trasgi_web", "trasgi", "bench_typed:trasgi_web_typed", factory=True),
    Target("fastapi", "trasgi", "bench_typed:fastapi_typed", factory=True),
    Target("litestar", "trasgi", "bench_typed:litestar_typed", factory=True),
    Target("plain-asgi", "trasgi", "bench_typed:plain_typed"),
)
#: The servers of the HTTP/2 scenarios: hypercorn's and anycorn's trio
#: workers serve h2c with prior knowledge on a plain port by default.
H2_SERVERS = (
    Target("trasgi", "trasgi"),
    Target("hypercorn-trio", "hypercorn"),
    Target("anycorn-trio", "anycorn"),
)
H2_REQUIRES = {"anycorn-trio": "import anycorn, trio"}
TRASGI_WEB_CHECK = (
    "import trasgi_web\n"
    "if not hasattr(trasgi_web, 'App'):\n"
    "    raise SystemExit('trasgi_web has no App')"
)

#: The file scenario: trasgi by path send and by 64 KiB body messages, and
#: the peers with Starlette's FileResponse.
FILE_TARGETS = (
    Target("trasgi-pathsend", "trasgi", "bench_files:pathsend"),
    Target("trasgi-chunks", "trasgi", "bench_files:chunks"),
    Target("uvicorn-h11", "uvicorn", "bench_files:starlette_file", factory=True),
    Target("hypercorn-trio", "hypercorn", "bench_files:starlette_file", factory=True),
)

RPS = Metric("rps", "req/s")
P50 = Metric("p50_ms", "p50 latency, ms", higher_is_better=False, digits=2)
P99 = Metric("p99_ms", "p99 latency, ms", higher_is_better=False, digits=2)


def wrk_measure(load: Load) -> Measure:
    """Warm up, load with wrk, then read the server's memory."""

    def measure(server: RunningServer, settings: Settings) -> dict[str, float]:
        run_wrk(server, load, settings.warmup, settings.pinning)
        figures = run_wrk(server, load, settings.duration, settings.pinning)
        memory = memory_kib(server.pid)
        figures["rss_mib"] = memory["VmRSS"] / 1024
        figures["peak_rss_mib"] = memory["VmHWM"] / 1024
        if load.body_bytes:
            figures["upload_mib_s"] = figures["rps"] * load.body_bytes / MIB
        return figures

    return measure


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def file_measure(load: Load) -> Measure:
    """Download the file with wrk; MiB/s, and server CPU seconds per GiB."""

    def measure(server: RunningServer, settings: Settings) -> dict[str, float]:
        run_wrk(server, load, settings.warmup, settings.pinning)
        before = cpu_seconds(server.pid)
        started = time.monotonic()
        figures = run_wrk(server, load, settings.duration, settings.pinning)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.pid) - before
        gib = figures["mib_s"] * elapsed / 1024
        figures["cpu_s_per_gib"] = cpu / gib if gib else float("inf")
        return figures

    return measure


def h2load_measure(load: H2Load) -> Measure:
    """Warm up, load with h2load (h2c), then read the server's memory.

    h2load runs by count (see :func:`harness.run_h2load`): a short run
    gauges the rate, the warm-up is sized from it to last about ``warmup``
    seconds and the measured run from the warm-up's rate to last about
    ``duration`` seconds.
    """

    def measure(server: RunningServer, settings: Settings) -> dict[str, float]:
        pinning = settings.pinning
        gauge = run_h2load(server, load, H2LOAD_MIN_REQUESTS, pinning)
        warm = run_h2load(server, load, _count(gauge, settings.warmup), pinning)
        figures = run_h2load(server, load, _count(warm, settings.duration), pinning)
        _check_alive(server)
        memory = memory_kib(server.pid)
        figures["rss_mib"] = memory["VmRSS"] / 1024
        figures["peak_rss_mib"] = memory["VmHWM"] / 1024
        return figures

    return measure


def _count(figures: dict[str, float], seconds: float) -> int:
    """Requests for about ``seconds`` at the rate of ``figures``."""
    return max(H2LOAD_MIN_REQUESTS, round(figures["rps"] * seconds))


def _check_alive(server: RunningServer) -> None:
    if server.process.poll() is not None:
        raise BenchError(f"{server.target.name} exited: see {server.log.name}")


def measure_h2_stall(server: RunningServer, settings: Settings) -> dict[str, float]:
    """Stream B's download speed with a stalled sibling A, and without it.

    ``h2_stall_client.py`` does the work (see its docstring): alternating
    slices of ``duration`` seconds in all, after ``warmup`` seconds alone.
    """
    argv = [str(VENV_PYTHON), str(BENCH / "h2_stall_client.py")]
    argv += ["--port", str(server.port), "--size", str(STALL_DOWNLOAD_BYTES)]
    argv += ["--seconds", f"{settings.duration:g}", "--warmup", f"{settings.warmup:g}"]
    return _client_figures(argv, settings, "the stall client")


def _client_figures(argv: list[str], settings: Settings, name: str) -> dict[str, float]:
    """Run a load client pinned to the client CPU; its last line is JSON figures."""
    result = subprocess.run(
        pinned(argv, settings.pinning.client),
        capture_output=True,
        text=True,
        timeout=settings.duration + settings.warmup + 120,
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise BenchError(f"{name} failed: {result.stderr.strip()[-300:]}")
    figures: dict[str, float] = json.loads(lines[-1])
    if "error" in figures:
        raise BenchError(f"{name} failed: {figures['error']}")
    return figures


#: The WebSocket echo: messages of 1 KiB over 64 connections.
WS_CONNECTIONS = 64
WS_MESSAGE_BYTES = 1024


def measure_ws_echo(server: RunningServer, settings: Settings) -> dict[str, float]:
    """Echoed messages per second: ``ws_echo_client.py`` does the work.

    The client warms up for ``warmup`` seconds on the same connections, then
    counts for ``duration`` seconds (see its docstring).
    """
    argv = [str(VENV_PYTHON), str(BENCH / "ws_echo_client.py")]
    argv += ["--port", str(server.port), "--connections", str(WS_CONNECTIONS)]
    argv += ["--size", str(WS_MESSAGE_BYTES), "--seconds", f"{settings.duration:g}"]
    argv += ["--warmup", f"{settings.warmup:g}"]
    figures = _client_figures(argv, settings, "the echo client")
    _check_alive(server)
    figures["rss_mib"] = memory_kib(server.pid)["VmRSS"] / 1024
    return figures


def measure_idle(server: RunningServer, settings: Settings) -> dict[str, float]:
    """Server RSS before and after ``idle_connections`` idle keep-alive connections.

    Twenty requests first, so that what the first request loads lazily is
    in the "before" figure; the difference divided by the connections held
    is the memory one idle keep-alive connection costs.
    """
    for _ in range(20):
        probe(server, "/")
    return _hold_idle(server, settings, settings.idle_connections, http2=False)


def measure_h2_idle(server: RunningServer, settings: Settings) -> dict[str, float]:
    """Server RSS before and after idle HTTP/2 connections (SETTINGS exchanged).

    Twenty HTTP/2 requests first (h2load, two connections), so that the
    HTTP/2 code the server loads lazily is in the "before" figure.
    """
    warm = H2Load("/", connections=2, streams=1)
    argv = ["h2load", "-n20", f"-c{warm.connections}", f"-m{warm.streams}"]
    subprocess.run(
        pinned([*argv, server.url(warm.path)], settings.pinning.client),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return _hold_idle(server, settings, settings.h2_idle_connections, http2=True)


def _hold_idle(
    server: RunningServer, settings: Settings, count: int, *, http2: bool
) -> dict[str, float]:
    """RSS before and while ``idle_client.py`` holds ``count`` connections."""
    time.sleep(0.5)
    before = memory_kib(server.pid)["VmRSS"]
    argv = [str(VENV_PYTHON), str(BENCH / "idle_client.py"), "--port", str(server.port)]
    argv += ["--count", str(count)] + (["--http2"] if http2 else [])
    client = subprocess.Popen(
        pinned(argv, settings.pinning.client),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        ready, _, _ = select.select([client.stdout], [], [], IDLE_OPEN_SECONDS)
        if not ready:
            raise BenchError("the idle client did not open its connections in time")
        report = json.loads(client.stdout.readline() or "{}")
        time.sleep(1.0)
        after = memory_kib(server.pid)["VmRSS"]
    finally:
        client.stdin.close()
        _finish(client)
    return _idle_figures(report, before, after)


def _finish(client: subprocess.Popen[str]) -> None:
    try:
        client.wait(timeout=30)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait()


def _idle_figures(report: dict[str, int], before: int, after: int) -> dict[str, float]:
    opened = report.get("open", 0)
    if not opened:
        raise BenchError("the idle client opened no connection")
    return {
        "open": opened,
        "failed": report.get("failed", 0),
        "rss_before_mib": before / 1024,
        "rss_idle_mib": after / 1024,
        "kib_per_conn": (after - before) / opened,
    }


SCENARIOS = (
    Scenario(
        "keepalive",
        "Keep-alive hello, 64 connections",
        "Requests per second for a 13-byte response over 64 kept-alive "
        "connections: the per-request cost of parsing, the ASGI round trip and "
        "framing. Latency percentiles at 64 connections and resident memory "
        "after the run come from the same load.",
        SERVERS,
        (
            RPS,
            P50,
            P99,
            Metric("rss_mib", "RSS after, MiB", higher_is_better=False, digits=1),
        ),
        wrk_measure(Load("/", 64)),
    ),
    Scenario(
        "close",
        "Connection per request, 64 at a time",
        "Requests per second when every request arrives on a new connection "
        "(wrk sends Connection: close): accept, per-connection setup and "
        "teardown on top of one request.",
        SERVERS,
        (RPS,),
        wrk_measure(Load("/", 64, headers=("Connection: close",))),
    ),
    Scenario(
        "stream",
        "1 MiB streamed in 64 KiB chunks",
        "MiB per second of response body when the application streams 1 MiB "
        "in 16 messages of 64 KiB (chunked encoding), over 64 connections: "
        "the cost of each body message and of writing large buffers.",
        SERVERS,
        (Metric("mib_s", "MiB/s", digits=1),),
        wrk_measure(Load("/stream", 64)),
        probe_path="/stream",
    ),
    Scenario(
        "upload",
        "10 MiB upload read by the app",
        "MiB per second of request body when 16 connections POST 10 MiB each "
        "and the application reads it all: the receive path and its "
        "backpressure. The bare trio loop cannot read bodies and sits out.",
        tuple(t for t in SERVERS if t.name != "bare-raw"),
        (Metric("upload_mib_s", "MiB/s uploaded", digits=1),),
        wrk_measure(Load("/upload", 16, body_bytes=UPLOAD_BYTES)),
    ),
    Scenario(
        "c1000",
        "Keep-alive hello, 1,000 connections",
        "The keep-alive hello with 1,000 concurrent connections: throughput, "
        "p50/p99 latency (compare with the 64-connection row) and peak memory "
        "while a thousand connections are busy.",
        SERVERS,
        (
            RPS,
            P50,
            P99,
            Metric("peak_rss_mib", "peak RSS, MiB", higher_is_better=False, digits=1),
        ),
        wrk_measure(Load("/", 1000)),
    ),
    Scenario(
        "json",
        "JSON route, all on trasgi",
        "Requests per second for GET /json answering a small JSON object over "
        "64 kept-alive connections, all served by trasgi: written with "
        "trasgi_web, with Starlette, and as plain ASGI. The framework's own "
        "cost per request.",
        FRAMEWORKS,
        (RPS,),
        wrk_measure(Load("/json", 64)),
        probe_path="/json",
        subject="trasgi_web",
        requires={"trasgi_web": TRASGI_WEB_CHECK, "starlette": "import starlette"},
    ),
    Scenario(
        "typed",
        "Typed route, all on trasgi",
        "Requests per second for POST /typed?limit=5 with a five-field JSON "
        "body, validated against declared types and echoed as JSON, over 64 "
        "kept-alive connections, all served by trasgi: trasgi_web and "
        "Litestar with a msgspec Struct, FastAPI with a pydantic model, and "
        "plain ASGI checking the fields by hand.",
        TYPED,
        (RPS, P99),
        wrk_measure(Load("/typed?limit=5", 64, json_body=ITEM_JSON)),
        probe_path="/typed?limit=5",
        probe_json=ITEM_JSON,
        subject="trasgi_web",
        requires={
            "trasgi_web": TRASGI_WEB_CHECK,
            "fastapi": "import fastapi",
            "litestar": "import litestar",
        },
    ),
    Scenario(
        "wsecho",
        "WebSocket echo, 1 KiB messages over 64 connections",
        "Messages per second echoed when 64 WebSocket connections each send "
        "a 1 KiB binary message and wait for it to come back, again and "
        "again (no compression): frame parsing and writing, and the ASGI "
        "round trip of a message, on servers whose WebSockets are wsproto.",
        WS_SERVERS,
        (
            Metric("messages_s", "messages/s"),
            P50,
            P99,
            Metric("rss_mib", "RSS after, MiB", higher_is_better=False, digits=1),
        ),
        measure_ws_echo,
        tools=(),
    ),
    Scenario(
        "idle",
        "Idle keep-alive connections",
        "Resident memory per idle keep-alive connection: the server's RSS "
        "before and after a client opens the connections (one request "
        "each) and holds them open, divided by their number.",
        SERVERS,
        (
            Metric(
                "kib_per_conn", "KiB per connection", higher_is_better=False, digits=1
            ),
            Metric(
                "rss_idle_mib",
                "RSS holding them, MiB",
                higher_is_better=False,
                digits=1,
            ),
        ),
        measure_idle,
        idle=True,
    ),
    Scenario(
        "file",
        "100 MiB file download",
        "MiB per second of a 100 MiB file over 4 keep-alive connections, and "
        "the server's CPU seconds per GiB sent: trasgi by ASGI path send "
        "(os.sendfile) and by 64 KiB body messages, uvicorn and hypercorn "
        "with Starlette's FileResponse.",
        FILE_TARGETS,
        (
            Metric("mib_s", "MiB/s", digits=1),
            Metric("cpu_s_per_gib", "CPU s per GiB", higher_is_better=False, digits=2),
        ),
        file_measure(Load("/", 4)),
        subject="trasgi-pathsend",
        requires={
            "uvicorn-h11": "import starlette",
            "hypercorn-trio": "import starlette",
        },
    ),
    Scenario(
        "h2hello",
        "HTTP/2 hello (h2c), 10 connections of 10 streams",
        "Requests per second for the 13-byte hello over HTTP/2 with prior "
        "knowledge: h2load keeps 10 streams in flight on each of 10 "
        "connections. Framing, HPACK, flow control and a task per stream on "
        "top of the ASGI round trip; latency percentiles from h2load's "
        "per-request log.",
        (*H2_SERVERS, Target("bare-h2", "bare-h2")),
        (
            RPS,
            P50,
            P99,
            Metric("rss_mib", "RSS after, MiB", higher_is_better=False, digits=1),
        ),
        h2load_measure(H2Load("/", connections=10, streams=10)),
        requires=H2_REQUIRES,
        tools=("h2load",),
        http2=True,
    ),
    Scenario(
        "h2stall",
        "HTTP/2 download beside a stalled stream",
        "On one h2c connection, stream B downloads 10 MiB (acknowledging as "
        "it reads) while stream A, whose response the client never reads, "
        "holds a spent window: B's MiB/s with A stalled over B's MiB/s alone "
        "(same connection settings, alternating fresh connections). A server "
        "that lets one stream block the connection falls well below 1.",
        H2_SERVERS,
        (
            Metric("ratio", "stalled ÷ alone", digits=2),
            Metric("stalled_mib_s", "MiB/s, A stalled", digits=1),
            Metric("alone_mib_s", "MiB/s, alone", digits=1),
        ),
        measure_h2_stall,
        probe_path="/download?bytes=16",
        requires=H2_REQUIRES,
        tools=(),
        http2=True,
    ),
    Scenario(
        "h2idle",
        "Idle HTTP/2 connections",
        "Resident memory per idle HTTP/2 connection: the server's RSS before "
        "and after a client opens h2c connections (preface and SETTINGS "
        "exchanged, no stream) and holds them open, divided by their number.",
        H2_SERVERS,
        (
            Metric(
                "kib_per_conn", "KiB per connection", higher_is_better=False, digits=1
            ),
            Metric(
                "rss_idle_mib",
                "RSS holding them, MiB",
                higher_is_better=False,
                digits=1,
            ),
        ),
        measure_h2_idle,
        idle=True,
        requires=H2_REQUIRES,
        tools=("h2load",),
        http2=True,
    ),
)


def by_name(names: str | None) -> tuple[Scenario, ...]:
    """The scenarios named in a comma-separated list (all when None)."""
    if not names:
        return SCENARIOS
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise BenchError(f"unknown scenario(s) {unknown}; known: {sorted(known)}")
    return tuple(known[n] for n in wanted)
