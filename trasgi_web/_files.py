"""FileResponse: a file sent by the server or in chunks, with validators and ranges.

Where the server offers the ASGI path-send extension, a whole file is handed
to it by path; a range goes through zero-copy send (an offset and a count).
On a plain socket the server then sends with ``os.sendfile``: the bytes never
enter Python. Elsewhere the file is read and sent in chunks.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import stat
from collections.abc import Mapping
from email.utils import formatdate
from urllib.parse import quote

import trio

from ._datastructures import Headers
from ._exceptions import HTTPException
from ._extensions import PATHSEND, ZEROCOPYSEND
from ._ranges import RangeNotSatisfiable, if_range_allows, not_modified, parse_range
from ._responses import Response
from ._types import Receive, Scope, Send

#: Bytes read and sent per message: large enough for throughput, small enough
#: that a slow client holds little memory.
CHUNK_SIZE = 64 * 1024


class FileResponse(Response):
    """Send a file from disk.

    Answers, for GET and HEAD: ``304`` when ``If-None-Match`` or
    ``If-Modified-Since`` shows the client's copy is current (RFC 9110
    section 13.2.2); ``206`` with ``Content-Range`` for one satisfiable
    ``Range`` (RFC 9110 section 14), honouring ``If-Range``; ``416`` for an
    unsatisfiable one; otherwise ``200``. Every answer carries ``ETag``,
    ``Last-Modified`` and ``Accept-Ranges: bytes``.

    Args:
        path: The file to send.
        status_code: The status for a full response.
        headers: Extra headers.
        media_type: The ``Content-Type``; guessed from the file name if
            omitted (``application/octet-stream`` when unknown).
        filename: If given, a ``Content-Disposition: attachment`` with it.

    Error handling:
        :class:`HTTPException` 404 if the path is missing or not a regular
        file when the response is sent.

    Resource handling:
        The file is opened when sending starts and closed when it ends,
        including on cancellation; reads happen in a worker thread.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        filename: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        #: The path-send extension asks for an absolute path.
        self.absolute_path = os.path.abspath(self.path)
        guessed = mimetypes.guess_type(filename or self.path)[0]
        super().__init__(
            None,
            status_code,
            headers,
            media_type or guessed or "application/octet-stream",
        )
        self.headers.pop_all("content-length")
        if filename is not None:
            # RFC 6266 with the RFC 8187 form for non-ASCII names.
            self.headers.setdefault_value(
                "content-disposition", f"attachment; filename*=utf-8''{quote(filename)}"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = await self._stat()
        etag = _etag(info)
        self.headers.setdefault_value("etag", etag)
        self.headers.setdefault_value(
            "last-modified", formatdate(info.st_mtime, usegmt=True)
        )
        self.headers.setdefault_value("accept-ranges", "bytes")
        request_headers = Headers(scope.get("headers", []))
        method = scope.get("method", "GET")
        if method in ("GET", "HEAD") and not_modified(
            request_headers, etag, info.st_mtime
        ):
            await self._send_head(send, 304)
            await send({"type": "http.response.body", "body": b""})
            return
        start, end, status = 0, info.st_size, self.status_code
        if (
            method in ("GET", "HEAD")
            and "range" in request_headers
            and if_range_allows(request_headers, etag, info.st_mtime)
        ):
            try:
                selected = parse_range(request_headers["range"], info.st_size)
            except RangeNotSatisfiable:
                await self._send_unsatisfiable(send, info.st_size)
                return
            if selected is not None:
                start, end = selected
                status = 206
                self.headers["content-range"] = (
                    f"bytes {start}-{end - 1}/{info.st_size}"
                )
        self.headers["content-length"] = str(end - start)
        await self._send_head(send, status)
        extensions = scope.get("extensions") or {}
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
        elif PATHSEND in extensions and (start, end) == (0, info.st_size):
            await send({"type": PATHSEND, "path": self.absolute_path})
        elif ZEROCOPYSEND in extensions:
            await self._send_zero_copy(send, start, end)
        else:
            await self._send_file(send, start, end)

    async def _stat(self) -> os.stat_result:
        try:
            info = await trio.to_thread.run_sync(os.stat, self.path)
        except (FileNotFoundError, NotADirectoryError):
            raise HTTPException(404) from None
        if not stat.S_ISREG(info.st_mode):
            raise HTTPException(404)
        return info

    async def _send_head(self, send: Send, status: int) -> None:
        message = self.start_message()
        message["status"] = status
        await send(message)

    async def _send_unsatisfiable(self, send: Send, size: int) -> None:
        # The current length, so that the client can ask again (RFC 9110 15.5.17).
        await send(
            {
                "type": "http.response.start",
                "status": 416,
                "headers": [
                    (b"content-range", f"bytes */{size}".encode()),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _send_zero_copy(self, send: Send, start: int, end: int) -> None:
        """The server sends ``start`` to ``end`` of the file it is handed."""
        file = await trio.to_thread.run_sync(open, self.path, "rb")
        try:
            message = {"type": ZEROCOPYSEND, "file": file}
            await send({**message, "offset": start, "count": end - start})
        finally:
            file.close()

    async def _send_file(self, send: Send, start: int, end: int) -> None:
        async with await trio.open_file(self.path, "rb") as file:
            await file.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = await file.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    break  # the file shrank; the server sees a short body
                remaining -= len(chunk)
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk,
                        "more_body": remaining > 0,
                    }
                )
        if end == start:
            await send({"type": "http.response.body", "body": b""})


def _etag(info: os.stat_result) -> str:
    """A strong validator from size and modification time (RFC 9110 8.8.3)."""
    digest = hashlib.blake2s(
        f"{info.st_mtime_ns}-{info.st_size}".encode(), digest_size=8
    )
    return f'"{digest.hexdigest()}"'
