"""Writing to one connection's stream, each write bounded by the write timeout.

A connection has one :class:`StreamWriter`. Every byte the server sends on
that connection goes through it: responses, interim responses, error
answers, WebSocket frames. A failed or stalled write is the one place where
the server learns that the client is gone; the writer then stays
:attr:`WriterState.LOST` and every later write fails at once.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Sequence

import trio

from trasgi._errors import ClientDisconnected
from trasgi._io.file_reads import read_region
from trasgi._io.socket_stream import (
    DirectSocketStream,
    SendfileUnavailable,
    SendStalled,
)
from trasgi._protocol.extensions import FileRegion

#: Writes are made in slices of this size, each under the write timeout; a
#: response's small pieces (a head, a chunk's size line) are joined with its
#: body up to this size, since copying a few hundred KiB costs less than a
#: system call per piece.
WRITE_SLICE = 256 * 1024
#: Pieces smaller than this together are joined before writing: copying a
#: few KiB costs less than the kernel gathering them (``sendmsg``).
JOIN_BELOW = 16 * 1024


class WriterState(enum.Enum):
    """Whether the client can still receive what the server writes."""

    OPEN = "open"
    #: A write failed or stalled past the write timeout: the client is gone.
    LOST = "lost"


class StreamWriter:
    """Writes a connection's bytes, in slices, each under the write timeout.

    Args:
        stream: The connection's stream.
        timeout: How long one slice may wait for the client to take it
            (``--timeout-write``), in seconds.

    Error handling:
        Every write raises :class:`ClientDisconnected` (an :class:`OSError`)
        when the stream is broken or the client stopped reading; the writer
        is then :attr:`WriterState.LOST`.
    """

    __slots__ = ("_direct", "_stream", "_timeout", "state")

    def __init__(self, stream: trio.abc.Stream, timeout: float) -> None:
        self._stream = stream
        self._timeout = timeout
        #: The stream, when it is a direct socket stream that enforces the
        #: write timeout itself, setting a deadline only when a write has to
        #: wait (most never do), and that can gather a response's pieces.
        self._direct = (
            stream
            if isinstance(stream, DirectSocketStream) and stream.send_timeout == timeout
            else None
        )
        self.state = WriterState.OPEN

    @property
    def lost(self) -> bool:
        """Whether a write failed: the client cannot receive anything more."""
        return self.state is WriterState.LOST

    async def write(self, data: bytes) -> None:
        """Write bytes, a slice at a time."""
        if len(data) <= WRITE_SLICE:
            await self._write_slice((data,))
            return
        # The timeout bounds each slice, not the whole write: a slow but
        # steady reader of a large body keeps going; a stalled one is dropped.
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            await self._write_slice((view[start : start + WRITE_SLICE],))

    async def write_pieces(self, pieces: Sequence[bytes]) -> None:
        """Write a response's pieces: small ones together, in one system call.

        Pieces that fit one slice go out in one write: joined when they are
        small or the stream cannot gather them, gathered by the kernel
        otherwise (no copy of a body). A large body is written as it is,
        never copied.
        """
        size = sum(len(piece) for piece in pieces)
        if size > WRITE_SLICE:
            for piece in pieces:
                await self.write(piece)
            return
        if len(pieces) > 1 and (size <= JOIN_BELOW or self._direct is None):
            pieces = (b"".join(pieces),)
        await self._write_slice(pieces)

    async def write_out(
        self, pieces: Sequence[bytes | memoryview | FileRegion]
    ) -> None:
        """Write a response's pieces, file regions among them, in order."""
        run: list[bytes | memoryview] = []
        for piece in pieces:
            if isinstance(piece, FileRegion):
                if run:
                    await self.write_pieces(run)  # type: ignore[arg-type]
                    run = []
                await self.send_file(piece)
            else:
                run.append(piece)
        if run:
            await self.write_pieces(run)  # type: ignore[arg-type]

    async def send_file(self, region: FileRegion) -> None:
        """Send a file's region: ``os.sendfile`` on a plain socket, else read it.

        Error handling:
            As :meth:`write`; :class:`~trasgi._io.socket_stream.FileTooShort`
            when the file ends early (the response can then only be cut).
        """
        if self._direct is not None:
            try:
                await self._direct.send_file(region.fd, region.offset, region.count)
            except SendfileUnavailable:
                pass  # a file sendfile cannot read: the loop below can
            except SendStalled as exc:
                self.state = WriterState.LOST
                raise ClientDisconnected(
                    "the client stopped reading the response"
                ) from exc
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.state = WriterState.LOST
                raise ClientDisconnected("the client closed the connection") from exc
            else:
                return
        async with contextlib.aclosing(read_region(region, WRITE_SLICE)) as chunks:
            async for chunk in chunks:
                await self.write(chunk)

    async def _write_slice(self, pieces: Sequence[bytes | memoryview]) -> None:
        """Write at most a slice, in one piece unless the stream gathers them."""
        try:
            if self._direct is not None:
                # The stream bounds the write itself: no scope unless it waits.
                await self._direct.send_all_pieces(pieces)
                return
            (data,) = pieces  # other streams get what write_pieces joined
            with trio.CancelScope(deadline=trio.current_time() + self._timeout):
                await self._stream.send_all(data)
                return
        except SendStalled:
            pass
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.state = WriterState.LOST
            raise ClientDisconnected("the client closed the connection") from exc
        # The client stopped reading: holding the response (and the task) for
        # it forever is how slow readers exhaust a server.
        self.state = WriterState.LOST
        raise ClientDisconnected("the client stopped reading the response")
