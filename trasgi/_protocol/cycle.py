"""The sans-I/O HTTP request cycle: ASGI messages in, bytes out.

:class:`ResponseCycle` takes the messages an application passes to ``send()``
and turns them into the bytes to write. h11 parses requests; responses are
framed here, because h11's general-purpose writer (an event object per
message, header normalisation, a state machine per call) was most of the
cost of a small response. The rules are RFC 9112's, and every header byte
is still validated, by one regular expression over the whole header block.
Which message may come when is a table, :data:`TRANSITIONS`; every message
that is not in the table is an ASGI mistake, explained by :func:`explain`.
Nothing here imports trio, reads a clock or awaits: the connection module
(``_io/``) does the I/O, and tests drive this class directly.
"""

from __future__ import annotations

import abc
import enum
import http
import re
from collections.abc import Callable, Iterable
from typing import Any, Generic, NoReturn, TypeVar

import h11

from trasgi._asgi import Message
from trasgi._errors import ASGIProtocolError


class Phase(enum.Enum):
    """Where the application is in sending one response."""

    #: Nothing sent yet; ``http.response.start`` expected.
    AWAITING_START = "awaiting start"
    #: Start received and held until the first body message (the ASGI spec
    #: forbids sending the head before a body message arrives).
    STARTED = "started"
    #: Head and some body written; more body expected.
    STREAMING = "streaming"
    #: The final body message was sent; the response is complete.
    COMPLETE = "complete"
    #: A mistake was made; nothing more will be sent.
    FAILED = "failed"


#: What a protocol's cycle hands its connection to write.
Out = TypeVar("Out")

START = "http.response.start"
BODY = "http.response.body"

#: (phase, message type) -> handler name. A pair missing here is a mistake.
TRANSITIONS: dict[tuple[Phase, str], str] = {
    (Phase.AWAITING_START, START): "_on_start",
    (Phase.STARTED, BODY): "_on_body",
    (Phase.STREAMING, BODY): "_on_body",
}

#: Why a message is wrong in a phase, for the messages an app may send.
_MISTAKES: dict[tuple[Phase, str], str] = {
    (
        Phase.AWAITING_START,
        BODY,
    ): "sent 'http.response.body' before 'http.response.start'",
    (Phase.STARTED, START): "sent 'http.response.start' twice",
    (
        Phase.STREAMING,
        START,
    ): "sent 'http.response.start' after the response body began",
    (
        Phase.COMPLETE,
        START,
    ): "sent 'http.response.start' after the response was complete",
    (Phase.COMPLETE, BODY): "sent 'http.response.body' after the final body message "
    "(more_body=False)",
}


def explain(phase: Phase, message_type: object) -> str:
    """Name the ASGI mistake of sending ``message_type`` in ``phase``."""
    if phase is Phase.FAILED:
        return f"sent {message_type!r} after an earlier ASGI mistake"
    known = _MISTAKES.get((phase, message_type))  # type: ignore[arg-type]
    if known is not None:
        return known
    return (
        f"sent a message of unknown type {message_type!r}; an HTTP application may "
        f"send only {START!r} and {BODY!r}"
    )


_REASONS = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}

#: Status codes that never carry a body (RFC 9110 sections 15.3.5 and 15.4.5).
NO_BODY_STATUSES = frozenset({204, 304})


class Framing(enum.Enum):
    """How the end of a response body is marked (RFC 9112 section 6.3)."""

    NONE = "no body"  # HEAD, 204, 304
    LENGTH = "content-length"
    CHUNKED = "chunked"
    CLOSE = "close-delimited"  # HTTP/1.0 without a length


#: A header field line as written: token ": " value CRLF (RFC 9110 sections
#: 5.1, 5.5 and 5.6.2). The value has no leading or trailing whitespace and no
#: control characters, so CR, LF and NUL can never reach the wire.
_FIELD_LINES = re.compile(
    rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: "
    rb"(?:[\x21-\x7e\x80-\xff](?:[ \t\x21-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?\r\n)*"
)
_DIGITS = re.compile(rb"[0-9]{1,18}")


