"""Prometheus metrics of one server, served by trasgi itself on a second port.

Four metrics, in a registry of the server's own (so two servers in one
process do not collide):

* ``trasgi_requests_total`` counts responses by ``method`` and ``status``;
  methods outside the standard set are counted as ``other``, so that clients
  cannot create time series at will (there is no path label, for the same
  reason);
* ``trasgi_request_duration_seconds``, a histogram of the time from the
  request head to the end of the response;
* ``trasgi_connections_open`` and ``trasgi_requests_in_flight``, gauges read
  when Prometheus scrapes, not updated on every request.

The counts come from the connection's one observer call per response (see
``_observe/access.py``). The scrape endpoint is a tiny ASGI application served by
trasgi's own connection handler in a trio task, rather than by
prometheus_client's threaded HTTP server: no thread reads the counters while
the trio thread writes them. It also exposes prometheus_client's default
registry, where its process collector and the application's own metrics live.

prometheus-client is an optional dependency, the ``metrics`` extra (``pip
install -e '.[metrics]'`` in a checkout of trasgi), imported only when a
metrics port is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import trio

from trasgi._asgi import Receive, Scope, Send
from trasgi._config.config import Config
from trasgi._edge.listeners import connection_info, describe_listener
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._observe.access import AccessRecord, SilentObserver
from trasgi._observe.logs import error_logger
from trasgi._server.beside import tasks_beside

if TYPE_CHECKING:
    import prometheus_client

#: What to run when prometheus-client is missing.
INSTALL_HINT = "pip install -e '.[metrics]' in a checkout of trasgi"
#: Where Prometheus looks by default (its scrape_config's metrics_path).
METRICS_PATH = "/metrics"
#: The methods of RFC 9110 section 9 and PATCH (RFC 5789); any other method is
#: counted as "other": label values must be a small, fixed set.
STANDARD_METHODS = frozenset(
    {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS"}
    | {b"TRACE", b"PATCH"}
)
_OTHER_METHOD = b"other"


class MetricsUnavailable(ImportError):
    """A metrics port is set but prometheus-client is not installed."""


class MetricsListenError(OSError):
    """The metrics port cannot be opened.

    Attributes:
        where: The address, ``HOST:PORT``.
    """

    where: str


def import_prometheus() -> ModuleType:
    """Import prometheus_client.

    Error handling:
        Raises :class:`MetricsUnavailable`, saying what to install, when it
        is missing.
    """
    try:
        import prometheus_client
    except ImportError:
        raise MetricsUnavailable(
            f"--metrics-port needs the prometheus-client package: {INSTALL_HINT}"
        ) from None
    return prometheus_client


class ServerMetrics:
    """The metrics of one server, and the ASGI application that exposes them."""

    def __init__(self, shared: ServerShared) -> None:
        prometheus = import_prometheus()
        self._prometheus = prometheus
        self.registry = prometheus.CollectorRegistry()
        self._requests = prometheus.Counter(
            "trasgi_requests",
            "Responses sent, by request method and status code.",
            ("method", "status"),
            registry=self.registry,
        )
        self._duration = prometheus.Histogram(
            "trasgi_request_duration_seconds",
            "Time from the request head to the end of the response.",
            registry=self.registry,
        )
        self._open_connections: Callable[[], int] = lambda: 0
        prometheus.Gauge(
            "trasgi_connections_open",
            "Client connections open now.",
            registry=self.registry,
        ).set_function(lambda: self._open_connections())
        prometheus.Gauge(
            "trasgi_requests_in_flight",
            "Requests being handled now.",
            registry=self.registry,
        ).set_function(lambda: shared.in_flight)
        self.registry.register(_HTTP2Collector(shared, prometheus))
        # The labelled child of each (method, status) seen: looking it up in
        # prometheus_client takes a lock and builds a key every time.
        self._counters: dict[tuple[bytes, int], prometheus_client.Counter] = {}

    def count_connections_of(self, handler_nursery: trio.Nursery) -> None:
        """Count open connections as the tasks of the server's handler nursery.

        Each accepted connection is one task there, whatever its listener
        (TCP, Unix socket, TLS), for as long as it is open.
        """
        self._open_connections = lambda: len(handler_nursery.child_tasks)

    def on_response(self, record: AccessRecord) -> None:
        """Count one response and its duration."""
        method = record.method if record.method in STANDARD_METHODS else _OTHER_METHOD
        key = (method, record.status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._requests.labels(method.decode("ascii"), str(record.status))
            self._counters[key] = counter
        counter.inc()
        self._duration.observe(record.duration)

    def exposition(self) -> bytes:
        """The text the scrape endpoint returns.

        This server's metrics, then prometheus_client's default registry
        (process metrics, the application's own).
        """
        generate = self._prometheus.generate_latest
        text: bytes = generate(self.registry) + generate(self._prometheus.REGISTRY)
        return text

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The scrape endpoint: ``GET /metrics``."""
        headers: list[tuple[bytes, bytes]] = []
        if scope["type"] != "http":
            return  # the metrics server runs no lifespan and no WebSocket
        if scope["path"] != METRICS_PATH:
            status, body = 404, f"not found; metrics are at {METRICS_PATH}\n".encode()
        elif scope["method"] not in ("GET", "HEAD"):
            status, body = 405, b"method not allowed; use GET\n"
            headers.append((b"allow", b"GET, HEAD"))
        else:
            status, body = 200, self.exposition()
            content_type = self._prometheus.CONTENT_TYPE_LATEST.encode("ascii")
            headers.append((b"content-type", content_type))
        if status != 200:
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})


