"""The two layers that turn exceptions into responses, around user middleware.

:class:`ExceptionMiddleware` runs inside the user middleware and answers the
exceptions that have a handler; :class:`ServerErrorMiddleware` is the
outermost layer and answers what is left: with the handler for ``500`` or
``Exception`` if there is one, else with a 500 page.
"""

from __future__ import annotations

import logging
import traceback

from .._endpoints import to_response
from .._errors import ExceptionHandler, ExceptionHandlers
from .._exceptions import HTTPException
from .._request import Request
from .._responses import PlainTextResponse
from .._types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("trasgi_web")


class _TrackedSend:
    """Remembers whether the response has started.

    One record serves both error layers when the send reaching the inner
    layer is the outer layer's own (no middleware between them, or only
    middleware that passes ``send`` on unchanged): every message sent inside
    goes through it, so whether the response started is the same question
    for both, and each message costs one wrapper call instead of two.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class ExceptionMiddleware:
    """Answers exceptions that have a handler, inside the user middleware."""

    def __init__(self, app: ASGIApp, handlers: ExceptionHandlers) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = send if isinstance(send, _TrackedSend) else _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            found = self.handlers.resolve(exc, server_errors=False)
            if found is None or tracked.started:
                raise
            await _answer_with(found, scope, receive, send)


class ServerErrorMiddleware:
    """The outermost layer: any exception left becomes a 500 page, logged.

    The default page says only "Internal Server Error"; with ``debug`` it
    shows the traceback. A handler registered for ``500`` or ``Exception``
    replaces it.

    Error handling:
        If the response had already started, the exception is re-raised
        after logging so that the server aborts the incomplete response.
    """

    def __init__(self, app: ASGIApp, handlers: ExceptionHandlers, debug: bool) -> None:
        self.app = app
        self.handlers = handlers
        self.debug = debug

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = _TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            found = self.handlers.resolve(exc, server_errors=True)
            if (
                found is not None
                and isinstance(found[0], HTTPException)
                and not tracked.started
            ):
                await _answer_with(found, scope, receive, send)
                return
            logger.exception(
                "Exception in handler for %s %s", scope.get("method"), scope.get("path")
            )
            if tracked.started:
                raise
            await self._answer(scope, receive, send, exc, found)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exc: Exception,
        found: tuple[BaseException, ExceptionHandler] | None,
    ) -> None:
        if found is None and 500 in self.handlers.handlers:
            found = exc, self.handlers.handlers[500]
        if found is not None:
            await _answer_with(found, scope, receive, send)
            return
        text = "Internal Server Error"
        if self.debug:
            text += "\n\n" + "".join(traceback.format_exception(exc))
        await PlainTextResponse(text, 500)(scope, receive, send)


async def _answer_with(
    found: tuple[BaseException, ExceptionHandler],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    target, handler = found
    response = to_response(await handler(Request(scope, receive), target))
    await response(scope, receive, send)
