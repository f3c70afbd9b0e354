"""A worker process: the normal server, on listening sockets its parent opened.

The parent (the supervisor of ``--workers``, or the reloader of ``--reload``)
starts ``python -m trasgi._ops.worker_process FD``, where FD is one end of a Unix socket
pair, the *control channel*, which speaks JSON lines:

1. the parent sends the *spec*: the application (``MODULE:ATTRIBUTE``), the
   :class:`~trasgi.Config` fields, and the numbers of the listening sockets'
   descriptors, inherited by the child under the same numbers;
2. the worker answers ``{"event": "ready"}`` once its lifespan startup is
   complete and it accepts connections, or ``{"event": "failed"}`` with the
   command line's one-line message and exit status (the application cannot
   be loaded: 1; its lifespan startup failed: 3), and exits.

3. once the worker is ready, the supervisor sends ``{"event": "ping"}`` now
   and then, and the worker answers ``{"event": "pong"}`` from its event
   loop: a worker whose loop is blocked cannot answer, and is replaced
   (``--timeout-worker-healthcheck``).

The channel also tells the worker that its parent is gone: end of file. The
worker then shuts down gracefully rather than serve on, unsupervised.

Signals: SIGTERM (once or more) starts a graceful shutdown. SIGINT is
ignored: a terminal sends Ctrl-C to the whole process group, and the parent,
which owns it, forwards a SIGTERM; a worker is forced to stop only by the
parent's SIGKILL, after the graceful timeout. This way a service manager that
signals every process of the group at once (systemd's default
``KillMode=control-group``) still gets graceful stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import trio

from trasgi._asgi import ASGIApp
from trasgi._config.config import Config
from trasgi._edge.listeners import adopt_fd
from trasgi._edge.tls import TLSConfigError, build_server_context, with_tls
from trasgi._errors import AppLoadError, LifespanFailure
from trasgi._exits import EXIT_FAILURE, EXIT_STARTUP_FAILED
from trasgi._observe.logs import apply_log_config, configure, error_logger, wants_colors
from trasgi._server.importer import load_app
from trasgi._server.serve import serve_listeners

#: The command that starts a worker, followed by the control channel's fd.
WORKER_COMMAND = (sys.executable, "-m", "trasgi._ops.worker_process")
#: A control line longer than this is not ours: the spec is a few KiB.
MAX_LINE = 1024 * 1024
#: The supervisor's health check, and the worker's answer.
PING = {"event": "ping"}
PONG = {"event": "pong"}
#: Variables that address the service's main process only: a worker that
#: inherited them would tell systemd it is ready or stopping, or adopt
#: descriptors meant for its parent.
PARENT_ONLY_VARIABLES = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)


@attrs.frozen
class WorkerSpec:
    """What a worker needs to serve: the application, the config, the sockets."""

    app: str
    config: Config
    fds: tuple[int, ...]

    def encode(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "config": attrs.asdict(self.config),
            "fds": list(self.fds),
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> WorkerSpec:
        values: dict[str, Any] = {
            name: tuple(value) if isinstance(value, list) else value
            for name, value in data["config"].items()
        }
        return cls(str(data["app"]), Config(**values), tuple(data["fds"]))


def child_environment() -> dict[str, str]:
    """The environment of a worker: this one, less what names the parent."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in PARENT_ONLY_VARIABLES
    }


class Channel:
    """One end of the control channel: JSON objects, one per line.

    Error handling:
        :meth:`receive` returns None at end of file; a broken channel (the
        peer is gone) reads as end of file and makes :meth:`send` a no-op, so
        that neither side fails because the other died.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buffer = bytearray()
        # A worker answers health checks from one task and reports from
        # another; a trio stream takes one sender at a time.
        self._sending = trio.Lock()

    @classmethod
    def from_fd(cls, fd: int) -> Channel:
        sock = trio.socket.from_stdlib_socket(socket.socket(fileno=fd))
        return cls(trio.SocketStream(sock))

    async def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode("utf-8") + b"\n"
        # A peer that is gone cannot be told; its exit status reports it.
        async with self._sending:
            with contextlib.suppress(
                trio.BrokenResourceError, trio.ClosedResourceError
            ):
                await self.stream.send_all(data)

    async def receive(self) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_LINE:
                raise ValueError("control channel: line too long")
            try:
                chunk = await self.stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                return None
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        message = json.loads(line)
        if not isinstance(message, dict):
            raise TypeError(f"control channel: not an object: {line!r}")
        return message

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


def main(argv: Sequence[str] | None = None) -> None:
    """Run a worker (``python -m trasgi._ops.worker_process FD``) to its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    args = sys.argv[1:] if argv is None else argv
    sys.exit(trio.run(_work, int(args[0])))


