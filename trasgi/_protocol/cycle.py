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
from trasgi._protocol.extensions import (
    EARLY_HINT,
    PATHSEND,
    TRAILERS,
    ZEROCOPYSEND,
    FileRegion,
    trailer_mistake,
)


class Phase(enum.Enum):
    """Where the application is in sending one response."""

    #: Nothing sent yet; ``http.response.start`` expected.
    AWAITING_START = "awaiting start"
    #: Start received and held until the first body message (the ASGI spec
    #: forbids sending the head before a body message arrives).
    STARTED = "started"
    #: Head and some body written; more body expected.
    STREAMING = "streaming"
    #: The body is complete; ``http.response.trailers`` expected (the start
    #: message said ``trailers: True``).
    TRAILING = "trailing"
    #: The final body (or trailers) message was sent; the response is complete.
    COMPLETE = "complete"
    #: A mistake was made; nothing more will be sent.
    FAILED = "failed"


#: What a protocol's cycle hands its connection to write.
Out = TypeVar("Out")
#: What a response's body is made of: bytes, or a file's region.
Payload = bytes | memoryview | FileRegion

START = "http.response.start"
BODY = "http.response.body"
#: Every message type an HTTP application may send, the extensions' included.
APP_MESSAGES = (START, BODY, EARLY_HINT, PATHSEND, ZEROCOPYSEND, TRAILERS)

#: (phase, message type) -> handler name. A pair missing here is a mistake.
TRANSITIONS: dict[tuple[Phase, str], str] = {
    (Phase.AWAITING_START, START): "_on_start",
    (Phase.STARTED, BODY): "_on_body",
    (Phase.STREAMING, BODY): "_on_body",
    # RFC 8297: 103 Early Hints come before the final response's head, which
    # is held until the first body message.
    (Phase.AWAITING_START, EARLY_HINT): "_on_early_hint",
    (Phase.STARTED, EARLY_HINT): "_on_early_hint",
    # The extension allows a hint until the final body; once the head is on
    # the wire there is nothing it could precede, so it is dropped.
    (Phase.STREAMING, EARLY_HINT): "_drop_early_hint",
    # Path send replaces the body; zero-copy send mixes with body messages.
    (Phase.STARTED, PATHSEND): "_on_file",
    (Phase.STARTED, ZEROCOPYSEND): "_on_file",
    (Phase.STREAMING, ZEROCOPYSEND): "_on_file",
    (Phase.TRAILING, TRAILERS): "_on_trailers",
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
    (Phase.STREAMING, PATHSEND): f"sent {PATHSEND!r} after body messages; a path "
    "send is the whole body",
    (Phase.AWAITING_START, PATHSEND): f"sent {PATHSEND!r} before {START!r}",
    (Phase.AWAITING_START, ZEROCOPYSEND): f"sent {ZEROCOPYSEND!r} before {START!r}",
    (Phase.AWAITING_START, TRAILERS): f"sent {TRAILERS!r} before {START!r}",
    (Phase.STARTED, TRAILERS): f"sent {TRAILERS!r} before the final body message",
    (Phase.STREAMING, TRAILERS): f"sent {TRAILERS!r} before the final body message",
    (Phase.TRAILING, BODY): f"sent {BODY!r} after the final body message; "
    f"{TRAILERS!r} was expected (the start message said trailers=True)",
    (Phase.TRAILING, ZEROCOPYSEND): f"sent {ZEROCOPYSEND!r} after the final body "
    f"message; {TRAILERS!r} was expected",
    (Phase.COMPLETE, TRAILERS): f"sent {TRAILERS!r} after the response was "
    "complete (without trailers=True in the start message, or after "
    "more_trailers=False)",
}


def explain(phase: Phase, message_type: object) -> str:
    """Name the ASGI mistake of sending ``message_type`` in ``phase``."""
    if phase is Phase.FAILED:
        return f"sent {message_type!r} after an earlier ASGI mistake"
    known = _MISTAKES.get((phase, message_type))  # type: ignore[arg-type]
    if known is not None:
        return known
    if message_type in APP_MESSAGES:
        return f"sent {message_type!r} when the response was {phase.value}"
    allowed = ", ".join(repr(name) for name in APP_MESSAGES)
    return (
        f"sent a message of unknown type {message_type!r}; an HTTP application may "
        f"send only {allowed}"
    )


