"""systemd integration: the notify protocol.

Socket activation, the other half of systemd's integration, is where
connections come from: ``_edge/activation.py``.

The notify protocol (``sd_notify(3)``): newline-separated ``NAME=VALUE``
assignments, one datagram per message, sent to the ``AF_UNIX`` socket that
``NOTIFY_SOCKET`` names: ``READY=1`` once serving, ``STOPPING=1`` when the
shutdown begins, ``STATUS=`` free text for ``systemctl status``, and
``WATCHDOG=1`` at half the ``WATCHDOG_USEC`` interval when ``WatchdogSec=``
is set (``sd_watchdog_enabled(3)``).

Outside systemd none of these variables is set, and everything here does
nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator, Mapping
from typing import NoReturn

import trio

from trasgi._edge.activation import is_ascii_number
from trasgi._observe.logs import error_logger
from trasgi._server.beside import tasks_beside


def notify_address(environ: Mapping[str, str]) -> str | None:
    """The address of ``NOTIFY_SOCKET``, or None when it is unset.

    A path, or ``@name`` for a socket in the abstract namespace (the address
    then starts with a NUL byte, as ``unix(7)`` says).

    Error handling:
        :class:`ValueError` for any other form (such as the ``vsock:``
        addresses of virtual machines, not supported).
    """
    value = environ.get("NOTIFY_SOCKET")
    if not value:
        return None
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    raise ValueError(f"NOTIFY_SOCKET must be a path or @abstract-name, got {value!r}")


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between two ``WATCHDOG=1`` pings, or None without a watchdog.

    Half of ``WATCHDOG_USEC``, as ``sd_watchdog_enabled(3)`` advises; None
    when it is unset, or when ``WATCHDOG_PID`` names another process.

    Error handling:
        :class:`ValueError` naming the variable when a number is malformed or
        the interval is 0.
    """
    usec_text = environ.get("WATCHDOG_USEC")
    if usec_text is None:
        return None
    if not is_ascii_number(usec_text) or int(usec_text) == 0:
        raise ValueError(
            f"WATCHDOG_USEC must be a number of microseconds, got {usec_text!r}"
        )
    pid_text = environ.get("WATCHDOG_PID")
    if pid_text is not None:
        if not is_ascii_number(pid_text):
            raise ValueError(f"WATCHDOG_PID must be a process id, got {pid_text!r}")
        if int(pid_text) != pid:
            return None
    return int(usec_text) / 2 / 1_000_000


class Notifier:
    """Sends ``sd_notify`` messages; does nothing when not under systemd.

    Resource handling:
        Owns a datagram socket while it has an address; :meth:`close` closes
        it. A message that cannot be sent is dropped with a warning (the
        first time only, as the watchdog would repeat it): systemd's own
        ``sd_notify`` ignores such failures too.
    """

    def __init__(self, address: str | None, interval: float | None = None) -> None:
        self.address = address
        self.watchdog_interval = interval if address is not None else None
        self._socket: socket.socket | None = None
        self._warned = False
        if address is not None:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # A systemd too busy to read must not stall the event loop.
            self._socket.setblocking(False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], pid: int) -> Notifier:
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.

        Error handling:
            A malformed variable is logged in one line and ignored: the
            server still serves, without that notification.
        """
        try:
            address = notify_address(environ)
        except ValueError as exc:
            error_logger.warning("not notifying systemd: %s", exc)
            return cls(None)
        try:
            interval = watchdog_interval(environ, pid)
        except ValueError as exc:
            error_logger.warning("not pinging the systemd watchdog: %s", exc)
            interval = None
        return cls(address, interval)

    def send(self, *assignments: str) -> None:
        """Send ``NAME=VALUE`` assignments to systemd, in one datagram."""
        if self._socket is None or self.address is None:
            return
        message = "\n".join(assignments).encode()
        try:
            self._socket.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                error_logger.warning(
                    "cannot notify systemd at %s: %s",
                    self.address.replace("\0", "@"),
                    exc.strerror or exc,
                )

    def ready(self, status: str) -> None:
        """Tell systemd the service is up: ``Type=notify`` units start now."""
        self.send("READY=1", _status(status))

    def stopping(self, status: str) -> None:
        """Tell systemd the shutdown has begun."""
        self.send("STOPPING=1", _status(status))

    async def feed_watchdog(self) -> NoReturn:
        """Send ``WATCHDOG=1`` at every interval, from now until cancelled."""
        if self.watchdog_interval is None:
            await trio.sleep_forever()
        while True:
            self.send("WATCHDOG=1")
            await trio.sleep(self.watchdog_interval)

    def close(self) -> None:
        """Close the socket; later messages are not sent."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _status(text: str) -> str:
    # One assignment per line: a newline in the text would start another.
    return "STATUS=" + " ".join(text.splitlines())


@contextlib.asynccontextmanager
async def notifying_systemd(
    environ: Mapping[str, str] = os.environ,
) -> AsyncIterator[Notifier]:
    """Yield a :class:`Notifier`, feeding the watchdog while the body runs.

    Error handling:
        An exception of the body leaves as itself, not in an exception group.

    Resource handling:
        The watchdog task stops and the socket closes when the body ends.
    """
    notifier = Notifier.from_environ(environ, os.getpid())
    try:
        if notifier.watchdog_interval is None:
            yield notifier
            return
        async with tasks_beside() as nursery:
            nursery.start_soon(notifier.feed_watchdog)
            yield notifier
    finally:
        notifier.close()
