"""The sans-I/O response cycle of one HTTP/2 stream: ASGI messages in, frames out.

The order of messages and the start message are checked exactly as for
HTTP/1.1 (:class:`~trasgi._protocol.cycle.MessageOrder`); what differs is the
framing. HTTP/2 frames the body itself (RFC 9113 section 8.1), so there is
no chunked encoding and no close-delimited body: :class:`H2ResponseCycle`
returns a :class:`ResponseHead` and :class:`ResponseData` pieces, which the
connection turns into HEADERS and DATA frames as the peer's windows allow.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from trasgi._protocol.cycle import (
    _DIGITS,
    NO_BODY_STATUSES,
    MessageOrder,
    Payload,
    Phase,
)
from trasgi._protocol.extensions import FileRegion

#: Fields that belong to one HTTP/1.1 connection and are malformed in HTTP/2
#: (RFC 9113 section 8.2.2; ``te`` is allowed in requests only): dropped from
#: an application's response.
CONNECTION_SPECIFIC = frozenset(
    {
        b"connection",
        b"te",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)


@attrs.frozen
class ResponseHead:
    """The response's HEADERS: status and fields, names in lower case."""

    status: int
    headers: list[tuple[bytes, bytes]]
    end_stream: bool


@attrs.frozen
class ResponseData:
    """A piece of the response body; ``end_stream`` on the last.

    ``data`` is bytes, or a file's region the stream reads and sends.
    """

    data: bytes | FileRegion
    end_stream: bool


@attrs.frozen
class ResponseTrailers:
    """The trailer section: a HEADERS frame that ends the stream (RFC 9113 8.1)."""

    headers: list[tuple[bytes, bytes]]


H2Out = ResponseHead | ResponseData | ResponseTrailers


class H2ResponseCycle(MessageOrder[H2Out]):
    """Validates one HTTP/2 response's ASGI messages and frames them.

    Args:
        method: The request method; a ``HEAD`` response has its body dropped.
        extra_headers: Headers the server adds (Date, Server) unless the
            application set a header of the same name.
    """

    def __init__(
        self,
        method: bytes,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
        *,
        trailers_accepted: bool = False,
    ) -> None:
        super().__init__(method, extra_headers, trailers_accepted=trailers_accepted)
        #: Body bytes the declared Content-Length still expects; None if
        #: the application declared none.
        self._remaining: int | None = None
        self._bodiless = False

    def _payload(self, payload: Payload, more_body: bool) -> list[H2Out]:
        data = bytes(payload) if isinstance(payload, memoryview) else payload
        pieces: list[H2Out] = []
        if self.phase is Phase.STARTED:
            head = self._head(not more_body, len(data))
            pieces.append(head)
            if head.end_stream:
                pieces += self._complete(more_body)
                self.wrote_anything = True
                return pieces
        pieces += self._frame(data, more_body)
        pieces += self._complete(more_body)
        self.wrote_anything = True
        return pieces

    def _complete(self, more_body: bool) -> list[H2Out]:
        if more_body:
            self.phase = Phase.STREAMING
            return []
        return self._body_done()

    def _ends_with_body(self) -> bool:
        """Whether the last body piece ends the stream (no trailers follow)."""
        return not self._trailers or self._bodiless

    def _interim(self, links: list[bytes]) -> list[H2Out]:
        return [ResponseHead(103, [(b"link", link) for link in links], False)]

    def _end(self, trailers: list[tuple[bytes, bytes]] | None) -> list[H2Out]:
        if self._ends_with_body():
            return []  # the head or the last DATA frame ended the stream
        if trailers:
            return [ResponseTrailers(trailers)]
        return [ResponseData(b"", True)]

    def _head(self, body_is_whole: bool, body_size: int) -> ResponseHead:
        names = {name.lower(): value for name, value in self._headers}
        length = names.get(b"content-length")
        if length is not None and not _DIGITS.fullmatch(length):
            self._fail(f"sent a malformed Content-Length header: {length!r}")
        # RFC 9110 sections 9.3.2, 15.3.5 and 15.4.5: no body, whatever the
        # headers say (a HEAD response describes the GET one).
        self._bodiless = self._is_head or self.status in NO_BODY_STATUSES
        headers = [
            (name.lower(), value)
            for name, value in self._headers
            if name.lower() not in CONNECTION_SPECIFIC
        ]
        headers += [(n, v) for n, v in self._extra_headers if n not in names]
        if length is not None:
            self._remaining = int(length)
        elif body_is_whole and not self._bodiless:
            self._remaining = body_size
            headers.append((b"content-length", b"%d" % body_size))
        whole_and_empty = body_is_whole and body_size == 0
        end = self._bodiless or (whole_and_empty and self._ends_with_body())
        if whole_and_empty and not self._bodiless and self._remaining:
            self._fail(
                "finished the response with fewer body bytes than its Content-Length "
                "declared"
            )
        if self._bodiless and body_size and not self._is_head:
            self._fail(
                f"sent a body with a {self.status} response, which cannot have one"
            )
        return ResponseHead(self.status or 500, headers, end)

    def _frame(self, data: bytes | FileRegion, more_body: bool) -> list[H2Out]:
        if self._bodiless:
            if len(data) and not self._is_head:
                self._fail(
                    f"sent a body with a {self.status} response, which cannot have one"
                )
            return []  # the head ended the stream
        size = len(data)
        self.body_bytes += size
        if self._remaining is not None:
            if size > self._remaining:
                self._fail(
                    "sent more body bytes than its Content-Length header declared"
                )
            self._remaining -= size
            if not more_body and self._remaining:
                self._fail(
                    "finished the response with fewer body bytes than its "
                    "Content-Length declared"
                )
        end_stream = not more_body and self._ends_with_body()
        if not size and not end_stream:
            return []
        return [ResponseData(data, end_stream)]
