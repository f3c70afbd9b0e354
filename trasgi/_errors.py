"""The error taxonomy: whose fault a failure is decides what happens next.

* :class:`PeerError`: the client broke HTTP. It gets a 4xx with a short reason
  and the connection is closed.
* :class:`ASGIProtocolError`: the application misused ASGI. It gets a 500 (or
  the connection is aborted once the response has started) and a log line
  naming the mistake.
* :class:`ClientDisconnected`: ``send()`` was called after the client went
  away. It is an :class:`OSError`, as ASGI HTTP spec 2.4 asks.
* Anything else raised inside the server is a bug in trasgi and propagates.
"""

from __future__ import annotations


class PeerError(Exception):
    """The peer sent something that is not acceptable HTTP.

    Attributes:
        status_code: The 4xx (or 5xx, for 505) status to answer with.
        reason: A short, plain-text explanation sent as the response body.
        headers: Header fields the answer must carry besides the server's own,
            such as ``retry-after`` with a 503.
    """

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(f"{status_code} {reason}")
        self.status_code = status_code
        self.reason = reason
        self.headers = headers


class ASGIProtocolError(RuntimeError):
    """The application broke the ASGI protocol; the message names the mistake."""


class ClientDisconnected(OSError):
    """The client is gone: the message cannot be delivered.

    Raised by ``send()`` when the connection was closed by the peer or broken,
    as required by ASGI HTTP spec version 2.4.
    """


class LifespanFailure(Exception):
    """The application's lifespan startup or shutdown failed."""


class AppLoadError(Exception):
    """The application named on the command line could not be loaded."""
