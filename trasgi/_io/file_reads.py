"""Reading a file's region for protocols that cannot send it with sendfile.

TLS encrypts in Python and HTTP/2 frames every piece, so there the file is
read, a chunk at a time, in a worker thread: a read from a cold disk blocks,
and the event loop must not.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator

import trio

from trasgi._io.socket_stream import FileTooShort
from trasgi._protocol.extensions import FileRegion


async def read_region(
    region: FileRegion, chunk_size: int
) -> AsyncGenerator[bytes, None]:
    """Yield the region's bytes, ``chunk_size`` at most at a time.

    Error handling:
        Raises :class:`~trasgi._io.socket_stream.FileTooShort` when the file
        ends before the region does.
    """
    offset, left = region.offset, region.count
    while left:
        size = min(chunk_size, left)
        chunk = await trio.to_thread.run_sync(os.pread, region.fd, size, offset)
        if not chunk:
            raise FileTooShort(f"the file ended {left} bytes early")
        offset += len(chunk)
        left -= len(chunk)
        yield chunk