async def _work(control_fd: int) -> int:
    control = Channel.from_fd(control_fd)
    async with control.stream:
        message = await control.receive()
        if message is None:
            return EXIT_FAILURE  # the parent left before saying what to serve
        spec = WorkerSpec.decode(message)
        _set_up_logging(spec.config)
        try:
            app = load_app(
                spec.app, factory=spec.config.factory, app_dir=spec.config.app_dir
            )
            listeners = _adopt_listeners(spec)
        except AppLoadError as exc:
            return await _fail(control, f"cannot load the application: {exc}")
        except TLSConfigError as exc:
            return await _fail(control, str(exc))
        return await _serve_until_stopped(app, listeners, spec.config, control)


def _set_up_logging(config: Config) -> None:
    """Log as the command line does; the parent already checked --log-config."""
    if config.log_config is not None:
        apply_log_config(config.log_config)
        return
    configure(
        config.log_level,
        access_log=config.access_log,
        json_access=config.access_log_format == "json",
        colors=wants_colors(config.use_colors, sys.stderr, os.environ),
    )


def _adopt_listeners(spec: WorkerSpec) -> list[trio.abc.Listener[trio.abc.Stream]]:
    """Listeners on the inherited sockets, TLS ones when the config says so."""
    context = build_server_context(spec.config)
    return with_tls([adopt_fd(fd) for fd in spec.fds], context)


async def _fail(control: Channel, message: str, status: int = EXIT_FAILURE) -> int:
    await control.send({"event": "failed", "message": message, "status": status})
    return status


async def _serve_until_stopped(
    app: ASGIApp,
    listeners: list[trio.abc.Listener[trio.abc.Stream]],
    config: Config,
    control: Channel,
) -> int:
    """Serve until SIGTERM, the parent's departure or --limit-max-requests."""
    stop = trio.Event()
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def serve(*, task_status: trio.TaskStatus[Any]) -> None:
                await serve_listeners(
                    app,
                    listeners,
                    config=config,
                    shutdown_trigger=stop.wait,
                    task_status=task_status,
                )
                nursery.cancel_scope.cancel()  # the watchers below are done

            nursery.start_soon(_stop_on_sigterm, signals, stop)
            nursery.start_soon(_follow_parent, control, stop)
            try:
                await nursery.start(serve)
            except LifespanFailure as exc:
                status = await _fail(control, f"application {exc}", EXIT_STARTUP_FAILED)
                nursery.cancel_scope.cancel()
                return status
            except AppLoadError as exc:  # --interface cannot tell the app's kind
                status = await _fail(control, f"cannot load the application: {exc}")
                nursery.cancel_scope.cancel()
                return status
            except OSError as exc:  # the metrics port, the one socket opened here
                status = await _fail(control, f"cannot listen: {exc.strerror or exc}")
                nursery.cancel_scope.cancel()
                return status
            await control.send({"event": "ready"})
    return 0


async def _stop_on_sigterm(signals: AsyncIterator[int], stop: trio.Event) -> None:
    async for _ in signals:
        if not stop.is_set():
            error_logger.info("worker %d: received SIGTERM: stopping", os.getpid())
            stop.set()


async def _follow_parent(control: Channel, stop: trio.Event) -> None:
    """Answer the parent's health checks; stop when the parent is gone."""
    while (message := await control.receive()) is not None:
        if message.get("event") == PING["event"]:
            await control.send(PONG)
    if not stop.is_set():
        error_logger.warning("worker %d: its parent is gone: stopping", os.getpid())
        stop.set()


if __name__ == "__main__":
    main()
