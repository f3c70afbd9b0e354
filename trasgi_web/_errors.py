"""Exception handlers: by status for HTTPException, by class (MRO) otherwise.

The middleware layers that call them are in ``_middleware/errors.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Union

from ._exceptions import HTTPException
from ._request import Request
from ._responses import PlainTextResponse, Response
from ._validation import RequestValidationError, request_validation_handler

if sys.version_info >= (3, 11):
    from builtins import BaseExceptionGroup
else:  # pragma: no cover - trio depends on the backport before 3.11
    from exceptiongroup import (  # type: ignore[import-not-found, unused-ignore]
        BaseExceptionGroup,
    )

ExceptionHandler = Callable[[Request, Any], Awaitable[Any]]
HandlerKey = Union[type[BaseException], int]


class ExceptionHandlers:
    """The registered handlers, and how an exception finds its handler."""

    def __init__(self) -> None:
        self.handlers: dict[HandlerKey, ExceptionHandler] = {
            HTTPException: http_exception_handler,
            RequestValidationError: request_validation_handler,
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
