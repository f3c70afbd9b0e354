"""A socket stream that makes its system calls directly.

:class:`trio.SocketStream` routes every call through trio's socket layer:
two generator-based context managers, a conflict detector, a memoryview, and
a trip through the scheduler after every call. A server makes at least two
such calls per request (read the head, write the response).

:class:`DirectSocketStream` makes the same ``recv`` and ``send`` calls on a
non-blocking socket, waits with :func:`trio.lowlevel.wait_readable` /
:func:`~trio.lowlevel.wait_writable` when the kernel says it must, and keeps
trio's checkpoint guarantees, with less around each call.

The accept loop wraps plain TCP and Unix sockets in it; TLS streams wrap
one like any other stream. The connection handler serves any stream; it
recognises this one only to leave it the write timeout and to take bytes
that already arrived without waiting (:meth:`receive_some_nowait`).
"""

from __future__ import annotations

import errno
import math
import os
import socket
from collections.abc import Sequence
from typing import Any

import trio

#: Bytes read per call when the caller does not say.
DEFAULT_RECEIVE_SIZE = 64 * 1024

#: Errors that mean the descriptor is already closed, by us.
_CLOSED_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


class SendStalled(trio.BrokenResourceError):
    """The peer did not take a write's bytes within the send timeout."""


class SendfileUnavailable(OSError):
    """``os.sendfile`` cannot send from this file: read and write it instead."""


class FileTooShort(OSError):
    """The file ended before the bytes the response declared were sent."""


#: What ``sendfile`` answers for a file it cannot send from (a pipe, a
#: special file): nothing was sent, and reading the file still works.
_NO_SENDFILE_ERRNOS = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