class MessageOrder(abc.ABC, Generic[Out]):
    """What every protocol's response cycle shares: the order and the start.

    Validates the order of the application's messages against
    :data:`TRANSITIONS` and the ``http.response.start`` message (its status
    and every header byte); a subclass frames the body for its protocol,
    returning what its connection writes (``Out``).

    Args:
        method: The request method; a ``HEAD`` response has its body dropped.
        extra_headers: Headers the server adds (Date, Server) unless the
            application set a header of the same name.
    """

    def __init__(
        self, method: bytes, extra_headers: Iterable[tuple[bytes, bytes]] = ()
    ) -> None:
        self._is_head = method == b"HEAD"
        self._extra_headers = extra_headers
        self._headers: list[tuple[bytes, bytes]] = []
        self._lines = b""
        self.phase = Phase.AWAITING_START
        self.status: int | None = None
        self.body_bytes = 0
        #: Set once bytes have been handed out: from then on a failure can
        #: only abort the connection, not replace the response with a 500.
        self.wrote_anything = False
        #: Set by the connection before the start message when the connection
        #: will close after this response (shutdown, request limits).
        self.close_after = False

    def send(self, message: Message) -> list[Out]:
        """Take one message from the application; return what to write.

        Error handling:
            Raises :class:`ASGIProtocolError` naming the mistake when the
            message is out of order, of an unknown type or malformed; the cycle
            is then FAILED and refuses every later message.
        """
        message_type = message.get("type")
        handler_name = TRANSITIONS.get((self.phase, message_type))  # type: ignore[arg-type]
        if handler_name is None:
            self._fail(explain(self.phase, message_type))
        handler: Callable[[Message], list[Out]] = getattr(self, handler_name)
        return handler(message)

    def _fail(self, reason: str) -> NoReturn:
        self.phase = Phase.FAILED
        raise ASGIProtocolError(reason)

    @abc.abstractmethod
    def _on_body(self, message: Message) -> list[Out]:
        """Frame a body message for the protocol (``TRANSITIONS`` names it)."""

    # -- the head ----------------------------------------------------------

    def _on_start(self, message: Message) -> list[Out]:
        status = message.get("status")
        if (
            not isinstance(status, int)
            or isinstance(status, bool)
            or not 200 <= status <= 599
        ):
            self._fail(
                f"'http.response.start' needs an integer status 200-599, got {status!r}"
            )
        self._headers = self._validated_headers(message.get("headers", ()))
        self._lines = b"".join([b"%s: %s\r\n" % pair for pair in self._headers])
        # The pattern checks every byte; the line count makes sure no value
        # smuggled in a CRLF of its own (which would read as a second line).
        if not _FIELD_LINES.fullmatch(self._lines) or self._lines.count(b"\n") != len(
            self._headers
        ):
            self._fail(
                "'http.response.start' has an invalid header: "
                f"{_bad_header(self._headers)}"
            )
        self.status = status
        self.phase = Phase.STARTED
        return []

    def _validated_headers(self, raw: object) -> list[tuple[bytes, bytes]]:
        try:
            pairs = [tuple(pair) for pair in raw]  # type: ignore[attr-defined]
        except TypeError:
            self._fail(
                "'http.response.start' headers must be an iterable of pairs, "
                f"got {raw!r}"
            )
        for pair in pairs:
            if (
                len(pair) != 2
                or type(pair[0]) is not bytes
                or type(pair[1]) is not bytes
            ):
                self._fail(
                    "'http.response.start' headers must be [name, value] pairs "
                    f"of bytes, got {pair!r}"
                )
        return pairs


