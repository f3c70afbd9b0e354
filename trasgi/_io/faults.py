"""The application's faults during one request or WebSocket, each logged once.

Shared by the request stream and the WebSocket session, so that both name
the exchange and classify what the application raised the same way: an ASGI
mistake is logged once when it is made (and not again when it propagates
out of the application); a client that left is not an error worth a
traceback; any other exception is the application's, logged with its
traceback.
"""

from __future__ import annotations

import enum
import sys

from trasgi._errors import ASGIProtocolError, ClientDisconnected
from trasgi._io.asyncio_apps import hint_if_asyncio
from trasgi._observe.access import RequestLine
from trasgi._observe.logs import error_logger, escape

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]


class Raised(enum.Enum):
    """What an exception that left the application means."""

    #: The client left and the application let ``send()``'s OSError out.
    CLIENT_LEFT = "client left"
    #: The application's ASGI mistake, already logged when it was made.
    MISTAKE = "ASGI mistake"
    #: Any other exception: a bug of the application, logged here.
    EXCEPTION = "exception"


class AppFaults:
    """Names one exchange in log lines and logs its application's faults.

    Args:
        head: The request (or upgrade request) being served.
        kind: ``""`` for HTTP, ``"websocket "`` for a WebSocket, as the log
            lines say it.
    """

    __slots__ = ("head", "kind", "mistake")

    def __init__(self, head: RequestLine, kind: str = "") -> None:
        self.head = head
        self.kind = kind
        #: The first ASGI mistake the application made, if any.
        self.mistake: ASGIProtocolError | None = None

    def describe(self) -> str:
        """The request line, quoted and escaped, for a log line."""
        return f'"{escape(self.head.method)} {escape(self.head.target)}"'

    def record_mistake(self, mistake: ASGIProtocolError) -> None:
        """Log the application's first ASGI mistake, naming it."""
        if self.mistake is None:
            self.mistake = mistake
            error_logger.error(
                "ASGI protocol error while serving %s%s: the application %s",
                self.kind,
                self.describe(),
                mistake,
            )

    def classify(self, exc: Exception) -> Raised:
        """Say what ``exc``, raised by the application, means, logging it once."""
        if _is_disconnect(exc):
            # Expected, not an application error worth a traceback.
            error_logger.debug("client left during %s%s", self.kind, self.describe())
            return Raised.CLIENT_LEFT
        if exc is self.mistake:
            return Raised.MISTAKE
        error_logger.exception(
            "exception in ASGI application while serving %s%s",
            self.kind,
            self.describe(),
        )
        hint_if_asyncio(exc)  # a generic failure whose cause is worth a line
        return Raised.EXCEPTION


def _is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` is ClientDisconnected, alone or as all of a group."""
    if isinstance(exc, ClientDisconnected):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_disconnect(inner) for inner in exc.exceptions)
    return False