class _HTTP2Collector:
    """HTTP/2's counters, read from the server's shared counts when scraped."""

    _FAMILIES = (
        ("trasgi_http2_streams", "HTTP/2 streams opened by clients.", "streams"),
        (
            "trasgi_http2_resets_sent",
            "HTTP/2 streams reset by the server (refused, aborted, stalled).",
            "resets_sent",
        ),
        (
            "trasgi_http2_resets_received",
            "HTTP/2 streams reset by clients.",
            "resets_received",
        ),
        ("trasgi_http2_goaways_sent", "HTTP/2 GOAWAY frames sent.", "goaways_sent"),
        (
            "trasgi_http2_goaways_received",
            "HTTP/2 GOAWAY frames received.",
            "goaways_received",
        ),
    )

    def __init__(self, shared: ServerShared, prometheus: ModuleType) -> None:
        self._shared = shared
        self._family = prometheus.metrics_core.CounterMetricFamily

    def collect(self) -> Iterator[Any]:
        counts = self._shared.h2
        for name, documentation, attribute in self._FAMILIES:
            yield self._family(name, documentation, value=getattr(counts, attribute))


#: The metrics port's connections: plain HTTP requests, no WebSocket.
_SCRAPE_CONFIG = Config(ws="none", lifespan="off")


@contextlib.asynccontextmanager
async def serving_metrics(
    config: Config, shared: ServerShared
) -> AsyncIterator[ServerMetrics | None]:
    """Serve ``config.metrics_port`` while the body runs; yield the metrics.

    Yields None, and serves nothing, when no metrics port is set.

    Error handling:
        :class:`MetricsUnavailable` without prometheus-client;
        :class:`MetricsListenError` when the port cannot be opened. Both are
        raised before the body runs. An exception of the body leaves as itself,
        not in an exception group.

    Resource handling:
        The listener and the scrape connections close when the body ends.
    """
    if config.metrics_port is None:
        yield None
        return
    metrics = ServerMetrics(shared)
    listeners = await _open_metrics_listeners(config.metrics_host, config.metrics_port)
    async with tasks_beside() as nursery:
        await nursery.start(_serve_metrics, metrics, listeners)
        yield metrics


async def _open_metrics_listeners(host: str, port: int) -> list[trio.SocketListener]:
    try:
        return await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        error = MetricsListenError(exc.errno, exc.strerror)
        error.where = f"{host}:{port}"
        raise error from exc


async def _serve_metrics(
    metrics: ServerMetrics,
    listeners: list[trio.SocketListener],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    # Scrapes are neither logged nor counted: every 15 s, they would drown
    # the access log and skew the request metrics.
    shared = ServerShared(observer=SilentObserver())

    async def handle(stream: trio.abc.Stream) -> None:
        await handle_connection(
            stream, metrics.app, _SCRAPE_CONFIG, connection_info(stream), shared
        )

    async with trio.open_nursery() as nursery:
        started = await nursery.start(trio.serve_listeners, handle, listeners)
        for listener in started:
            error_logger.info(
                "serving metrics on %s%s", describe_listener(listener), METRICS_PATH
            )
        task_status.started()