#: The standard reason phrase of each status code (RFC 9110 section 15).
REASON_PHRASES = {s.value: s.phrase.encode("ascii") for s in http.HTTPStatus}

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
        self,
        method: bytes,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
        *,
        trailers_accepted: bool = False,
    ) -> None:
        self._is_head = method == b"HEAD"
        self._extra_headers = extra_headers
        self._headers: list[tuple[bytes, bytes]] = []
        self._lines = b""
        #: Whether the client said it accepts trailer fields (``TE:
        #: trailers``); otherwise trailers are taken and dropped (ASGI spec).
        self._trailers_accepted = trailers_accepted
        #: Whether the start message announced trailers.
        self._trailers = False
        self._trailer_fields: list[tuple[bytes, bytes]] = []
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

    def abandon(self) -> None:
        """The connection could not send what was framed: nothing more is."""
        self.phase = Phase.FAILED

    def _on_body(self, message: Message) -> list[Out]:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            self._fail(
                f"'http.response.body' body must be bytes, got {type(body).__name__}"
            )
        payload = bytes(body) if isinstance(body, bytearray) else body
        return self._payload(payload, bool(message.get("more_body", False)))

    def _on_file(self, message: Message) -> list[Out]:
        """A file body (path or zero-copy send) whose region is resolved.

        The connection opened the file and put a :class:`FileRegion` in the
        message's ``region`` key before handing it over.
        """
        region: FileRegion = message["region"]
        return self._payload(region, bool(message.get("more_body", False)))

    @abc.abstractmethod
    def _payload(self, payload: Payload, more_body: bool) -> list[Out]:
        """Frame a piece of body (bytes, or a file's region) for the protocol."""

    @abc.abstractmethod
    def _interim(self, links: list[bytes]) -> list[Out]:
        """Frame a 103 Early Hints head carrying ``links``, or drop it."""

    @abc.abstractmethod
    def _end(self, trailers: list[tuple[bytes, bytes]] | None) -> list[Out]:
        """End the body, with its trailer section when there is one to send."""

    # -- the extensions ----------------------------------------------------

    def _on_early_hint(self, message: Message) -> list[Out]:
        links = message.get("links")
        try:
            values = list(links)  # type: ignore[arg-type]
        except TypeError:
            self._fail(
                f"{EARLY_HINT!r} links must be an iterable of bytes, got {links!r}"
            )
        if not values or not all(type(value) is bytes for value in values):
            self._fail(
                f"{EARLY_HINT!r} links must be a non-empty iterable of bytes, "
                f"got {links!r}"
            )
        bad = first_invalid_field([(b"link", value) for value in values])
        if bad is not None:
            self._fail(f"{EARLY_HINT!r} has an invalid link value: {bad}")
        return self._interim(values)

    def _drop_early_hint(self, message: Message) -> list[Out]:
        return []

    def _on_trailers(self, message: Message) -> list[Out]:
        fields = self._trailer_list(message.get("headers", ()))
        self._trailer_fields += fields
        if message.get("more_trailers", False):
            return []
        self.phase = Phase.COMPLETE
        if not self._trailers_accepted:
            return self._end(None)  # the client did not ask for them: dropped
        return self._end(self._trailer_fields)

    def _trailer_list(self, raw: object) -> list[tuple[bytes, bytes]]:
        try:
            pairs = [tuple(pair) for pair in raw]  # type: ignore[attr-defined]
        except TypeError:
            self._fail(
                f"{TRAILERS!r} headers must be an iterable of pairs, got {raw!r}"
            )
        fields: list[tuple[bytes, bytes]] = []
        for pair in pairs:
            if len(pair) != 2 or not all(type(part) is bytes for part in pair):
                self._fail(
                    f"{TRAILERS!r} headers must be [name, value] pairs of bytes, "
                    f"got {pair!r}"
                )
            fields.append((pair[0].lower(), pair[1]))
        bad = first_invalid_field(fields)
        if bad is not None:
            self._fail(f"{TRAILERS!r} has an invalid field: {bad}")
        for name, _ in fields:
            mistake = trailer_mistake(name)
            if mistake is not None:
                self._fail(f"{TRAILERS!r} has the field {name!r}, which {mistake}")
        return fields

    def _body_done(self) -> list[Out]:
        """The final body message: the end, or the wait for trailers."""
        if self._trailers:
            self.phase = Phase.TRAILING
            return []
        self.phase = Phase.COMPLETE
        return self._end(None)

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
        self._trailers = bool(message.get("trailers", False))
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


