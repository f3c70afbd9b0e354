"""The HTTP/1.1 request parsers: h11, or llhttp (httptools) under h11's rules.

The HTTP/1.1 connection drives one parser per request through the small
interface h11's own ``Connection`` has (:class:`H1Parser`): bytes in with
``receive_data``, events out of ``next_event`` (h11's ``Request``, ``Data``,
``EndOfMessage``, ``ConnectionClosed``, ``NEED_DATA``), the bytes read past
the request in ``trailing_data``. Two implementations satisfy it:

- ``h11``: an ``h11.Connection`` itself, the package's default.
- ``httptools``: :class:`HttptoolsParser`. llhttp (C) splits a request head
  that has already matched :data:`~trasgi._protocol.strict.STRICT_HEAD`, a
  grammar no wider than h11's (RFC 9112 sections 3 and 5), and h11's checks
  of the fields run on what it split: llhttp never decides alone what is a
  request. Whatever the fast path is not sure of is handed, bytes and all,
  to an ``h11.Connection``: a head that is not clean (it gets h11's own
  answer), a head llhttp will not take (a method outside its list, a
  version it does not know), a head over the size limit, and every chunked
  body (llhttp reports no byte offsets, so it cannot say where a chunked
  body ends within a read that also holds the next pipelined request).

Either way, the same strict layer (:mod:`trasgi._protocol.strict`) then
checks the head and reads a chunked body's framing lines, and the same
request stream runs the application. The differential test
(``tests/protocol/test_h1_differential.py``) holds both to the same answer
for every input. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, Protocol

import h11

from trasgi._protocol.strict import STRICT_HEAD

try:
    import httptools
except ImportError:  # pragma: no cover - the test extra installs it
    httptools = None  # type: ignore[assignment]

#: The ``--http`` values, as uvicorn spells them.
HTTPParserMode = Literal["auto", "h11", "httptools"]
HTTP_PARSER_MODES: tuple[HTTPParserMode, ...] = ("auto", "h11", "httptools")

#: What ``next_event()`` returns (h11's vocabulary, whichever parser).
H1Event = h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]


class H1Parser(Protocol):
    """The parser of one request, as the HTTP/1.1 connection drives it.

    ``h11.Connection`` satisfies it as it is; :class:`HttptoolsParser` too.
    """

    @property
    def their_state(self) -> object:
        """h11's state of the client: ``SEND_BODY``, ``DONE``, ``ERROR``..."""
        ...

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        """The bytes received and not parsed, and whether the input ended."""
        ...

    @property
    def client_is_waiting_for_100_continue(self) -> bool: ...

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the peer; ``b""`` means the input ended."""
        ...

    def next_event(self) -> H1Event:
        """The next event parsed from what was received.

        Error handling:
            Raises ``h11.RemoteProtocolError`` (with ``error_status_hint``)
            for a malformed request; the parser is then in ``ERROR``.
        """
        ...


def httptools_available() -> bool:
    """Whether the httptools parser can be used (``trasgi[fast]`` installed)."""
    return httptools is not None


def check_parser_available(mode: HTTPParserMode) -> None:
    """Refuse ``--http httptools`` where httptools is not installed.

    Error handling:
        Raises :class:`ValueError` naming the extra that installs it.
    """
    if mode == "httptools" and not httptools_available():
        raise ValueError(
            "http is 'httptools', but httptools is not installed "
            "(pip install -e '.[fast]' in a checkout of trasgi), "
            "or choose --http h11 or auto"
        )


def parser_factory(mode: HTTPParserMode, max_head: int) -> Callable[[], H1Parser]:
    """What makes a request's parser for ``--http``: ``auto`` prefers httptools.

    Args:
        mode: ``h11``, ``httptools``, or ``auto`` (httptools when installed).
        max_head: The largest request head, in bytes (431 past it).
    """
    if mode == "h11" or not httptools_available():
        return lambda: h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
    return lambda: HttptoolsParser(max_head)


#: Where h11 sees the end of a head: the first empty line, LF or CRLF ended.
_HEAD_END = re.compile(rb"\n\r?\n")

#: A chunked request as h11 must see it for its body alone: the real head was
#: parsed already; h11 then decodes the chunks and trailers by its own rules.
_CHUNKED_HEAD = b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"


class _Head:
    """llhttp's callbacks for one head: the target and the fields, in order."""

    __slots__ = ("fields", "target")

    def __init__(self) -> None:
        self.target = b""
        self.fields: list[tuple[bytes, bytes]] = []

    def on_url(self, url: bytes) -> None:
        self.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # llhttp keeps the whitespace before CRLF; h11 strips it (OWS, RFC 9112
        # section 5.1), and so must we for the same field values.
        self.fields.append((name, value.rstrip(b" \t")))


