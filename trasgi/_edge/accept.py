"""The accept loop: new connections into the handler nursery, in batches.

trio's ``serve_listeners`` accepts one connection per trip through the
scheduler. Under load, with a thousand busy connection tasks, a trip takes a
while, and the kernel's accept queue grows: new clients wait seconds for
their first byte. Here, after each awaited accept, the connections already
queued are taken at once (up to a bound) without yielding, the way
event-loop servers drain the queue on each readiness notification.

Plain socket listeners, and the TLS listeners trasgi makes over them, are
accepted from directly: each connection is served through a
:class:`~trasgi._io.socket_stream.DirectSocketStream` (inside a
:class:`trio.SSLStream` for TLS). Other listeners go through their own
``accept``.
"""

from __future__ import annotations

import errno
import ipaddress
import math
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from trasgi._edge.tls import context_of
from trasgi._io.socket_stream import DirectSocketStream
from trasgi._observe.logs import error_logger

Handler = Callable[[trio.abc.Stream], Awaitable[object]]

#: Connections taken per wake-up, at most: a bound, so that accepting never
#: starves the connections already being served. Taking one costs a few
#: microseconds, so a whole burst (a client opening a thousand connections at
#: once) is taken in one wake-up: leaving it queued would make its first
#: requests wait one scheduler batch, of every busy connection, per 64.
MAX_BATCH = 1024
#: Errors that mean "out of resources for now" (trio's own list): wait, retry.
_CAPACITY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
#: Errors of one connection that died in the accept queue (trio ignores the
#: same): skip it and take the next.
_CLIENT_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}
#: How long to wait before accepting again after running out of descriptors.
CAPACITY_PAUSE = 0.1


async def accept_loop(
    listener: trio.abc.Listener[trio.abc.Stream],
    handler: Handler,
    handler_nursery: trio.Nursery,
    send_timeout: float = math.inf,
) -> None:
    """Accept connections forever, starting ``handler`` for each one.

    Connections of a plain socket listener are served through
    :class:`~trasgi._io.socket_stream.DirectSocketStream` with ``send_timeout``;
    those of a TLS listener made by trasgi, through one inside a
    :class:`trio.SSLStream`.

    Resource handling:
        The listener is closed when the loop is cancelled (graceful shutdown
        closes it at once, so new clients are refused, not left waiting).
        Every accepted stream is closed: by its handler, which must close it
        before returning, or here if the handler raises.
    """
    source = _direct_source(listener, send_timeout)
    try:
        async with listener:
            if source is not None:
                await _accept_directly(source, handler, handler_nursery)
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    await _pause_if_out_of_resources(exc)
                    continue
                handler_nursery.start_soon(_handle, handler, stream)
    finally:
        if source is not None:
            source.raw.close()


@attrs.frozen
class _DirectSource:
    """A listener's socket, accepted from directly, and how to wrap each connection.

    Attributes:
        raw: A second, non-blocking handle on the listening socket.
        local: The local address every connection shares, if they do.
        send_timeout: The write timeout the connection's stream enforces.
        tls: The TLS context of a TLS listener made by trasgi, else None.
    """

    raw: socket.socket
    local: Any
    send_timeout: float
    tls: ssl.SSLContext | None

    def stream(self, sock: socket.socket, peer: Any) -> trio.abc.Stream:
        """The stream that serves one accepted socket."""
        direct = DirectSocketStream(
            sock,
            # Over TLS the connection bounds each write itself, around the
            # TLS stream; the socket below need not.
            send_timeout=math.inf if self.tls else self.send_timeout,
            peer_address=peer,
            local_address=self.local,
        )
        if self.tls is None:
            return direct
        # As trio.SSLListener would wrap it (see tls.wrap_listeners).
        return trio.SSLStream(direct, self.tls, server_side=True, https_compatible=True)


async def _accept_directly(
    source: _DirectSource, handler: Handler, nursery: trio.Nursery
) -> None:
    """Accept from the socket: wait until readable, take what is queued."""
    while True:
        await trio.lowlevel.wait_readable(source.raw)
        failure = _take_queued(source, handler, nursery)
        if failure is not None:
            await _pause_if_out_of_resources(failure)


def _direct_source(
    listener: trio.abc.Listener[trio.abc.Stream], send_timeout: float
) -> _DirectSource | None:
    """How to accept from a listener's socket directly, in batches, if possible.

    Plain socket listeners, and the TLS listeners trasgi makes over them,
    qualify; other listeners (in-memory, a TLS listener made elsewhere) go
    through their own ``accept``.
    """
    tls: ssl.SSLContext | None = None
    if isinstance(listener, trio.SSLListener):
        tls = context_of(listener)
        if tls is None:
            return None
        listener = listener.transport_listener
    if type(listener) is not trio.SocketListener:
        return None
    raw = socket.socket(fileno=os.dup(listener.socket.fileno()))
    raw.setblocking(False)
    return _DirectSource(raw, _shared_local_address(raw), send_timeout, tls)


def _shared_local_address(raw: socket.socket) -> Any:
    """The local address of every connection of a listener, if they share one.

    A listener bound to a wildcard address (``0.0.0.0``, ``::``) accepts on
    whichever local address the client reached: each connection must ask.
    """
    address = raw.getsockname()
    is_ip = raw.family in (socket.AF_INET, socket.AF_INET6)
    if is_ip and ipaddress.ip_address(address[0]).is_unspecified:
        return None
    return address


def _take_queued(
    source: _DirectSource, handler: Handler, nursery: trio.Nursery
) -> OSError | None:
    """Start handlers for connections already waiting, without blocking.

    Returns the error that stopped it, if it is one to act on.
    """
    for _ in range(MAX_BATCH):
        try:
            sock, peer = source.raw.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            if exc.errno in _CLIENT_GONE:
                continue
            return exc
        nursery.start_soon(_handle, handler, source.stream(sock, peer))
    return None


async def _pause_if_out_of_resources(exc: OSError) -> None:
    if exc.errno not in _CAPACITY:
        raise exc
    error_logger.error(
        "accept failed: %s; retrying in %gs",
        os.strerror(exc.errno or 0),
        CAPACITY_PAUSE,
    )
    await trio.sleep(CAPACITY_PAUSE)


async def _handle(handler: Handler, stream: trio.abc.Stream) -> None:
    # The handler closes the stream when it returns (the connection code
    # does, in every case); closing again here would cost a cancel scope and
    # a checkpoint per connection. Only a handler that fails is cleaned up.
    try:
        await handler(stream)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