class DirectSocketStream(trio.abc.HalfCloseableStream):
    """A :class:`trio.abc.HalfCloseableStream` over a connected socket.

    Attributes:
        socket: The connected, non-blocking standard library socket, for
            addresses (``getsockname``, ``getpeername``) and options.
        send_timeout: How long one :meth:`send_all` may wait for the peer
            to take its bytes, in seconds. The deadline is set only when the
            kernel cannot take the bytes at once, so a write that does not
            wait costs no cancel scope.

    Args:
        sock: A connected stream socket; it is made non-blocking.
        send_timeout: See the attribute.
        peer_address: The peer's address as ``accept()`` returned it.
        local_address: The socket's own address, when known (the address of
            a listener bound to one address).

    Checkpoints:
        Every call is a checkpoint, as with trio's own streams (it passes
        trio's stream conformance checks). A read cancelled while waiting
        has consumed nothing.

    Error handling:
        A reset or otherwise failed socket raises
        :class:`trio.BrokenResourceError`; using the stream after
        :meth:`aclose` raises :class:`trio.ClosedResourceError`; two tasks
        sending at once raise :class:`trio.BusyResourceError`, as two
        tasks receiving at once do. A :meth:`send_all` that outlives
        :attr:`send_timeout` raises :class:`SendStalled` (a
        :class:`trio.BrokenResourceError`); part of the bytes may have been
        sent, so the stream is then only good for closing.

    Resource handling:
        :meth:`aclose` closes the socket, waking any task waiting on it.
    """

    __slots__ = (
        "_closed",
        "_eof_sent",
        "_local_address",
        "_peer_address",
        "_sending",
        "_waited",
        "send_timeout",
        "socket",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        send_timeout: float = math.inf,
        peer_address: Any = None,
        local_address: Any = None,
    ) -> None:
        sock.setblocking(False)
        if sock.family != socket.AF_UNIX:
            # Responses are written whole: Nagle's algorithm would only
            # hold back the last segment of each (trio.SocketStream does
            # the same).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Unlike trio.SocketStream, no TCP_NOTSENT_LOWAT: a large response is
        # handed to the kernel in as few calls as its buffer allows, rather
        # than 16 KiB past what the network took (the write timeout still
        # bounds a client that stops reading).
        self.socket = sock
        self.send_timeout = send_timeout
        # What accept() and the listener already said, saving two system
        # calls per connection; None to ask the socket when needed.
        self._peer_address = peer_address
        self._local_address = local_address
        #: Set once a task waited on the socket through trio's I/O manager.
        self._waited = False
        self._closed = False
        self._sending = False
        self._eof_sent = False

    def peer_address(self) -> Any:
        """The peer's address (``getpeername()``, remembered from ``accept()``)."""
        if self._peer_address is None:
            self._peer_address = self.socket.getpeername()
        return self._peer_address

    def local_address(self) -> Any:
        """The socket's own address (``getsockname()``, remembered when known)."""
        if self._local_address is None:
            self._local_address = self.socket.getsockname()
        return self._local_address

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Read up to ``max_bytes`` (64 KiB by default); ``b""`` at end of stream."""
        size = DEFAULT_RECEIVE_SIZE if max_bytes is None else max_bytes
        if size < 1:
            raise ValueError("max_bytes must be at least 1")
        await trio.lowlevel.checkpoint_if_cancelled()
        data = self.receive_some_nowait(size)
        if data is not None:
            # A checkpoint after every call, as trio's streams make: it also
            # gives the client time to send its next request, so that the
            # next read finds it rather than waiting on the kernel for it.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        # Nothing yet: wait here, in this frame (an idle connection is a
        # stack of frames), holding no exception from the failed read.
        while data is None:
            self._waited = True
            try:
                await trio.lowlevel.wait_readable(self.socket)
            except trio.ClosedResourceError:
                raise trio.ClosedResourceError("the stream was closed") from None
            data = self.receive_some_nowait(size)  # None: a spurious wake-up
        return data

    def receive_some_nowait(
        self, max_bytes: int = DEFAULT_RECEIVE_SIZE
    ) -> bytes | None:
        """Read what the kernel already holds, without waiting or yielding.

        Returns None when nothing has arrived yet, ``b""`` at end of stream.
        Not a checkpoint: the caller, which must be the only reader, awaits
        :meth:`receive_some` when this returns None, and yields elsewhere.
        """
        sock = self._open_socket()
        try:
            return sock.recv(max_bytes)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise self._translate(exc) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting for the socket to drain as needed.

        Error handling:
            If cancelled part way, some of ``data`` may have been sent and
            the stream is then unusable, as with any trio stream.
        """
        await self.send_all_pieces((data,))

    async def send_all_pieces(
        self, pieces: Sequence[bytes | bytearray | memoryview]
    ) -> None:
        """Write ``pieces`` as if joined, without joining them.

        The kernel gathers them (``sendmsg``): a response's head, a chunk's
        size line, its body and CRLF leave in one system call, with no copy
        made to put them side by side. Otherwise as :meth:`send_all`.
        """
        self._claim_sending()
        try:
            if self._eof_sent:
                raise trio.ClosedResourceError("the stream's write side was shut down")
            await trio.lowlevel.checkpoint_if_cancelled()
            if not await self._send_pieces(self._open_socket(), pieces):
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def _send_pieces(
        self, sock: socket.socket, pieces: Sequence[bytes | bytearray | memoryview]
    ) -> bool:
        """Send everything; return whether the socket had to be waited for."""
        try:
            sent = sock.send(pieces[0]) if len(pieces) == 1 else sock.sendmsg(pieces)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            raise self._translate(exc) from exc
        total = sum(map(len, pieces))
        if sent == total:
            return False
        # The kernel's buffer is full: the rest goes out as the peer reads,
        # under the send timeout. Joining it now costs little beside waiting.
        rest = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        with trio.CancelScope(deadline=trio.current_time() + self.send_timeout):
            await self._send_rest(sock, rest, sent)
            return True
        raise SendStalled(f"the peer did not read the data in {self.send_timeout:g}s")

    async def _send_rest(
        self, sock: socket.socket, data: bytes | bytearray | memoryview, sent: int
    ) -> None:
        with memoryview(data) as view:
            while sent < len(view):
                try:
                    self._waited = True
                    await trio.lowlevel.wait_writable(sock)
                except trio.ClosedResourceError:
                    raise trio.ClosedResourceError("the stream was closed") from None
                try:
                    sent += sock.send(view[sent:])
                except BlockingIOError:
                    continue
                except OSError as exc:
                    raise self._translate(exc) from exc

    async def send_file(self, fd: int, offset: int, count: int) -> None:
        """Send ``count`` bytes of a file from ``offset`` with ``os.sendfile``.

        The kernel copies from the page cache to the socket: the bytes never
        enter Python. Each wait for the peer to read is bounded by the send
        timeout, as with :meth:`send_all_pieces`.

        Error handling:
            Raises :class:`SendfileUnavailable` when the file cannot be sent
            this way (nothing was sent), :class:`FileTooShort` when it ends
            early, :class:`SendStalled` for a peer that stops reading.
        """
        self._claim_sending()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            sock = self._open_socket()
            waited = False
            while count:
                sent = self._sendfile_once(sock, fd, offset, count, started=waited)
                if sent is None:
                    waited = True
                    await self._wait_to_send(sock)
                    continue
                offset += sent
                count -= sent
            if not waited:
                await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    def _sendfile_once(
        self, sock: socket.socket, fd: int, offset: int, count: int, *, started: bool
    ) -> int | None:
        """One ``sendfile`` call: bytes sent, or None when the socket is full."""
        try:
            sent = os.sendfile(sock.fileno(), fd, offset, count)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno in _NO_SENDFILE_ERRNOS and not started:
                raise SendfileUnavailable(exc.errno, exc.strerror) from exc
            raise self._translate(exc) from exc
        if sent == 0:
            raise FileTooShort(f"the file ended {count} bytes early")
        return sent

    async def _wait_to_send(self, sock: socket.socket) -> None:
        with trio.move_on_after(self.send_timeout):
            try:
                self._waited = True
                await trio.lowlevel.wait_writable(sock)
            except trio.ClosedResourceError:
                raise trio.ClosedResourceError("the stream was closed") from None
            return
        raise SendStalled(f"the peer did not read the data in {self.send_timeout:g}s")

    async def wait_send_all_might_not_block(self) -> None:
        """Return when the socket has room for more bytes."""
        self._claim_sending()
        try:
            sock = self._open_socket()
            self._waited = True
            await trio.lowlevel.wait_writable(sock)
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        """Shut down the write side (the peer reads end of stream); idempotent."""
        self._claim_sending()
        try:
            await trio.lowlevel.checkpoint()
            sock = self._open_socket()
            if self._eof_sent:
                return
            self._eof_sent = True
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:  # the peer already left
                    raise self._translate(exc) from exc
        finally:
            self._sending = False

    async def aclose(self) -> None:
        """Close the socket; tasks waiting on it raise ClosedResourceError."""
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Close the socket at once, without a checkpoint; idempotent.

        Closing a socket never blocks, so the connection handler closes its
        stream this way rather than through a cancelled ``aclose``.
        """
        if not self._closed:
            self._closed = True
            if self._waited:
                # Wake whoever waits on it; trio only knows of a socket that
                # was waited on, and asking it about others costs a failed
                # system call.
                trio.lowlevel.notify_closing(self.socket)
            self.socket.close()

    def _claim_sending(self) -> None:
        # Two tasks writing at once would interleave their bytes.
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True

    def _open_socket(self) -> socket.socket:
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        return self.socket

    def _translate(
        self, exc: OSError
    ) -> trio.ClosedResourceError | trio.BrokenResourceError:
        if self._closed or exc.errno in _CLOSED_ERRNOS:
            return trio.ClosedResourceError("the stream was closed")
        return trio.BrokenResourceError(f"the connection failed: {exc}")
