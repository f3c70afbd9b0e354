"""Listeners, lifespan and graceful shutdown: the server around the connections.

The shape of a server's life, in one nursery:

1. the lifespan startup runs before any connection is accepted;
2. ``task_status.started(listeners)`` reports the listeners to the caller;
3. connections are accepted and each handled in the *handler nursery*;
4. when the shutdown trigger fires, the listeners close at once, idle
   connections close, and the handler nursery gets a deadline: graceful
   shutdown is that one deadline, not a polling loop;
5. the lifespan shutdown runs.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._edge.accept import accept_loop
from trasgi._edge.activation import take_listen_fds
from trasgi._edge.listeners import connection_info, describe_listener, open_listeners
from trasgi._edge.tls import (
    build_server_context,
    complete_handshake,
    with_tls,
)
from trasgi._exits import FORCED_EXIT_STATUS
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._observe.access import ResponseObserver
from trasgi._observe.logs import error_logger, format_client, tracing
from trasgi._observe.trace import trace_asgi, trace_connections
from trasgi._server.beside import tasks_beside
from trasgi._server.interfaces import as_asgi3
from trasgi._server.lifespan import lifespan
from trasgi._server.metrics import serving_metrics
from trasgi._server.notify import Notifier, notifying_systemd

ShutdownTrigger = Callable[[], Awaitable[object]]


async def serve_tcp(
    app: ASGIApp,
    port: int,
    *,
    host: str | None = None,
    config: Config | None = None,
    shutdown_trigger: ShutdownTrigger | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over HTTP on a TCP port.

    Use it as ``listeners = await nursery.start(trasgi.serve_tcp, app, 0)``:
    the listeners are reported once the lifespan startup is complete and
    connections are being accepted (port 0 picks a free port; read it from
    ``listeners[0].socket.getsockname()``). With ``config.ssl_certfile`` the
    server speaks HTTPS, and the listeners are :class:`trio.SSLListener`
    (the socket is ``listeners[0].transport_listener.socket``).

    Args:
        app: The ASGI 3 application.
        port: The TCP port; 0 for any free port.
        host: The address to bind; ``None`` binds every interface, as
            :func:`trio.open_tcp_listeners` does. The CLI passes ``config.host``.
        config: Server options; the defaults when omitted.
        shutdown_trigger: An async callable; when it returns, a graceful
            shutdown begins and ``serve_tcp`` returns once it is over. Without
            one, ``serve_tcp`` serves until cancelled.
        task_status: Reported by :meth:`trio.Nursery.start`.

    Error handling:
        :class:`OSError` when the port cannot be bound;
        :class:`~trasgi.LifespanFailure` when the application's startup fails;
        :class:`ValueError` naming the option when the TLS options cannot
        work (a missing file, a key that does not fit the certificate);
        an error naming ``--interface`` when ``config.interface`` is
        ``"auto"`` and the application's signature fits no kind, or several.

    Resource handling:
        Cancelling stops the server at once: listeners and connections are
        closed, in-flight requests are cancelled and the lifespan shutdown is
        skipped. Use ``shutdown_trigger`` for a graceful stop.
    """
    config = config or Config()
    context = build_server_context(config)  # before binding: errors come first
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=config.backlog)
    await serve_listeners(
        app,
        with_tls(listeners, context),
        config=config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


async def serve_listeners(
    app: ASGIApp,
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
    *,
    config: Config | None = None,
    shutdown_trigger: ShutdownTrigger | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on already open listeners (TCP, Unix, TLS or in-memory).

    Behaves as :func:`serve_tcp` once the listeners exist; the listeners are
    closed when the server stops, and reported through ``task_status``. With
    ``config.metrics_port`` set, Prometheus metrics are served there from
    before the lifespan startup to after its shutdown. Under systemd
    (``NOTIFY_SOCKET`` set), it sends ``READY=1`` when it reports the
    listeners, ``STOPPING=1`` when the graceful shutdown begins, and
    ``WATCHDOG=1`` pings when ``WatchdogSec=`` asks for them.
    """
    config = config or Config()
    shared = ServerShared(request_budget=_request_budget(config))
    if tracing():  # decided once: no cost per message when trace is off
        app = trace_asgi(app)
    async with (
        _closing_on_failure(listeners),
        # --interface: ASGI 2 and WSGI applications become ASGI 3 ones here,
        # after the line above, so that the listeners close if it refuses.
        contextlib.nullcontext(as_asgi3(app, config.interface)) as app,
        notifying_systemd() as notifier,
        serving_metrics(config, shared) as metrics,
        lifespan(app, config.lifespan, shared.state),
        _handling(shared, config) as handler_nursery,
    ):
        shared.observer = ResponseObserver.for_format(
            config.access_log_format, () if metrics is None else (metrics,)
        )
        if metrics is not None:
            metrics.count_connections_of(handler_nursery)
        await _accept_until_shutdown(
            app,
            list(listeners),
            config,
            shared,
            handler_nursery,
            shutdown_trigger,
            task_status,
            notifier,
        )
        notifier.stopping(
            f"shutting down: waiting up to {config.timeout_graceful_shutdown:g}s "
            "for in-flight requests"
        )
        # Graceful shutdown: idle connections close, responses carry
        # Connection: close, streaming responses waiting in receive() get
        # http.disconnect, and whatever still runs at the deadline is
        # cancelled.
        shared.begin_shutdown()
        handler_nursery.cancel_scope.deadline = (
            trio.current_time() + config.timeout_graceful_shutdown
        )
        error_logger.info(
            "shutting down: waiting up to %gs for %d in-flight requests",
            config.timeout_graceful_shutdown,
            shared.in_flight_at_shutdown,
        )


@contextlib.asynccontextmanager
async def _handling(
    shared: ServerShared, config: Config
) -> AsyncIterator[trio.Nursery]:
    """The handler nursery; once it is over, the graceful shutdown's last line.

    The line comes before the lifespan shutdown: how many requests were in
    flight when shutdown began, and how many were cancelled at its deadline.
    """
    async with trio.open_nursery() as handler_nursery:
        yield handler_nursery
    cancelled = shared.cancelled
    error_logger.log(
        logging.WARNING if cancelled else logging.INFO,
        "connections closed: %d requests were in flight when shutdown began, "
        "%d cancelled at the %gs deadline",
        shared.in_flight_at_shutdown,
        cancelled,
        config.timeout_graceful_shutdown,
    )


@contextlib.asynccontextmanager
async def _closing_on_failure(
    listeners: Sequence[trio.abc.Listener[trio.abc.Stream]],
) -> AsyncIterator[None]:
    """Close the listeners when the server fails before serving them.

    trio.serve_listeners closes them once it runs; before that (a failed
    lifespan startup, a metrics port in use) they are still ours to close.
    """
    try:
        yield
    except BaseException:
        for listener in listeners:
            await trio.aclose_forcefully(listener)  # closing twice is harmless
        raise


async def _accept_until_shutdown(
    app: ASGIApp,
    listeners: list[trio.abc.Listener[trio.abc.Stream]],
    config: Config,
    shared: ServerShared,
    handler_nursery: trio.Nursery,
    shutdown_trigger: ShutdownTrigger | None,
    task_status: trio.TaskStatus[Any],
    notifier: Notifier,
) -> None:
    async def handle(stream: trio.abc.Stream) -> None:
        # The TLS handshake is done here, under its own deadline, so that a
        # client that connects and sends nothing costs at most that long,
        # and so that the TLS extension data exists before the first request.
        if isinstance(stream, trio.SSLStream) and not await complete_handshake(
            stream,
            config.timeout_ssl_handshake,
            format_client(connection_info(stream).client),
        ):
            return
        await handle_connection(stream, app, config, connection_info(stream), shared)

    serve_one = (
        trace_connections(handle, lambda s: connection_info(s).client)
        if tracing()
        else handle
    )

    async with trio.open_nursery() as accepting:
        # Each accept loop closes its listener when cancelled, so new
        # connections are refused from the moment shutdown begins.
        for listener in listeners:
            accepting.start_soon(
                accept_loop, listener, serve_one, handler_nursery, config.timeout_write
            )
            error_logger.info("listening on %s", describe_listener(listener))
        task_status.started(listeners)
        notifier.ready("serving on " + ", ".join(map(describe_listener, listeners)))
        await _wait_for_shutdown(shutdown_trigger, shared)
        accepting.cancel_scope.cancel()


async def _wait_for_shutdown(
    shutdown_trigger: ShutdownTrigger | None, shared: ServerShared
) -> None:
    """Return when the trigger does, or when the request budget is spent."""

    async def retire() -> None:
        await shared.budget_spent.wait()
        error_logger.info(
            "served %d requests (--limit-max-requests): shutting down",
            shared.requests,
        )

    async with trio.open_nursery() as waiting:
        for trigger in (shutdown_trigger, retire):
            if trigger is not None:
                waiting.start_soon(_cancel_after, trigger, waiting.cancel_scope)


async def _cancel_after(trigger: ShutdownTrigger, scope: trio.CancelScope) -> None:
    await trigger()
    scope.cancel()


def _request_budget(config: Config) -> int | None:
    """The requests to serve before retiring: the limit plus its random jitter."""
    if config.limit_max_requests is None:
        return None
    # Not a secret: spreading restarts needs no cryptographic randomness.
    jitter = random.randint(0, config.limit_max_requests_jitter)
    return config.limit_max_requests + jitter


async def serve(
    app: ASGIApp,
    config: Config,
    *,
    shutdown_trigger: ShutdownTrigger | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open the listeners ``config`` describes and serve ``app`` on them.

    Sockets passed by systemd (socket activation) replace the listeners the
    config describes; their variables are unset once read.
    """
    listeners = await open_listeners(config, take_listen_fds())
    await serve_listeners(
        app,
        listeners,
        config=config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


def run(app: ASGIApp | str, *, config: Config | None = None, **options: Any) -> None:
    """Run a server in the current thread until SIGINT or SIGTERM.

    For scripts: ``trasgi.run(app, host="0.0.0.0", port=8000)``. ``options``
    are :class:`Config` fields that override ``config``. ``app`` may also be a
    ``"module:attribute"`` string, loaded as the command line does.

    The first SIGINT (Ctrl-C) or SIGTERM starts a graceful shutdown; a second
    one forces the exit, cancelling everything that still runs.

    Error handling:
        :class:`OSError` when the listeners cannot be opened,
        :class:`ValueError` when the TLS options cannot work,
        :class:`~trasgi.LifespanFailure` when startup fails,
        ``SystemExit(1)`` after a forced exit.
    """
    from trasgi._server.importer import load_app

    config = attrs.evolve(config or Config(), **options)
    if config.workers is not None or config.reload:
        raise ValueError(
            "run() serves in this process; for workers or reload, use the "
            "command line: python -m trasgi MODULE:APP --workers N"
        )
    asgi_app = (
        load_app(app, factory=config.factory, app_dir=config.app_dir)
        if isinstance(app, str)
        else app
    )
    if trio.run(_serve_until_signal, asgi_app, config):
        raise SystemExit(FORCED_EXIT_STATUS)


async def _serve_until_signal(app: ASGIApp, config: Config) -> bool:
    """Serve until a signal; return True when a second signal forced the exit."""
    stop = trio.Event()
    serving = trio.CancelScope()
    forced = False

    async def watch_signals(signals: AsyncIterator[int]) -> None:
        nonlocal forced
        async for signum in signals:
            name = signal.Signals(signum).name
            if not stop.is_set():
                error_logger.info(
                    "received %s: shutting down gracefully (again to force)", name
                )
                stop.set()
            else:
                error_logger.warning("received %s again: forcing exit", name)
                forced = True
                serving.cancel()

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # Expected failures (OSError, LifespanFailure, TLSConfigError) leave
        # as themselves, not in an exception group, for the caller to report.
        async with tasks_beside() as nursery:
            nursery.start_soon(watch_signals, signals)
            with serving:
                await serve(app, config, shutdown_trigger=stop.wait)
    return forced
