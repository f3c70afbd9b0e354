"""Responses: ASGI callables that send one HTTP response.

Each response is an ASGI application: ``await response(scope, receive,
send)`` sends ``http.response.start`` then the body. A ``HEAD`` request gets
the same head as ``GET`` and no body (RFC 9110 section 9.3.2).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from ._cookies import SameSite, format_set_cookie
from ._datastructures import MutableHeaders, encode_fields
from ._extensions import TRAILERS
from ._types import Receive, Scope, Send

Content = str | bytes | bytearray | memoryview | None

#: The one JSON encoding of trasgi_web's bodies and events, built once
#: (json.dumps with options builds an encoder on every call).
JSON_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
)


class Response:
    """A response whose body is known in full.

    Args:
        content: The body; ``str`` is encoded with :attr:`charset`.
        status_code: The HTTP status.
        headers: Extra headers; ``content-type`` and ``content-length`` are
            added unless given.
        media_type: The ``Content-Type`` media type; a ``text/*`` type gets
            ``; charset=utf-8`` appended.

    Attributes:
        headers: :class:`~trasgi_web.MutableHeaders`, editable until sent.
    """

    media_type: ClassVar[str | None] = None
    charset: ClassVar[str] = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = self.render(content)
        self._media_type = media_type or self.media_type
        self.headers = MutableHeaders._of_encoded(self._fields(headers))

    def render(self, content: Any) -> bytes:
        """Turn ``content`` into body bytes; subclasses encode their types."""
        if content is None:
            return b""
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, bytes | bytearray | memoryview):
            return bytes(content)
        raise TypeError(
            f"{type(self).__name__} content must be str or bytes, "
            f"not {type(content).__name__}"
        )

    def _fields(self, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
        """The given headers plus ``content-type`` and ``content-length``."""
        fields = encode_fields(headers) if headers else []
        given = [name for name, _ in fields] if fields else ()
        if self._media_type is not None and b"content-type" not in given:
            fields.append(_content_type_field(self._media_type, self.charset))
        # 1xx and 204 responses carry no Content-Length (RFC 9110 section
        # 8.6); a 304 describes the representation, not this empty body.
        if _may_carry_body(self.status_code) and b"content-length" not in given:
            fields.append((b"content-length", b"%d" % len(self.body)))
        return fields

    def set_cookie(
        self,
        key: str,
        value: str = "",
        *,
        max_age: int | None = None,
        expires: datetime | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Add a ``Set-Cookie`` header (RFC 6265 section 4.1).

        Error handling:
            ``ValueError`` for a name that is not a token, a value with
            characters a cookie cannot hold, or ``samesite="none"`` without
            ``secure``.
        """
        self.headers.append(
            "set-cookie",
            format_set_cookie(
                key,
                value,
                max_age=max_age,
                expires=expires,
                path=path,
                domain=domain,
                secure=secure,
                httponly=httponly,
                samesite=samesite,
            ),
        )

    def delete_cookie(
        self,
        key: str,
        *,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: SameSite | None = "lax",
    ) -> None:
        """Ask the client to drop a cookie: empty value, ``Max-Age=0``.

        The path and domain must be those the cookie was set with, or the
        browser keeps it (RFC 6265 section 5.3 step 11).
        """
        self.set_cookie(
            key,
            "",
            max_age=0,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self.start_message())
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body})

    def start_message(self) -> dict[str, Any]:
        """The ``http.response.start`` message for this response."""
        return {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.headers.raw,
        }


class PlainTextResponse(Response):
    """A ``text/plain; charset=utf-8`` response."""

    media_type = "text/plain"


class HTMLResponse(Response):
    """A ``text/html; charset=utf-8`` response."""

    media_type = "text/html"


class JSONResponse(Response):
    """A JSON body (RFC 8259), compact, UTF-8, non-ASCII kept as is.

    Error handling:
        ``TypeError`` for values ``json`` cannot serialise; ``ValueError`` for
        NaN or infinities, which JSON cannot express.
    """

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return JSON_ENCODER.encode(content).encode("utf-8")


class RedirectResponse(Response):
    """Redirect to ``url`` (``Location``, RFC 9110 section 10.2.2).

    Args:
        url: An absolute URL or a reference relative to the request's URL.
        status_code: 307 by default: it keeps the method and body, as 308
            does; 301/302 let clients switch to GET, 303 asks them to.
        headers: Extra headers.
    """

    def __init__(
        self,
        url: str,
        status_code: int = 307,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(None, status_code, headers)
        # Characters outside the URI grammar are percent-encoded; "%" stays,
        # so an already encoded URL is not encoded twice (RFC 3986 section 2).
        self.headers["location"] = quote(url, safe=":/?#[]@!$&'()*+,;=%~")


class StreamingResponse(Response):
    """A body sent piece by piece as an iterator produces it.

    Each item is sent as it comes, without buffering, with no
    ``Content-Length`` (the server frames it with chunked encoding).

    Args:
        content: An async iterable (or a plain iterable) of ``str`` or
            ``bytes``.
        status_code: The HTTP status.
        headers: Extra headers.
        media_type: The ``Content-Type``.
        trailers: Called once the body is sent, for trailer fields to send
            after it (a checksum computed while streaming, say): a mapping,
            or an awaitable of one. Only where the server offers the
            ``http.response.trailers`` extension (the client sent ``TE:
            trailers``); it is not called otherwise. Name the fields in a
            ``Trailer`` header for the client (RFC 9110 section 6.6.2).

    Resource handling:
        For ``HEAD`` the iterator is not run. An async generator is closed
        (``aclose``) when sending ends, however it ends.
    """

    def __init__(
        self,
        content: AsyncIterable[str | bytes] | Iterable[str | bytes],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        *,
        trailers: Callable[[], TrailerFields | Awaitable[TrailerFields]] | None = None,
    ) -> None:
        self.content = content
        self.trailers = trailers
        super().__init__(None, status_code, headers, media_type)
        self.headers.pop_all("content-length")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        offered = TRAILERS in (scope.get("extensions") or {})
        trailers = self.trailers if offered and scope.get("method") != "HEAD" else None
        try:
            await send({**self.start_message(), "trailers": trailers is not None})
            if scope.get("method") != "HEAD":
                # aclosing: the wrapper generator is closed when sending
                # fails half way, rather than left to the garbage collector.
                async with contextlib.aclosing(_aiter(self.content)) as chunks:
                    async for chunk in chunks:
                        data = (
                            chunk.encode(self.charset)
                            if isinstance(chunk, str)
                            else chunk
                        )
                        await send(
                            {
                                "type": "http.response.body",
                                "body": bytes(data),
                                "more_body": True,
                            }
                        )
            await send({"type": "http.response.body", "body": b""})
            if trailers is not None:
                await send({"type": TRAILERS, "headers": await _fields_of(trailers)})
        finally:
            aclose = getattr(self.content, "aclose", None)
            if aclose is not None:
                await aclose()


#: Trailer fields a ``trailers`` callable gives.
TrailerFields = Mapping[str, str]


async def _fields_of(
    trailers: Callable[[], TrailerFields | Awaitable[TrailerFields]],
) -> list[tuple[bytes, bytes]]:
    fields = trailers()
    if inspect.isawaitable(fields):
        fields = await fields
    return encode_fields(fields)


async def _aiter(
    content: AsyncIterable[Any] | Iterable[Any],
) -> AsyncGenerator[Any, None]:
    if isinstance(content, AsyncIterable):
        async for item in content:
            yield item
    else:
        for item in content:
            yield item


@functools.lru_cache(maxsize=64)
def _content_type_field(media_type: str, charset: str) -> tuple[bytes, bytes]:
    """The encoded ``content-type`` field; cached, as few media types recur."""
    if media_type.startswith("text/") and "charset=" not in media_type:
        media_type = f"{media_type}; charset={charset}"
    [field] = encode_fields({"content-type": media_type})
    return field


def _may_carry_body(status_code: int) -> bool:
    return status_code >= 200 and status_code not in (204, 304)
