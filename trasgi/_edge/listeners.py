"""Where connections come from: listeners, and what is known at the accept.

Everything that looks beneath a stream lives here, at the edge: opening
sockets (TCP, IPv6, Unix, inherited descriptors), describing them for the
log, and computing each connection's :class:`ConnectionInfo` once.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Sequence
from typing import Any

import attrs
import trio

from trasgi._config.binds import Bind, parse_bind
from trasgi._config.config import Config
from trasgi._edge.activation import PassedSocket, SocketActivationError
from trasgi._edge.tls import build_server_context, tls_info, with_tls
from trasgi._io.socket_stream import DirectSocketStream
from trasgi._observe.logs import error_logger
from trasgi._protocol.scope import ConnectionInfo

_AF_UNIX = getattr(socket, "AF_UNIX", None)


async def open_listeners(
    config: Config,
    passed: Sequence[PassedSocket] = (),
) -> list[trio.abc.Listener[trio.abc.Stream]]:
    """Open every listener the config asks for, or adopt the passed sockets.

    ``--uds``, ``--fd`` and each ``--bind`` add a listener; ``--host`` and
    ``--port`` are used when none of them is given. Sockets passed by systemd
    (``passed``, from :func:`~trasgi._edge.activation.take_listen_fds`) replace all of
    these, as in gunicorn and uvicorn: the ``.socket`` unit says where to
    listen. With ``--ssl-certfile``, every listener serves TLS
    (:class:`trio.SSLListener`).

    Error handling:
        :class:`~trasgi._edge.tls.TLSConfigError` for TLS options that cannot work,
        before any socket is opened; :class:`OSError` when binding fails
        (address in use, permission);
        :class:`~trasgi._edge.activation.SocketActivationError` for a passed
        descriptor that is not a listening stream socket; listeners already
        opened are closed first.

    Resource handling:
        The listeners own the passed descriptors: closing them closes those.
    """
    context = build_server_context(config)
    binds = [] if passed else _configured_binds(config)
    listeners: list[trio.SocketListener] = []
    try:
        for one in passed:
            listeners.append(_adopt_passed(one))
        for bind in binds:
            listeners += await _open(bind, config)
    except BaseException:
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        raise
    if passed:
        error_logger.info(
            "socket activation: using %s passed by systemd; --host, --port, "
            "--bind, --uds and --fd are not used",
            ", ".join(map(str, passed)),
        )
    return with_tls(listeners, context)


def _configured_binds(config: Config) -> list[Bind]:
    binds = [parse_bind(text) for text in config.bind]
    if config.uds is not None:
        binds.insert(0, Bind("unix", path=config.uds))
    if config.fd is not None:
        binds.insert(0, Bind("fd", fd=config.fd))
    return binds or [Bind("tcp", host=config.host, port=config.port)]


def _adopt_passed(passed: PassedSocket) -> trio.SocketListener:
    """Serve on a socket systemd passed, whatever its family.

    Unlike ``--fd``, the listener takes the descriptor itself rather than a
    copy, so that it is closed with the listener, and no process the
    application starts inherits it (``sd_listen_fds`` sets close-on-exec too).
    """
    try:
        sock = socket.socket(fileno=passed.fd)  # the family and type are read
    except OSError as exc:
        raise SocketActivationError(
            f"systemd passed {passed}, which is not a socket: {exc.strerror}"
        ) from None
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.type != socket.SOCK_STREAM or not listening:
        sock.detach()
        raise SocketActivationError(
            f"systemd passed {passed}, which is not a listening stream socket: "
            "use ListenStream= with Accept=no"
        )
    return adopt_listening_socket(sock)


def adopt_listening_socket(sock: socket.socket) -> trio.SocketListener:
    """A listener that owns ``sock`` (not a copy), which no child inherits.

    The descriptor itself is adopted: closing the listener at shutdown must
    close the socket, so that new clients are refused rather than left queued
    on a copy nobody accepts from. And a process the application starts must
    not hold the server's socket open (``sd_listen_fds`` and ``pass_fds``
    leave descriptors inheritable).
    """
    sock.set_inheritable(False)
    return trio.SocketListener(trio.socket.from_stdlib_socket(sock))


def adopt_fd(fd: int) -> trio.SocketListener:
    """Serve on an inherited listening socket, whatever its family."""
    return adopt_listening_socket(socket.socket(fileno=fd))


async def _open(bind: Bind, config: Config) -> list[trio.SocketListener]:
    if bind.kind == "unix":
        return [await _open_unix(bind.path, config.backlog, config.uds_permissions)]
    if bind.kind == "fd":
        return [adopt_fd(bind.fd)]
    return await trio.open_tcp_listeners(
        bind.port, host=bind.host, backlog=config.backlog
    )


async def _open_unix(
    path: str, backlog: int, permissions: int | None
) -> trio.SocketListener:
    _remove_stale_socket(path)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(path)
        if permissions is not None:
            # Set before listen(): no client can connect under the umask's mode.
            os.chmod(path, permissions)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


def _remove_stale_socket(path: str) -> None:
    """Remove a Unix socket left by an earlier run, never a live one or a file."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return  # not a socket: let bind() report the conflict
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody answers: stale
    else:
        raise OSError(98, f"a server is already listening on {path}")
    finally:
        probe.close()


def connection_info(stream: trio.abc.Stream) -> ConnectionInfo:
    """Compute the plain data about a connection, once, where it is accepted.

    This is the only place that looks beneath a stream: TLS streams are
    recognised by type (not by catching ``AttributeError``), and socket
    streams report their addresses. Unknown streams get empty info. A TLS
    stream also gets its TLS extension data once its handshake is complete
    (before, only its addresses and scheme are known).
    """
    if not isinstance(stream, trio.SSLStream):
        return _addresses(stream)
    try:
        tls = tls_info(stream)
    except trio.NeedHandshakeError:
        tls = None
    return attrs.evolve(_addresses(stream.transport_stream), scheme="https", tls=tls)


def _addresses(stream: trio.abc.Stream) -> ConnectionInfo:
    if isinstance(stream, DirectSocketStream):
        family = stream.socket.family
        local_address, peer_address = stream.local_address, stream.peer_address
    elif isinstance(stream, trio.SocketStream):
        family = stream.socket.family
        local_address, peer_address = (
            stream.socket.getsockname,
            stream.socket.getpeername,
        )
    else:
        return ConnectionInfo()
    local = local_address()
    if family == _AF_UNIX:
        return ConnectionInfo(client=None, server=(str(local), None))
    try:
        peer = peer_address()
    except OSError:
        peer = None  # the client already left
    return ConnectionInfo(
        client=(peer[0], peer[1]) if peer else None,
        server=(local[0], local[1]),
    )


def describe_listener(listener: trio.abc.Listener[Any]) -> str:
    """A URL-like description of where a listener accepts connections."""
    is_tls = isinstance(listener, trio.SSLListener)
    inner = (
        listener.transport_listener
        if isinstance(listener, trio.SSLListener)
        else listener
    )
    scheme = "https" if is_tls else "http"
    if not isinstance(inner, trio.SocketListener):
        return repr(listener)
    address = inner.socket.getsockname()
    if inner.socket.family == _AF_UNIX:
        return f"{scheme}+unix://{address}"
    host, port = address[0], address[1]
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"
