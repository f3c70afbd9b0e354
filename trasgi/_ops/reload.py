"""``--reload``: restart the server when a watched file changes (development).

The reloader is a parent process. It opens the listeners once, so the port
stays the same across restarts and a connection that arrives during one
waits in the kernel's queue rather than being refused; it runs the server as
a worker process (``_ops/worker_process.py``), and watches the files with watchfiles. On
a change it stops the worker gracefully and starts a new one, which imports
the new code. A worker that fails to start (a syntax error) is reported, and
the next change starts another.

watchfiles also has ``awatch``, built on anyio. Under trio, it waits for its
watcher thread without a way to interrupt it, so a Ctrl-C could wait for the
watcher's five-second timeout. Here the blocking ``watchfiles.watch``
iterator runs in a thread (``trio.to_thread.run_sync``) with a
:class:`threading.Event` as its stop event: a cancelled wait abandons the
thread, and setting the event ends it within one step (50 ms).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from fnmatch import fnmatch
from pathlib import Path, PurePath
from typing import Any

import attrs
import trio

from trasgi._config.config import Config
from trasgi._edge.listeners import open_listeners
from trasgi._exits import FORCED_EXIT_STATUS
from trasgi._observe.logs import error_logger
from trasgi._ops.supervisor import (
    WorkerProcess,
    describe_exit,
    listener_fds,
    stop_timeout,
)
from trasgi._ops.worker_process import WorkerSpec

#: Watched unless excluded: Python source, as in uvicorn.
DEFAULT_INCLUDE = ("*.py",)
#: Never watched unless included: hidden files and directories (``.git``,
#: ``.venv``), compiled Python, and editors' backup files.
DEFAULT_EXCLUDE = (".*", "*.py[cod]", "*~")
#: How many changed files a restart's log line names before "and N more".
_NAMES_SHOWN = 3


def check_options(config: Config) -> None:
    """Refuse ``--reload`` options that cannot work, before anything starts.

    Error handling:
        Raises :class:`ValueError` with a one-line reason: watchfiles is not
        installed, or a ``--reload-dir`` is not a directory.
    """
    if not config.reload:
        return
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        raise ValueError(
            "--reload needs the watchfiles package: pip install -e '.[reload]'"
            " in a checkout of trasgi"
        ) from None
    for directory in config.reload_dir:
        if not Path(directory).is_dir():
            raise ValueError(f"--reload-dir {directory}: not a directory")


def watched_dirs(config: Config) -> tuple[Path, ...]:
    """The ``--reload-dir`` directories, or the current one (as uvicorn)."""
    chosen = config.reload_dir or (os.getcwd(),)
    return tuple(Path(directory).resolve() for directory in chosen)


@attrs.frozen
class ReloadFilter:
    """Which changed paths restart the server.

    A file is watched when its path matches an include pattern and neither
    the file nor a directory between it and the watched directory matches an
    exclude pattern. Patterns are globs matched from the right, as
    :meth:`pathlib.PurePath.match` does: ``*.py`` is any Python file,
    ``templates/*.html`` an HTML file in any ``templates`` directory.
    ``--reload-include`` adds to :data:`DEFAULT_INCLUDE` and takes a pattern
    out of :data:`DEFAULT_EXCLUDE`; ``--reload-exclude`` does the opposite.
    """

    roots: tuple[Path, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Config, roots: tuple[Path, ...]) -> ReloadFilter:
        added, removed = config.reload_include, config.reload_exclude
        include = [p for p in DEFAULT_INCLUDE if p not in removed] + list(added)
        exclude = [p for p in DEFAULT_EXCLUDE if p not in added] + list(removed)
        return cls(roots, tuple(include), tuple(exclude))

    def __call__(self, _change: Any, path: str) -> bool:
        """Whether a change to ``path`` restarts the server (watchfiles' filter)."""
        file = PurePath(path)
        if any(file.match(pattern) for pattern in self.exclude):
            return False
        if any(
            fnmatch(part, pattern)
            for part in self._directories_below_root(file)
            for pattern in self.exclude
        ):
            return False
        return any(file.match(pattern) for pattern in self.include)

    def _directories_below_root(self, file: PurePath) -> tuple[str, ...]:
        for root in self.roots:
            if file.is_relative_to(root):
                return file.parent.relative_to(root).parts
        return file.parent.parts


class ChangeWatcher:
    """Waits for changes under some directories, from a thread.

    Resource handling:
        :meth:`close` ends the watcher thread (within 50 ms); a cancelled
        :meth:`next_changes` must be followed by it, not by another call.
    """

    def __init__(self, roots: tuple[Path, ...], watch_filter: ReloadFilter) -> None:
        import watchfiles

        self._stop = threading.Event()
        self._changes: Iterator[set[tuple[Any, str]]] = watchfiles.watch(
            *roots, watch_filter=watch_filter, stop_event=self._stop
        )

    async def next_changes(self) -> list[str]:
        """Wait for the next batch of changes; return the changed paths."""
        batch = await trio.to_thread.run_sync(self._next_batch, abandon_on_cancel=True)
        return sorted(path for _change, path in batch)

    def _next_batch(self) -> set[tuple[Any, str]]:
        return next(self._changes, set())

    def close(self) -> None:
        self._stop.set()


def run_reloader(app: str, config: Config) -> int:
    """Serve ``app``, restarting on file changes, until SIGINT or SIGTERM.

    Returns the exit status: 0 after a graceful stop, 1 when a second signal
    forced it.

    Error handling:
        :class:`OSError` or a TLS error when the listeners cannot be opened.
        A server that fails to start is logged, not raised: the next change
        starts another.
    """
    return trio.run(_reload, app, config)


async def _reload(app: str, config: Config) -> int:
    listeners = await open_listeners(config)
    try:
        spec = WorkerSpec(
            app,
            attrs.evolve(config, reload=False, workers=None),
            listener_fds(listeners),
        )
        roots = watched_dirs(config)
        watcher = ChangeWatcher(roots, ReloadFilter.from_config(config, roots))
        error_logger.info(
            "reloader %d: watching %s for changes",
            os.getpid(),
            ", ".join(map(str, roots)),
        )
        try:
            return await Reloader(spec, watcher, stop_timeout(config)).run()
        finally:
            watcher.close()
    finally:
        for listener in listeners:
            await trio.aclose_forcefully(listener)


class Reloader:
    """Runs one server process at a time, a new one after each change."""

    def __init__(
        self, spec: WorkerSpec, watcher: ChangeWatcher, stop_timeout: float
    ) -> None:
        self.spec = spec
        self.watcher = watcher
        self.stop_timeout = stop_timeout
        self.worker: WorkerProcess | None = None
        self.status = 0
        self._serving = trio.CancelScope()

    async def run(self) -> int:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._handle_signals, signals)
                with self._serving:
                    while True:
                        await self._serve_until_change()
                nursery.cancel_scope.cancel()
        return self.status

    async def _serve_until_change(self) -> None:
        worker = self.worker = await WorkerProcess.spawn(self.spec)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._report, worker)
                changed = await self.watcher.next_changes()
                error_logger.info("%s changed: restarting", _names(changed))
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if await worker.stop(self.stop_timeout):
                    self.status = FORCED_EXIT_STATUS

    async def _report(self, worker: WorkerProcess) -> None:
        failure = await worker.wait_ready()
        if failure is not None:
            error_logger.error(
                "the server failed to start: %s; waiting for a change",
                failure.message,
            )
            return
        status = await worker.wait()
        error_logger.error(
            "the server %s; waiting for a change to start it again",
            describe_exit(status),
        )

    async def _handle_signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not self._serving.cancel_called:
                error_logger.info("received %s: stopping (again to force)", name)
                self._serving.cancel()
            else:
                error_logger.warning("received %s again: killing the server", name)
                self.status = FORCED_EXIT_STATUS
                if self.worker is not None:
                    self.worker.kill()


def _names(paths: list[str]) -> str:
    shown = ", ".join(os.path.relpath(path) for path in paths[:_NAMES_SHOWN])
    more = len(paths) - _NAMES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
