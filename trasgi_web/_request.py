"""Request: the HTTP connection plus its body, read lazily and bounded."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from ._connection import HTTPConnection
from ._exceptions import HTTPException
from ._extensions import EARLY_HINT
from ._forms import FormLimits, check_parsed, parse_form
from ._limits import DEFAULT_MAX_BODY_SIZE
from ._types import Receive, Scope, Send
from ._uploads import FormData

#: Bytes a field value cannot hold (RFC 9110 section 5.5).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class ClientDisconnect(Exception):
    """The client left before the request body was complete."""


class Request(HTTPConnection):
    """An HTTP request as a handler sees it.

    Args:
        scope: The ASGI ``http`` scope.
        receive: The ASGI ``receive`` callable the body is read from.
        max_body_size: Bytes of body allowed; ``None`` for no limit.

    Error handling:
        Reading more than ``max_body_size`` raises :class:`HTTPException`
        413, before any byte is read when ``Content-Length`` already says so
        (RFC 9110 section 15.5.14). A client gone mid-body raises
        :class:`ClientDisconnect`, which the framework ends quietly.

    Resource handling:
        Uploaded files of :meth:`form` are closed when the handler's response
        has been sent (:meth:`close`).
    """

    def __init__(
        self,
        scope: Scope,
        receive: Receive,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        super().__init__(scope)
        self._receive = receive
        #: The route's ``send``, for :meth:`send_early_hints`; None outside
        #: a route (a request built by hand).
        self._send: Send | None = None
        self.max_body_size = max_body_size
        self._body: bytes | None = None
        self._stream_started = False
        self._form: FormData | None = None
        self._form_limits = FormLimits()

    @property
    def method(self) -> str:
        """The request method, upper case as sent (``GET``, ``POST``...)."""
        return str(self.scope["method"])

    @property
    def receive(self) -> Receive:
        """The ASGI ``receive`` this request reads from."""
        return self._receive

    async def stream(self) -> AsyncGenerator[bytes, None]:
        """Yield the body in chunks as they arrive, without keeping them.

        After :meth:`body` the cached body is yielded instead.

        Error handling:
            ``RuntimeError`` if the stream was already consumed; 413 past the
            body limit; :class:`ClientDisconnect` if the client left.
        """
        if self._body is not None:
            yield self._body
            return
        if self._stream_started:
            raise RuntimeError("the request body was already streamed")
        self._stream_started = True
        self._check_declared_length()
        received = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect("the client left during the request body")
            chunk = bytes(message.get("body", b""))
            received += len(chunk)
            if self.max_body_size is not None and received > self.max_body_size:
                raise HTTPException(
                    413, f"Request body exceeds {self.max_body_size} bytes"
                )
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    def _check_declared_length(self) -> None:
        declared = self.headers.get("content-length")
        if self.max_body_size is None or declared is None or not declared.isdigit():
            return
        if int(declared) > self.max_body_size:
            raise HTTPException(413, f"Request body exceeds {self.max_body_size} bytes")

    async def send_early_hints(self, links: Iterable[str]) -> bool:
        """Send ``103 Early Hints`` with ``links`` before the response (RFC 8297).

        Each item is a ``Link`` field value, such as
        ``"</style.css>; rel=preload; as=style"``: the browser can fetch it
        while the handler is still at work. Call it before the handler's slow
        part; several calls send several hints.

        Returns whether the hint was sent: False when the server does not
        offer the ``http.response.early_hint`` extension (an HTTP/1.0
        client, another server) or the request did not come through a route.

        Error handling:
            ``ValueError`` for a value with a control character (CR, LF).
        """
        if self._send is None or EARLY_HINT not in self.scope.get("extensions", {}):
            return False
        values = [link.encode("latin-1") for link in links]
        if any(_CONTROL.search(value) for value in values):
            raise ValueError("an early hint link holds a control character")
        if values:
            await self._send({"type": EARLY_HINT, "links": values})
        return bool(values)

    async def body(self) -> bytes:
        """The whole body, read once and cached: later calls return it again."""
        if self._body is None:
            # aclosing: a body that fails half way (413, a disconnect) closes
            # its generator now, not whenever it is garbage collected.
            async with contextlib.aclosing(self.stream()) as chunks:
                self._body = b"".join([chunk async for chunk in chunks])
        return self._body

    async def text(self) -> str:
        """The body decoded with the ``Content-Type`` charset (UTF-8 by default).

        Error handling:
            :class:`HTTPException` 400 if it does not decode; 415 for a
            charset Python does not know.
        """
        charset = self._charset()
        body = await self.body()
        try:
            return body.decode(charset)
        except LookupError:
            raise HTTPException(415, f"Unknown charset {charset!r}") from None
        except UnicodeDecodeError:
            raise HTTPException(400, f"Request body is not valid {charset}") from None

    async def json(self) -> Any:
        """The body parsed as JSON (RFC 8259).

        Error handling:
            :class:`HTTPException` 400 naming where the JSON is invalid.
        """
        body = await self.body()
        try:
            return json.loads(body)
        except UnicodeDecodeError:
            raise HTTPException(400, "Invalid JSON: not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise HTTPException(
                400, f"Invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None

    async def form(self, limits: FormLimits | None = None) -> FormData:
        """The body as form fields and files, parsed while streaming.

        Reads ``application/x-www-form-urlencoded`` and
        ``multipart/form-data`` (RFC 7578); the result is cached, and held
        to the ``limits`` of a later call too.

        Args:
            limits: Counts and sizes allowed; :class:`FormLimits` defaults.

        Error handling:
            :class:`HTTPException` 415 for another content type, 400 for a
            malformed body or too many fields or files, 413 for a part or
            body over its limit.
        """
        if self._form is None:
            self._form_limits = limits or FormLimits()
            async with contextlib.aclosing(self.stream()) as chunks:
                self._form = await parse_form(
                    self.headers.get("content-type", ""), chunks, self._form_limits
                )
        elif limits is not None and limits != self._form_limits:
            check_parsed(self._form, limits)
        return self._form

    @property
    def holds_resources(self) -> bool:
        """Whether :meth:`close` has anything to release."""
        return self._form is not None

    async def close(self) -> None:
        """Release what the request holds (spooled upload files)."""
        if self._form is not None:
            await self._form.close()

    def _charset(self) -> str:
        content_type = self.headers.get("content-type", "")
        for param in content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                return value.strip().strip('"') or "utf-8"
        return "utf-8"
