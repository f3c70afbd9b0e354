"""The one reader of a connection's stream, reading on demand.

Bytes are read only when someone asks for them (:meth:`Inbox.fill`): the
request loop for a head, the application's ``receive()`` for a body, the
WebSocket reader while its queue has room. That is the whole of the
server's backpressure: what is not asked for stays in the client's socket.

The task that asks does the read itself; a second task that asks while a
read is under way waits for that read instead of starting another (trio
forbids two concurrent reads of one stream). Cancelling a waiting reader is
safe: a socket read that is cancelled has consumed nothing, and TLS streams
have finished their handshake before the first read here.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from trasgi._io.socket_stream import DirectSocketStream

#: Bytes asked of the stream per read. It bounds what the server holds for an
#: application that reads its request body slowly: one chunk, not the body.
RECEIVE_CHUNK = 64 * 1024


class Inbox:
    """Reads one chunk of a stream per :meth:`fill` and hands it to ``sink``.

    What it reads goes to ``sink``: h11 for HTTP, wsproto once a connection
    is upgraded, nothing while lingering. ``b""`` tells the sink the stream
    ended, after which :attr:`eof` is true and nothing more is read.
    """

    __slots__ = ("_read_done", "_reading", "_receive_nowait", "_stream", "eof", "sink")

    def __init__(self, stream: trio.abc.Stream, sink: Callable[[bytes], None]) -> None:
        self._stream = stream
        #: Reads what already arrived without waiting, where the stream can.
        self._receive_nowait = (
            stream.receive_some_nowait
            if isinstance(stream, DirectSocketStream)
            else None
        )
        self.sink = sink
        self.eof = False
        #: Set while a task is reading.
        self._reading = False
        #: What other tasks that want bytes meanwhile wait on, made for them.
        self._read_done: trio.Event | None = None

    def fill_nowait(self) -> bool:
        """Hand over a chunk that already arrived; whether there was one.

        Lets a caller skip the cancel scope it would put around a wait (a
        keep-alive or header deadline) when there is nothing to wait for:
        the client usually sent its next request while the previous response
        was being written. Not a checkpoint.
        """
        if self.eof:
            return True
        if self._receive_nowait is None or self._reading:
            return False
        try:
            data = self._receive_nowait(RECEIVE_CHUNK)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if data is None:
            return False
        if not data:
            self.eof = True
        self.sink(data)
        return True

    async def fill(self) -> None:
        """Return once one more chunk (or the end of the stream) reached the sink."""
        if self.eof:
            return
        if self._reading:
            # Someone else is reading: that chunk will do. The event is made
            # only now, for the rare second reader, not for every read.
            if self._read_done is None:
                self._read_done = trio.Event()
            await self._read_done.wait()
            return
        self._reading = True
        try:
            try:
                data = await self._stream.receive_some(RECEIVE_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.eof = True
            self.sink(bytes(data))
        finally:
            # Whether the read finished or was cancelled, waiters go on: they
            # look at what arrived and ask again if they need more.
            self._reading = False
            done, self._read_done = self._read_done, None
            if done is not None:
                done.set()


def discard(data: bytes) -> None:
    """An inbox sink for bytes nobody will read."""