class ResponseCycle(MessageOrder[bytes]):
    """Validates one response's ASGI messages and frames them for HTTP/1.1.

    Args:
        method: The request method; a ``HEAD`` response has its body dropped.
        http_version: The request's version (``b"1.1"`` or ``b"1.0"``); an
            HTTP/1.0 client gets no chunked encoding.
        keep_alive: Whether the request allows the connection to be reused
            (HTTP/1.1 without ``Connection: close``).
        extra_headers: Headers the server adds (Date, Server) unless the
            application set a header of the same name.
    """

    def __init__(
        self,
        method: bytes,
        http_version: bytes = b"1.1",
        *,
        keep_alive: bool = True,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        super().__init__(method, extra_headers)
        self._http11 = http_version == b"1.1"
        self._framing = Framing.NONE
        self._remaining = 0
        #: Whether the connection must close after this response; decided
        #: when the head is written.
        self.must_close = not keep_alive

    def _head(self, body_is_whole: bool, body_size: int) -> bytes:
        """Choose the framing, then serialise and validate the head."""
        headers = self._headers
        names = {name.lower(): value for name, value in headers}
        extra = [(n, v) for n, v in self._extra_headers if n not in names]
        self._choose_framing(names, body_is_whole, body_size, extra)
        connection = names.get(b"connection", b"").lower()
        if b"close" in connection or self.close_after or self._framing is Framing.CLOSE:
            self.must_close = True
        if self.must_close and b"close" not in connection:
            extra.append((b"connection", b"close"))
        # The application's lines were validated with the start message; the
        # server's own are well-formed by construction.
        lines = self._lines + b"".join([b"%s: %s\r\n" % pair for pair in extra])
        status = self.status or 500
        return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, _REASONS.get(status, b""), lines)

    def _choose_framing(
        self,
        names: dict[bytes, bytes],
        body_is_whole: bool,
        body_size: int,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        length = names.get(b"content-length")
        encoding = names.get(b"transfer-encoding")
        if length is not None and encoding is not None:
            self._fail("sent both Content-Length and Transfer-Encoding headers")
        if length is not None and not _DIGITS.fullmatch(length):
            self._fail(f"sent a malformed Content-Length header: {length!r}")
        if encoding is not None and encoding.lower() != b"chunked":
            self._fail(f"sent Transfer-Encoding {encoding!r}; only chunked is framed")
        if self._is_head or self.status in NO_BODY_STATUSES:
            # RFC 9110 sections 9.3.2, 15.3.5 and 15.4.5: no body, whatever
            # the headers say (a HEAD response describes the GET one).
            self._framing = Framing.NONE
        elif length is not None:
            self._framing, self._remaining = Framing.LENGTH, int(length)
        elif encoding is not None and self._http11:
            self._framing = Framing.CHUNKED
        elif body_is_whole:
            # The whole body is known: say how long it is rather than chunk it.
            self._framing, self._remaining = Framing.LENGTH, body_size
            extra.append((b"content-length", b"%d" % body_size))
        elif self._http11:
            self._framing = Framing.CHUNKED
            extra.append((b"transfer-encoding", b"chunked"))
        else:
            self._framing = Framing.CLOSE  # RFC 9112 section 6.3, rule 8

    # -- the body ----------------------------------------------------------

    def _on_body(self, message: Message) -> list[bytes]:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            self._fail(
                f"'http.response.body' body must be bytes, got {type(body).__name__}"
            )
        more_body = bool(message.get("more_body", False))
        pieces: list[bytes] = []
        if self.phase is Phase.STARTED:
            pieces.append(self._head(not more_body, len(body)))
        pieces += self._frame(bytes(body) if isinstance(body, bytearray) else body)
        if not more_body:
            pieces += self._finish()
        self.phase = Phase.STREAMING if more_body else Phase.COMPLETE
        self.wrote_anything = True
        return pieces

    def _frame(self, body: bytes | memoryview) -> list[bytes]:
        size = len(body)
        if not size:
            return []
        framing = self._framing
        if framing is Framing.NONE:
            if not self._is_head:
                self._fail(
                    f"sent a body with a {self.status} response, which cannot have one"
                )
            return []
        self.body_bytes += size
        if framing is Framing.LENGTH:
            if size > self._remaining:
                self._fail(
                    "sent more body bytes than its Content-Length header declared"
                )
            self._remaining -= size
        elif framing is Framing.CHUNKED:
            return [b"%x\r\n" % size, body, b"\r\n"]  # type: ignore[list-item]
        return [body]  # type: ignore[list-item]

    def _finish(self) -> list[bytes]:
        if self._framing is Framing.LENGTH and self._remaining:
            self._fail(
                "finished the response with fewer body bytes than its Content-Length "
                "declared"
            )
        if self._framing is Framing.CHUNKED:
            return [b"0\r\n\r\n"]
        return []


def _bad_header(headers: list[tuple[bytes, bytes]]) -> str:
    """Name the first header that does not validate, for the log line."""
    return first_invalid_field(headers) or "(none)"


def first_invalid_field(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """Name the first field no valid field line could carry, or return None.

    RFC 9110 sections 5.1 and 5.5: a token name, a value without control
    characters or surrounding whitespace (so never CR, LF or NUL).
    """
    for name, value in headers:
        line = b"%s: %s\r\n" % (name, value)
        if not _FIELD_LINES.fullmatch(line) or line.count(b"\n") != 1:
            return f"{name!r}: {value!r}"
    return None


def request_message(event: h11.Data | h11.EndOfMessage) -> dict[str, Any]:
    """Turn a request body event into an ``http.request`` message."""
    if isinstance(event, h11.Data):
        return {"type": "http.request", "body": bytes(event.data), "more_body": True}
    return {"type": "http.request", "body": b"", "more_body": False}


DISCONNECT: dict[str, Any] = {"type": "http.disconnect"}
