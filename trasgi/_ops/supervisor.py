"""``--workers N``: one supervisor process, N worker processes, shared sockets.

The supervisor opens the listeners once, with the same code as a single
server (``_edge/listeners.py: open_listeners``), and starts N workers
(``_ops/worker_process.py``) that inherit the listening sockets and each run the normal
server, with its own lifespan, on them. Every worker accepts from the same
kernel queues. Shared sockets rather than one ``SO_REUSEPORT`` socket per
worker: they work for every kind of listener (``--uds``, ``--fd``, TLS, port
0, which names one port for all), a connection waiting in the queue is never
lost when a worker stops (the queue belongs to the socket, which the others
keep open), and no other process can bind the port between two workers.

The supervisor is a trio program that awaits process exits, pipe messages and
signals; the only thing it does on a timer is the workers' health check:

* a worker that dies is replaced, after a backoff that doubles while workers
  keep dying soon after their start; one that exits by itself with status 0
  (``--limit-max-requests``) is replaced at once;
* a worker that fails before it is ready (the application does not import,
  its lifespan startup fails) is started again with backoff, and after
  :data:`STARTUP_ATTEMPTS` such failures in a row, the supervisor stops the
  others and exits with that failure's message and status;
* SIGHUP replaces the workers one at a time: start a new one, wait until it
  is ready, stop an old one gracefully;
* a ready worker is asked every :data:`HEALTH_CHECK_INTERVAL` seconds to
  answer over its control channel; one whose event loop does not answer
  within ``--timeout-worker-healthcheck`` is killed, and so replaced;
* the first SIGINT or SIGTERM stops every worker gracefully (SIGTERM, then
  SIGKILL after ``--timeout-graceful-shutdown`` plus :data:`STOP_MARGIN`);
  a second one kills them at once.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import attrs
import trio

from trasgi._config.config import Config
from trasgi._edge.activation import take_listen_fds
from trasgi._edge.listeners import describe_listener, open_listeners
from trasgi._exits import EXIT_FAILURE, FORCED_EXIT_STATUS
from trasgi._observe.logs import error_logger
from trasgi._ops.worker_process import (
    PING,
    PONG,
    WORKER_COMMAND,
    Channel,
    WorkerSpec,
    child_environment,
)
from trasgi._server.notify import Notifier, notifying_systemd

#: Startup failures in a row (no worker became ready in between) before the
#: supervisor gives up: a failure that repeats five times is not transient,
#: and the backoff makes the five take about 1.5 s.
STARTUP_ATTEMPTS = 5
#: The first backoff before starting a worker again; it doubles with each
#: failure in a row, up to :data:`MAX_BACKOFF`.
FIRST_BACKOFF = 0.1
#: The longest wait between two attempts: long enough not to spin on a
#: worker that always dies, short enough to recover soon after a transient
#: failure (a database that came back).
MAX_BACKOFF = 10.0
#: A worker that ran this long before dying was not crash-looping: its death
#: resets the backoff.
STABLE_UPTIME = 10.0
#: Seconds between two health checks of a ready worker: a blocked worker is
#: found within this plus the health-check timeout, at the cost of two short
#: lines on a socket pair per second.
HEALTH_CHECK_INTERVAL = 1.0
#: Added to the graceful timeout before a worker is killed: its lifespan
#: shutdown and the interpreter's exit take time after the last request.
STOP_MARGIN = 5.0


class WorkersFailed(Exception):
    """The workers cannot start: the supervisor gave up.

    Attributes:
        message: The last failure's one-line message.
        status: The exit status for the command line.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@attrs.frozen
class StartFailure:
    """Why a worker exited before it was ready."""

    message: str
    status: int


def check_options(config: Config) -> None:
    """Refuse options that cannot work with ``--workers``.

    Error handling:
        Raises :class:`ValueError` with a one-line reason.
    """
    if config.workers is None:
        return
    if config.metrics_port is not None:
        raise ValueError(
            "--metrics-port cannot be used with --workers: each worker would "
            "count its own requests on the same port"
        )