class HttptoolsParser:
    """One request parsed by llhttp, h11's rules kept (see the module's docstring).

    Args:
        max_head: The largest request head, in bytes (h11's
            ``max_incomplete_event_size``: 431 when a head is not complete
            within it).
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_h11",
        "_max_head",
        "_remaining",
        "_searched",
        "_state",
        "client_is_waiting_for_100_continue",
    )

    def __init__(self, max_head: int) -> None:
        self._buffer = bytearray()
        self._closed = False
        self._max_head = max_head
        #: h11, once it took over this request (see the module's docstring).
        self._h11: h11.Connection | None = None
        #: Body bytes still to come, with Content-Length framing.
        self._remaining = 0
        #: Where to look for the end of the head next: a head that arrives a
        #: byte at a time is searched once in all, not once per byte.
        self._searched = 0
        self._state: object = h11.IDLE
        self.client_is_waiting_for_100_continue = False

    @property
    def handed_to_h11(self) -> bool:
        """Whether h11 parses (the rest of) this request: see the module's docstring."""
        return self._h11 is not None

    @property
    def their_state(self) -> object:
        if self._h11 is not None:
            return self._h11.their_state
        return self._state

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        if self._h11 is not None:
            return self._h11.trailing_data
        return bytes(self._buffer), self._closed

    def receive_data(self, data: bytes) -> None:
        if self._h11 is not None:
            self._h11.receive_data(data)
        elif data:
            self._buffer += data
        else:
            self._closed = True

    def next_event(self) -> H1Event:
        if self._h11 is not None:
            return self._h11.next_event()
        state = self._state
        if state is h11.SEND_BODY:
            return self._body_event()
        if state is h11.IDLE:
            return self._head_event()
        if state is h11.ERROR:
            raise h11.RemoteProtocolError("Can't receive data when peer state is ERROR")
        # DONE: what follows belongs to the next request's parser.
        return h11.PAUSED

    # -- the head ----------------------------------------------------------

    def _head_event(self) -> H1Event:
        buffer = self._buffer
        end = _HEAD_END.search(buffer, self._searched)
        if end is None:
            if not buffer and self._closed:
                self._state = h11.CLOSED
                return h11.ConnectionClosed()
            if self._closed or len(buffer) > self._max_head:
                return self._hand_to_h11()  # its error, word for word
            # The end may straddle this read and the next: "\n\r" + "\n".
            self._searched = max(0, len(buffer) - 2)
            return h11.NEED_DATA
        head = bytes(buffer[: end.end()])
        if STRICT_HEAD.fullmatch(head) is None:
            return self._hand_to_h11()
        request = _parse_clean_head(head)
        if request is None:
            return self._hand_to_h11()
        del buffer[: len(head)]
        self._state = h11.SEND_BODY
        length, self.client_is_waiting_for_100_continue = _body_facts(request)
        if length is None:
            self._take_chunked()
        else:
            self._remaining = length
        return request

    def _hand_to_h11(self) -> H1Event:
        """Let h11 parse this request from its first byte."""
        parser = self._h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._max_head
        )
        if self._buffer:
            parser.receive_data(bytes(self._buffer))
        if self._closed:
            parser.receive_data(b"")
        self._buffer.clear()
        event = parser.next_event()
        self.client_is_waiting_for_100_continue = (
            parser.client_is_waiting_for_100_continue
        )
        return event

    def _take_chunked(self) -> None:
        """Hand a chunked body to h11, behind a stand-in head it consumes."""
        parser = self._h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self._max_head
        )
        parser.receive_data(_CHUNKED_HEAD)
        parser.next_event()  # the stand-in Request
        if self._buffer:
            parser.receive_data(bytes(self._buffer))
        if self._closed:
            parser.receive_data(b"")
        self._buffer.clear()

    # -- a Content-Length body ----------------------------------------------

    def _body_event(self) -> H1Event:
        remaining = self._remaining
        if remaining == 0:
            self._state = h11.DONE
            return h11.EndOfMessage()
        buffer = self._buffer
        if not buffer:
            if self._closed:
                self._state = h11.ERROR
                raise h11.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            return h11.NEED_DATA
        data = bytes(buffer[:remaining])
        del buffer[:remaining]
        self._remaining = remaining - len(data)
        self.client_is_waiting_for_100_continue = False
        return h11.Data(data=data)


def _parse_clean_head(head: bytes) -> h11.Request | None:
    """The request llhttp reads from a clean head; None where it or h11 would not.

    llhttp knows a fixed set of methods and versions: a head it refuses is
    left to h11, whose rules decide. h11's own checks of the parsed fields
    (Content-Length and Transfer-Encoding values, one Host) run as h11 runs
    them, on the fields as parsed.
    """
    assert httptools is not None
    fields = _Head()
    parser = httptools.HttpRequestParser(fields)
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass  # the head is whole; what the upgrade becomes is decided later
    except httptools.HttpParserError:
        return None
    try:
        # _parsed: what h11's own reader passes for a head it has matched
        # against its grammar (STRICT_HEAD did here): the field-name and value
        # patterns are not matched again, every other check of h11 runs.
        return h11.Request(
            method=parser.get_method(),
            target=fields.target,
            headers=fields.fields,
            http_version=parser.get_http_version().encode("ascii"),
            _parsed=True,
        )
    except h11.LocalProtocolError:
        return None


def _body_facts(request: h11.Request) -> tuple[int | None, bool]:
    """The body's length (None: chunked), and whether the client awaits 100.

    The fields are h11's normalised ones: at most one Transfer-Encoding,
    exactly ``chunked``, and one Content-Length of digits (RFC 9112 section
    6.3). ``Expect: 100-continue`` counts as h11 counts it, and only from an
    HTTP/1.1 client (RFC 9110 section 10.1.1). One pass over the fields.
    """
    length: int | None = 0
    expects_continue = False
    # raw_items(): a list; iterating the Headers sequence itself costs two
    # Python calls per field.
    for raw_name, value in request.headers.raw_items():
        name = raw_name.lower()
        if name == b"transfer-encoding":
            length = None
        elif name == b"content-length" and length is not None:
            length = int(value)
        elif name == b"expect":
            expects_continue = expects_continue or b"100-continue" in (
                part.strip().lower() for part in value.split(b",")
            )
    return length, expects_continue and request.http_version >= b"1.1"