#: What the HTTP/1.1 connection writes: bytes, and file regions to send as
#: they are (``os.sendfile`` where it can).
H1Out = bytes | memoryview | FileRegion


class ResponseCycle(MessageOrder[H1Out]):
    """Validates one response's ASGI messages and frames them for HTTP/1.1.

    Args:
        method: The request method; a ``HEAD`` response has its body dropped.
        http_version: The request's version (``b"1.1"`` or ``b"1.0"``); an
            HTTP/1.0 client gets no chunked encoding.
        keep_alive: Whether the request allows the connection to be reused
            (HTTP/1.1 without ``Connection: close``).
        extra_headers: Headers the server adds (Date, Server) unless the
            application set a header of the same name.
        trailers_accepted: Whether the request said ``TE: trailers``: a
            response announcing trailers is then chunked, its trailer section
            carrying them (RFC 9112 section 7.1.2).
    """

    def __init__(
        self,
        method: bytes,
        http_version: bytes = b"1.1",
        *,
        keep_alive: bool = True,
        extra_headers: Iterable[tuple[bytes, bytes]] = (),
        trailers_accepted: bool = False,
    ) -> None:
        http11 = http_version == b"1.1"
        super().__init__(
            method, extra_headers, trailers_accepted=trailers_accepted and http11
        )
        self._http11 = http11
        self._framing = Framing.NONE
        self._remaining = 0
        #: Whether the connection must close after this response; decided
        #: when the head is written.
        self.must_close = not keep_alive

    def _head(self, body_is_whole: bool, body_size: int) -> bytes:
        """Choose the framing, then serialise and validate the head."""
        if self._trailers and self._trailers_accepted:
            self._frame_for_trailers()
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
        return b"HTTP/1.1 %d %s\r\n%s\r\n" % (
            status,
            REASON_PHRASES.get(status, b""),
            lines,
        )

    def _frame_for_trailers(self) -> None:
        """Trailers need the chunked coding: a declared length gives way to it.

        The application asked for trailers where they were offered; only a
        chunked body can carry them (RFC 9112 section 7.1.2), and a message
        must not have both framings (RFC 9112 section 6.1).
        """
        if self._is_head or self.status in NO_BODY_STATUSES:
            return
        kept = [
            (name, value)
            for name, value in self._headers
            if name.lower() not in (b"content-length", b"transfer-encoding")
        ]
        if len(kept) != len(self._headers):
            self._headers = kept
            self._lines = b"".join([b"%s: %s\r\n" % pair for pair in kept])
        self._headers.append((b"transfer-encoding", b"chunked"))
        self._lines += b"transfer-encoding: chunked\r\n"

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

    def _payload(self, payload: Payload, more_body: bool) -> list[H1Out]:
        pieces: list[H1Out] = []
        if self.phase is Phase.STARTED:
            pieces.append(self._head(not more_body, len(payload)))
        pieces += self._frame(payload)
        if not more_body:
            pieces += self._body_done()  # may refuse a short body: nothing sent
        else:
            self.phase = Phase.STREAMING
        self.wrote_anything = True
        return pieces

    def _interim(self, links: list[bytes]) -> list[H1Out]:
        if not self._http11:
            return []  # RFC 9110 section 15.2: not to an HTTP/1.0 client
        lines = b"".join([b"link: %s\r\n" % link for link in links])
        return [b"HTTP/1.1 103 Early Hints\r\n%s\r\n" % lines]

    def _frame(self, body: Payload) -> list[H1Out]:
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
            return [b"%x\r\n" % size, body, b"\r\n"]
        return [body]

    def _end(self, trailers: list[tuple[bytes, bytes]] | None) -> list[H1Out]:
        if self._framing is Framing.LENGTH and self._remaining:
            self._fail(
                "finished the response with fewer body bytes than its Content-Length "
                "declared"
            )
        if self._framing is not Framing.CHUNKED:
            return []
        if not trailers:
            return [b"0\r\n\r\n"]
        # RFC 9112 section 7.1.2: the last chunk, then the trailer section.
        lines = b"".join([b"%s: %s\r\n" % field for field in trailers])
        return [b"0\r\n%s\r\n" % lines]


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
