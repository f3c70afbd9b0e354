"""Exception handlers: by status for HTTPException, by class (MRO) otherwise."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Union

from ._endpoints import to_response
from ._exceptions import HTTPException
from ._request import Request
from ._responses import PlainTextResponse, Response
from ._types import ASGIApp, Message, Receive, Scope, Send

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - trio depends on the backport before 3.11
    from exceptiongroup import (  # type: ignore[import-not-found, unused-ignore]
        BaseExceptionGroup,
    )

logger = logging.getLogger("trasgi_web")

ExceptionHandler = Callable[[Request, Any], Awaitable[Any]]
HandlerKey = Union[type[BaseException], int]


class ExceptionHandlers:
    """The registered handlers, and how an exception finds its handler."""

    def __init__(self) -> None:
        self.handlers: dict[HandlerKey, ExceptionHandler] = {
            HTTPException: http_exception_handler
        }

    def add(self, key: HandlerKey, handler: ExceptionHandler) -> None:
        """Register ``handler`` for an exception class or an HTTP status.

        Error handling:
            ``TypeError`` for a key that is neither an exception class nor an
            int status.
        """
        if isinstance(key, int) and not isinstance(key, bool):
            if not 400 <= key <= 599:
                raise ValueError(f"exception handler status must be 400-599, not {key}")
        elif not (isinstance(key, type) and issubclass(key, BaseException)):
            raise TypeError(
                "exception handler key must be an exception class or a status, "
                f"not {key!r}"
            )
        self.handlers[key] = handler

    def lookup(
        self, exc: BaseException, *, server_errors: bool
    ) -> ExceptionHandler | None:
        """The handler for ``exc``: its status first, then its classes by MRO.

        With ``server_errors`` False, handlers registered for ``500``,
        ``Exception`` and ``BaseException`` are skipped: those answer only
        errors that crossed every middleware.
        """
        if (
            isinstance(exc, HTTPException)
            and exc.status_code in self.handlers
            and (server_errors or exc.status_code != 500)
        ):
            return self.handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if not server_errors and cls in (Exception, BaseException):
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None

    def resolve(
        self, exc: BaseException, *, server_errors: bool
    ) -> tuple[BaseException, ExceptionHandler] | None:
        """The exception to answer for and its handler, looking into groups.

        An ``ExceptionGroup`` (from a nursery in a handler) is handled by a
        handler for its own class if there is one; otherwise, when each of
        its leaf exceptions has a handler, the first leaf's handler answers
        for it. A group holding an unhandled exception is not handled, so
        that a bug is never hidden behind, say, a 404 beside it.
        """
        handler = self.lookup(exc, server_errors=server_errors)
        if handler is not None:
            return exc, handler
        if isinstance(exc, BaseExceptionGroup):
            answers = []
            for leaf in _leaves(exc):
                leaf_handler = self.lookup(leaf, server_errors=server_errors)
                if leaf_handler is None:
                    return None
                answers.append((leaf, leaf_handler))
            return answers[0] if answers else None
        return None


def _leaves(group: BaseExceptionGroup[Any]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


async def http_exception_handler(request: Request, exc: HTTPException) -> Response:
    """The default answer to :class:`HTTPException`: its detail as text."""
    if exc.status_code in (204, 304) or exc.status_code < 200:
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, exc.status_code, exc.headers)


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
