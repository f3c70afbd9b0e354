"""GZipMiddleware: compress responses for clients that accept gzip."""

from __future__ import annotations

import zlib

from .._datastructures import Headers, MutableHeaders
from .._extensions import FILE_SENDS
from .._types import ASGIApp, Message, Receive, Scope, Send

#: Bodies smaller than this are sent as they are: gzip's header and trailer
#: (18 bytes) and the CPU cost outweigh the saving.
DEFAULT_MINIMUM_SIZE = 500


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` allows gzip (RFC 9110 section 12.5.3).

    ``gzip;q=0`` refuses it; ``*`` accepts it unless refused by name.
    """
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding:
            weights[coding] = weight
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0.0) > 0


class GZipMiddleware:
    """Compress response bodies with gzip, never holding a stream back.

    A complete body (one message) is compressed whole when it is at least
    ``minimum_size`` bytes. A streamed body is compressed message by message,
    each flushed at once (``Z_SYNC_FLUSH``), so a client sees every piece as
    soon as uncompressed it would have. Event streams
    (``text/event-stream``), partial content (206) and bodies that already
    have a ``Content-Encoding`` pass through untouched.

    Every compressible response to a client that accepts gzip gets
    ``Vary: Accept-Encoding`` and a weak ``ETag``, compressed or not, and so
    does a 304: it must carry the validator and ``Vary`` the 200 would have
    (RFC 9110 section 15.4.5). A ``HEAD`` response gets the header fields a
    ``GET`` would (RFC 9110 section 9.3.2), without a ``Content-Length``,
    which only compressing the body would tell.

    Args:
        app: The application to wrap.
        minimum_size: See :data:`DEFAULT_MINIMUM_SIZE`.
        compresslevel: zlib level, 1 (fast) to 9 (small).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        minimum_size: int = DEFAULT_MINIMUM_SIZE,
        compresslevel: int = 6,
    ) -> None:
        self.app = app
        self.minimum_size = minimum_size
        self.compresslevel = compresslevel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(
            Headers(scope.get("headers", [])).get("accept-encoding", "")
        ):
            await self.app(scope, receive, send)
            return
        gzip_send = _GZipSend(send, self.minimum_size, self.compresslevel)
        if scope.get("method") == "HEAD":
            gzip_send.head = True
        await self.app(_without_file_sends(scope), receive, gzip_send)


def _without_file_sends(scope: Scope) -> Scope:
    """The scope, without the file-sending extensions, for a compressed answer.

    A body the server reads from disk itself never passes through here, so
    the application is told the server cannot do it, and sends bytes.
    """
    extensions = scope.get("extensions")
    if not extensions or not any(name in extensions for name in FILE_SENDS):
        return scope
    kept = {k: v for k, v in extensions.items() if k not in FILE_SENDS}
    return {**scope, "extensions": kept}


class _GZipSend:
    """The ``send`` of one response: holds the start until the first body."""

    def __init__(self, send: Send, minimum_size: int, compresslevel: int) -> None:
        self._send = send
        self._minimum_size = minimum_size
        self._compresslevel = compresslevel
        self._start: Message | None = None
        self._compressor: zlib._Compress | None = None
        self._passthrough = False
        self.head = False

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start = message
            self._passthrough = not _compressible(message)
            if message.get("status") == 304:
                await self._send(_as_revalidated(message))
            elif self._passthrough:
                await self._send(message)
            elif self.head:
                await self._send(self._as_head(message))
                self._passthrough = True
            return
        if kind != "http.response.body" or self._passthrough:
            await self._send(message)
            return
        if self._start is not None:
            await self._first_body(self._start, message)
            self._start = None
        elif self._compressor is not None:
            await self._send_compressed(self._compressor, message)
        else:
            await self._send(message)

    async def _first_body(self, start: Message, message: Message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        headers = MutableHeaders(start.get("headers", []))
        _add_vary(headers)
        _weaken_etag(headers)
        if not more and len(body) < self._minimum_size:
            await self._send({**start, "headers": headers.raw})
            await self._send(message)
            return
        compressor = zlib.compressobj(
            self._compresslevel, zlib.DEFLATED, 16 + zlib.MAX_WBITS
        )
        self._compressor = compressor
        headers["content-encoding"] = "gzip"
        headers.pop_all("content-length")
        if not more:
            data = compressor.compress(body) + compressor.flush()
            headers["content-length"] = str(len(data))
            await self._send({**start, "headers": headers.raw})
            await self._send({"type": "http.response.body", "body": data})
            return
        await self._send({**start, "headers": headers.raw})
        await self._send_compressed(compressor, message)

    def _as_head(self, start: Message) -> Message:
        """The start a GET would have, for HEAD: no body to decide from."""
        headers = MutableHeaders(start.get("headers", []))
        _add_vary(headers)
        _weaken_etag(headers)
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) >= self._minimum_size:
            headers["content-encoding"] = "gzip"
            headers.pop_all("content-length")
        return {**start, "headers": headers.raw}

    async def _send_compressed(
        self, compressor: zlib._Compress, message: Message
    ) -> None:
        more = message.get("more_body", False)
        data = compressor.compress(message.get("body", b""))
        data += compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
        await self._send(
            {"type": "http.response.body", "body": data, "more_body": more}
        )


def _compressible(start: Message) -> bool:
    headers = Headers(start.get("headers", []))
    status = start.get("status", 200)
    content_type = headers.get("content-type", "").lower()
    return not (
        status < 200
        or status in (204, 206, 304)
        or "content-encoding" in headers
        or content_type.startswith("text/event-stream")
    )


def _as_revalidated(start: Message) -> Message:
    """A 304 with the ``Vary`` and validator of the 200 it stands for."""
    headers = MutableHeaders(start.get("headers", []))
    if "content-encoding" not in headers:
        _add_vary(headers)
        _weaken_etag(headers)
    return {**start, "headers": headers.raw}


def _weaken_etag(headers: MutableHeaders) -> None:
    # The validator described the identity body; a weak one holds for the
    # same content gzipped or not (RFC 9110 section 8.8.1), so the 200 and
    # the 304 that revalidates it carry the same one, whatever the size.
    etag = headers.get("etag")
    if etag is not None and not etag.startswith("W/"):
        headers["etag"] = "W/" + etag


def _add_vary(headers: MutableHeaders) -> None:
    present = [
        value.strip().lower() for value in ",".join(headers.getlist("vary")).split(",")
    ]
    if "accept-encoding" not in present and "*" not in present:
        headers.append("vary", "Accept-Encoding")