def describe_exit(status: int) -> str:
    """``exited with status 1`` or ``was killed by SIGKILL``."""
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def listener_fds(listeners: Sequence[trio.abc.Listener[Any]]) -> tuple[int, ...]:
    """The descriptors of the listening sockets, beneath any TLS wrapping.

    Workers get the plain sockets and wrap them in TLS themselves.
    """
    fds = []
    for listener in listeners:
        inner = (
            listener.transport_listener
            if isinstance(listener, trio.SSLListener)
            else listener
        )
        assert isinstance(inner, trio.SocketListener)  # open_listeners makes these
        fds.append(inner.socket.fileno())
    return tuple(fds)


@attrs.define(eq=False)
class WorkerProcess:
    """A running worker, seen from its parent.

    Resource handling:
        :meth:`wait` reaps the process and closes the control channel;
        whoever spawned a worker must await it, and kill it first when
        cancelled.
    """

    process: trio.Process
    control: Channel
    ready_at: float | None = None
    retiring: bool = False
    exited: trio.Event = attrs.field(factory=trio.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def spawn(cls, spec: WorkerSpec) -> WorkerProcess:
        """Start a worker and send it its spec."""
        ours, theirs = socket.socketpair()
        try:
            process = await trio.lowlevel.open_process(
                [*WORKER_COMMAND, str(theirs.fileno())],
                pass_fds=(theirs.fileno(), *spec.fds),
                env=child_environment(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()  # the child has its copy; ours would hide its exit
        channel = Channel(trio.SocketStream(trio.socket.from_stdlib_socket(ours)))
        worker = cls(process, channel)
        try:
            await channel.send(spec.encode())
        except BaseException:  # cancelled: the process must not outlive us
            worker.kill()
            with trio.CancelScope(shield=True):
                await worker.wait()
            raise
        return worker

    async def wait_ready(self) -> StartFailure | None:
        """Wait for the worker's ready message; the failure when it exits first."""
        failure: StartFailure | None = None
        while (message := await self.control.receive()) is not None:
            if message.get("event") == "ready":
                self.ready_at = trio.current_time()
                return None
            if message.get("event") == "failed":
                failure = StartFailure(str(message["message"]), int(message["status"]))
        status = await self.wait()
        if failure is not None:
            return failure
        return StartFailure(
            f"a worker {describe_exit(status)} before it was ready",
            status if status > 0 else EXIT_FAILURE,
        )

    async def is_unresponsive(self, patience: float) -> bool:
        """Ask for a pong; True if none came within ``patience`` seconds.

        A worker that exits meanwhile is not unresponsive: its exit is
        reported by :meth:`wait`.
        """
        await self.control.send(PING)
        with trio.move_on_after(patience):
            while (message := await self.control.receive()) is not None:
                if message == PONG:
                    return False
            return False
        return True

    async def wait(self) -> int:
        """Wait for the process to exit; return its status."""
        try:
            return await self.process.wait()
        finally:
            if self.process.returncode is not None:
                await self.control.aclose()
                self.exited.set()

    def terminate(self) -> None:
        """Ask for a graceful stop (SIGTERM); harmless once it has exited."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def stop(self, grace: float) -> bool:
        """Stop gracefully within ``grace`` seconds, else kill; True if killed."""
        self.terminate()
        with trio.move_on_after(grace):
            await self.wait()
            return False
        error_logger.warning(
            "worker %d did not stop within %gs: killing it", self.pid, grace
        )
        self.kill()
        await self.wait()
        return True


def stop_timeout(config: Config) -> float:
    """How long a worker gets to stop gracefully before it is killed."""
    return config.timeout_graceful_shutdown + STOP_MARGIN


def run_supervisor(app: str, config: Config) -> int:
    """Serve ``app`` with ``config.workers`` worker processes until a signal.

    Returns the exit status: 0 after a graceful stop, 1 when a second signal
    forced it or a worker had to be killed.

    Error handling:
        :class:`OSError` or a TLS error when the listeners cannot be opened,
        before any worker starts; :class:`WorkersFailed` when workers keep
        failing to start.
    """
    return trio.run(_supervise, app, config)


async def _supervise(app: str, config: Config) -> int:
    # Sockets passed by systemd replace the configured ones, as for one server.
    listeners = await open_listeners(config, take_listen_fds())
    try:
        spec = WorkerSpec(
            app,
            attrs.evolve(config, workers=None, reload=False),
            listener_fds(listeners),
        )
        supervisor = Supervisor(spec, config.workers or 1, stop_timeout(config))
        for listener in listeners:
            error_logger.info(
                "supervisor %d: listening on %s for %d workers",
                os.getpid(),
                describe_listener(listener),
                supervisor.count,
            )
        return await supervisor.run()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


class Supervisor:
    """Keeps ``count`` workers running; see the module's description."""

    def __init__(self, spec: WorkerSpec, count: int, stop_timeout: float) -> None:
        self.spec = spec
        self.health_timeout = spec.config.timeout_worker_healthcheck
        self.count = count
        self.stop_timeout = stop_timeout
        self.live: set[WorkerProcess] = set()
        self.stopping = False
        self.status = 0
        self.failure: StartFailure | None = None
        self._startup_failures = 0
        self._crashes = 0
        self._restarting = False
        self._restart_again = False
        self._nursery: trio.Nursery | None = None
        # The supervisor is the service's main process: it alone tells
        # systemd that the service is ready (all first workers are) or
        # stopping; workers do not inherit NOTIFY_SOCKET.
        self._notifier = Notifier(None)
        self._ready_count = 0

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None, "the supervisor is not running"
        return self._nursery

    async def run(self) -> int:
        """Run until a signal stops the workers, or they cannot start."""
        signals_wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        with trio.open_signal_receiver(*signals_wanted) as signals:
            async with notifying_systemd() as notifier, trio.open_nursery() as nursery:
                self._notifier = notifier
                self._nursery = nursery
                nursery.start_soon(self._handle_signals, signals)
                for _ in range(self.count):
                    nursery.start_soon(self._start_with_retries)
        if self.failure is not None:
            raise WorkersFailed(
                f"{self.failure.message} (a worker failed to start "
                f"{STARTUP_ATTEMPTS} times in a row; giving up)",
                self.failure.status,
            )
        return self.status

    # -- one worker's life ---------------------------------------------------

    async def _run_worker(self, *, task_status: trio.TaskStatus[Any]) -> None:
        """Run one worker from its start to its exit, then replace it if due.

        Reports the worker through ``task_status`` once it is ready; raises
        :class:`StartFailed` if it exits before.
        """
        worker = await WorkerProcess.spawn(self.spec)
        self.live.add(worker)
        try:
            if self.stopping:
                worker.terminate()  # started while the others were stopping
            failure = await worker.wait_ready()
            if failure is not None:
                raise StartFailed(failure)
            error_logger.info("worker %d is ready", worker.pid)
            self._ready_count += 1
            if self._ready_count == self.count:
                self._notifier.ready(f"{self.count} workers serving")
            task_status.started(worker)
            async with trio.open_nursery() as checks:
                checks.start_soon(self._check_health, worker)
                status = await worker.wait()
                checks.cancel_scope.cancel()
        finally:
            self.live.discard(worker)
            if worker.process.returncode is None:  # cancelled: a forced stop
                worker.kill()
                with trio.CancelScope(shield=True):
                    await worker.wait()
        await self._after_exit(worker, status)

    async def _check_health(self, worker: WorkerProcess) -> None:
        """Kill the worker when its event loop stops answering."""
        while True:
            await trio.sleep(HEALTH_CHECK_INTERVAL)
            if self.stopping or worker.retiring:
                return  # stopping has its own deadline: stop_timeout
            if await worker.is_unresponsive(self.health_timeout):
                error_logger.error(
                    "worker %d did not answer a health check within %gs: killing it",
                    worker.pid,
                    self.health_timeout,
                )
                worker.kill()
                return

    async def _start_with_retries(self) -> None:
        """Start one worker, again and again while it fails before ready."""
        while not self.stopping:
            try:
                await self.nursery.start(self._run_worker)
            except StartFailed as failed:
                await self._after_startup_failure(failed.failure)
            else:
                self._startup_failures = 0
                return

    async def _after_startup_failure(self, failure: StartFailure) -> None:
        if self.stopping:
            return  # stopped while starting: not a failure of the worker
        self._startup_failures += 1
        if self._startup_failures >= STARTUP_ATTEMPTS:
            self.failure = failure
            self._request_stop()
            return
        delay = _backoff(self._startup_failures)
        error_logger.error(
            "a worker failed to start: %s; trying again in %gs", failure.message, delay
        )
        await trio.sleep(delay)

    async def _after_exit(self, worker: WorkerProcess, status: int) -> None:
        if self.stopping or worker.retiring:
            return
        if status == 0:
            # Only --limit-max-requests makes a worker exit by itself.
            error_logger.info(
                "worker %d exited after its request limit; starting another",
                worker.pid,
            )
        else:
            assert worker.ready_at is not None
            if trio.current_time() - worker.ready_at >= STABLE_UPTIME:
                self._crashes = 0
            self._crashes += 1
            delay = _backoff(self._crashes)
            error_logger.error(
                "worker %d %s; starting another in %gs",
                worker.pid,
                describe_exit(status),
                delay,
            )
            await trio.sleep(delay)
        await self._start_with_retries()

    # -- signals -------------------------------------------------------------

    async def _handle_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGHUP:
                self._request_rolling_restart()
            elif not self.stopping:
                error_logger.info(
                    "received %s: stopping the workers gracefully (again to force)",
                    name,
                )
                self._request_stop()
            else:
                error_logger.warning("received %s again: killing the workers", name)
                self.status = FORCED_EXIT_STATUS
                for worker in list(self.live):
                    worker.kill()

    def _request_stop(self) -> None:
        if not self.stopping:
            self.stopping = True
            self._notifier.stopping("stopping the workers")
            self.nursery.start_soon(self._stop_all)

    async def _stop_all(self) -> None:
        """SIGTERM every worker, SIGKILL those still there at the deadline."""
        for worker in list(self.live):
            worker.terminate()
        with trio.move_on_after(self.stop_timeout):
            while self.live:
                await next(iter(self.live)).exited.wait()
        if self.live:
            error_logger.warning(
                "%d workers did not stop within %gs: killing them",
                len(self.live),
                self.stop_timeout,
            )
            self.status = FORCED_EXIT_STATUS
        for worker in list(self.live):
            worker.kill()
        while self.live:
            await next(iter(self.live)).exited.wait()
        error_logger.info("all workers stopped")
        self.nursery.cancel_scope.cancel()  # backoff sleeps and the signal loop

    # -- rolling restart -----------------------------------------------------

    def _request_rolling_restart(self) -> None:
        if self.stopping:
            return
        if self._restarting:
            error_logger.info(
                "received SIGHUP during a restart: restarting again after"
            )
            self._restart_again = True
            return
        self._restarting = True
        self.nursery.start_soon(self._rolling_restart)

    async def _rolling_restart(self) -> None:
        try:
            again = True
            while again and not self.stopping:
                self._restart_again = False
                if not await self._replace_each_worker():
                    return
                again = self._restart_again
        finally:
            self._restarting = False

    async def _replace_each_worker(self) -> bool:
        """Replace the ready workers one at a time; False if a new one failed."""
        old_workers = [w for w in self.live if w.ready_at is not None]
        error_logger.info(
            "received SIGHUP: replacing %d workers one at a time", len(old_workers)
        )
        for old in old_workers:
            if self.stopping:
                return False
            if old.exited.is_set() or old.retiring:
                continue  # died meanwhile, and already replaced
            try:
                await self.nursery.start(self._run_worker)
            except StartFailed as failed:
                error_logger.error(
                    "restart stopped: a new worker failed to start: %s; the "
                    "old workers keep serving",
                    failed.failure.message,
                )
                return False
            old.retiring = True
            await old.stop(self.stop_timeout)
        error_logger.info("restart complete: %d workers", len(self.live))
        return True


class StartFailed(Exception):
    """A worker exited before it was ready (carried out of nursery.start)."""

    def __init__(self, failure: StartFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _backoff(failures: int) -> float:
    """The wait before the next attempt after ``failures`` failures in a row."""
    return float(min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1)))
