"""The narrow ports between the ASGI side of a request and the wire under it.

A :class:`~trasgi._io.request_stream.RequestStream` runs one HTTP request's
application and speaks ASGI to it; a
:class:`~trasgi._io.websocket.WebSocketSession` does the same for one
WebSocket. Neither knows which protocol carries it: each reaches the wire
only through the port it is given. The HTTP/1.1 connection implements both
ports today; an HTTP/2 stream implements :class:`RequestPort` the same way,
so one ASGI implementation serves every protocol.

What a port offers is deliberately small: the facts of the connection, the
next piece of request body (read on demand: backpressure), writing what the
response cycle framed, answering an error of its own, and an access record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from trasgi._config.config import Config
from trasgi._errors import PeerError
from trasgi._io.shared import ServerShared
from trasgi._observe.access import PLAIN, AccessNote, RequestLine
from trasgi._protocol.scope import ConnectionInfo

#: What a port writes: bytes for HTTP/1.1, frames' contents for HTTP/2.
Piece = TypeVar("Piece", contravariant=True)

#: One piece of request body and whether more follows (``more_body``); None
#: when the connection closed before the body ended.
BodyPiece = tuple[bytes, bool] | None


class ConnectionFacts(Protocol):
    """What a request may know of the connection that carries it."""

    @property
    def config(self) -> Config: ...
    @property
    def shared(self) -> ServerShared: ...
    @property
    def info(self) -> ConnectionInfo: ...
    @property
    def peer_lost(self) -> bool:
        """Whether a write failed: nothing more reaches the client."""
        ...

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        """The header fields the server adds to a response (Date, Server)."""
        ...

    async def refuse(self, error: PeerError, head: RequestLine | None) -> int:
        """Answer with the server's own error response; the exchange then ends.

        Returns the bytes of body written, for the access record.

        Error handling:
            Never raises for a client that is gone: there is no one to tell.
        """
        ...

    def log_access(
        self,
        head: RequestLine,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> None:
        """Hand one finished response to the access log and the metrics."""
        ...


class RequestPort(ConnectionFacts, Protocol[Piece]):
    """The wire under one HTTP request, as its request stream needs it."""

    @property
    def peer_closed(self) -> bool:
        """Whether the client closed its side: no more request bytes will come."""
        ...

    async def read_body(self) -> BodyPiece:
        """The next piece of request body, read from the client only now.

        Error handling:
            Raises :class:`PeerError` when the body breaks the protocol.
        """
        ...

    async def send_continue(self) -> None:
        """Tell the client to send its body (RFC 9110 section 10.1.1)."""
        ...

    async def write(self, pieces: Sequence[Piece]) -> None:
        """Write what the response cycle framed.

        Error handling:
            Raises :class:`~trasgi._errors.ClientDisconnected` once the client
            is gone.
        """
        ...

    async def wait_for_disconnect(self) -> None:
        """Return once the client is gone; cancelled when no longer wanted."""
        ...


class WebSocketPort(ConnectionFacts, Protocol[Piece]):
    """The wire under one WebSocket, once its opening request is read."""

    def take_over(self, sink: Callable[[bytes], None]) -> None:
        """Give ``sink`` every byte from now on, starting with any already read."""
        ...

    @property
    def peer_closed(self) -> bool: ...

    async def fill(self) -> None:
        """Read one more chunk from the client into the sink."""
        ...

    async def write(self, pieces: Sequence[Piece]) -> None:
        """Write the handshake's answer and the frames.

        Error handling:
            Raises :class:`~trasgi._errors.ClientDisconnected` once the client
            is gone.
        """
        ...

    def abort(self) -> None:
        """Give up on a graceful close: the connection closes without lingering."""
        ...

    async def close_now(self) -> None:
        """Close the stream at once, unblocking anything waiting on it."""
        ...
