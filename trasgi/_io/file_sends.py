"""Path send and zero-copy send: the file behind a body message, opened.

The application names a file (``http.response.pathsend``) or hands an open
one (``http.response.zerocopysend``); before the response cycle frames it,
the request stream turns it into a
:class:`~trasgi._protocol.extensions.FileRegion` here. Opening and
``fstat`` run in a worker thread, as a cold disk can block.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import attrs
import trio

from trasgi._asgi import Message
from trasgi._errors import ASGIProtocolError
from trasgi._protocol.extensions import PATHSEND, FileRegion


@attrs.define
class OpenedFile:
    """A file message's region, and what to do once it is sent.

    Attributes:
        message: The message for the cycle, its ``region`` resolved.
        owned: Whether the server opened the file (path send) and closes it.
        advance: Whether the file's position moves past what was sent (a
            zero-copy send without an offset reads from the position).
    """

    message: Message
    owned: bool
    advance: bool

    @property
    def region(self) -> FileRegion:
        region: FileRegion = self.message["region"]
        return region

    def done(self) -> None:
        """Close the file the server opened, or move the application's on."""
        region = self.region
        if self.owned:
            os.close(region.fd)
        elif self.advance:
            os.lseek(region.fd, region.offset + region.count, os.SEEK_SET)


async def open_file_message(message: Message) -> OpenedFile:
    """Resolve a path send or zero-copy send message into a file region.

    Error handling:
        Raises :class:`ASGIProtocolError` naming the path (or the key) when
        the path is not absolute, cannot be opened or is not a regular file,
        or when the file object, offset or count is unusable.
    """
    if message.get("type") == PATHSEND:
        return await _open_path(message)
    return await _zero_copy(message)


async def _open_path(message: Message) -> OpenedFile:
    path = message.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise ASGIProtocolError(
            f"sent {PATHSEND!r} with path {path!r}; an absolute path (str) is needed"
        )
    try:
        fd, size = await trio.to_thread.run_sync(_open_regular, path)
    except OSError as exc:
        raise ASGIProtocolError(
            f"sent {PATHSEND!r} for {path!r}, which cannot be sent: "
            f"{exc.strerror or exc}"
        ) from None
    resolved = {"type": PATHSEND, "region": FileRegion(fd, 0, size)}
    return OpenedFile(resolved, owned=True, advance=False)


def _open_regular(path: str) -> tuple[int, int]:
    """Open a regular file for reading; its descriptor and size."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OSError(0, "not a regular file")
    return fd, info.st_size


async def _zero_copy(message: Message) -> OpenedFile:
    kind = message.get("type")
    try:
        fd = message["file"].fileno()
    except (KeyError, AttributeError, OSError, ValueError):
        raise ASGIProtocolError(
            f"sent {kind!r} without an open file that has a descriptor ('file')"
        ) from None
    offset = _non_negative(message, "offset")
    count = _non_negative(message, "count")
    advance = offset is None
    try:
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        if count is None:
            size = (await trio.to_thread.run_sync(os.fstat, fd)).st_size
            count = max(size - offset, 0)
    except OSError as exc:
        raise ASGIProtocolError(f"sent {kind!r} with an unusable file: {exc}") from None
    resolved: dict[str, Any] = {
        "type": kind,
        "region": FileRegion(fd, offset, count),
        "more_body": bool(message.get("more_body", False)),
    }
    return OpenedFile(resolved, owned=False, advance=advance)


def _non_negative(message: Message, key: str) -> int | None:
    value = message.get(key)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ASGIProtocolError(
            f"sent {message.get('type')!r} with {key} {value!r}; a non-negative "
            "int is needed"
        )
    return value
