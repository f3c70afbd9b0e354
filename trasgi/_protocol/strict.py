"""Strict checks of a request head, beyond what h11 enforces.

h11 parses HTTP/1.1 correctly, but some inputs it accepts are where request
smuggling lives: a front proxy and this server must never disagree about
where a request ends. Each rule below closes such a gap, or enforces a limit
however the bytes arrived. Pure functions over the parsed request and its raw
head bytes; tested by tables in ``tests/hostile/``, with each parser. The
grammar :data:`STRICT_HEAD` is what lets a parser other than h11 (llhttp, see
:mod:`trasgi._protocol.h1_parsers`) give the same answers.
"""

from __future__ import annotations

import ast
import enum
import re

import attrs
import h11

from trasgi._errors import PeerError

#: HTTP versions a request may carry; anything else is 505 (RFC 9110 15.6.6).
SUPPORTED_VERSIONS = (b"1.0", b"1.1")

# A line feed not preceded by a carriage return (RFC 9112 section 2.2 lets a
# recipient accept it, but a proxy in front may not: reject to agree).
_BARE_LF = re.compile(rb"(?<!\r)\n")
# A header line that starts with whitespace continues the previous one
# (obs-fold, RFC 9112 section 5.2): the server may reject it with 400.
_OBS_FOLD = re.compile(rb"\r?\n[ \t]")
# Control characters other than HTAB in a field value (RFC 9110 section 5.5).
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# How h11 quotes the offending bytes in its messages: the repr of the bytes,
# or of the bytearray it parses from (``bytearray(b'Host x')``).
_BYTES_REPR = re.compile(
    r"""(bytearray\()?(b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*")(?(1)\))"""
)


def readable_parser_message(message: str) -> str:
    """h11's message with the quoted bytes as the text a peer sent.

    ``illegal header line: bytearray(b'Host x')`` becomes ``illegal header
    line: 'Host x'``: the 400's body and the log show the line, not a Python
    type. Bytes that are not ASCII stay escaped.
    """

    def as_text(match: re.Match[str]) -> str:
        data: bytes = ast.literal_eval(match.group(2))
        return repr(data.decode("ascii", "backslashreplace"))

    return _BYTES_REPR.sub(as_text, message)


#: A token (RFC 9110 section 5.6.2): methods and field names.
_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
#: A visible byte or obs-text: what field values and targets are made of.
_VCHAR = rb"[\x21-\x7e\x80-\xff]"
#: A head as h11 and this layer both take it as it stands: a request line and
#: CRLF-ended field lines, then the empty line (h11's grammar of RFC 9112
#: sections 3 and 5, less what :func:`check_head` refuses anyway: bare LF,
#: obs-fold, control characters). A parser laxer than h11 (llhttp takes a
#: request line with two spaces, a head after an empty line) is trusted only
#: to split heads that match it; h11's checks of the parsed fields (one Host,
#: Content-Length digits, Transfer-Encoding exactly ``chunked``) come after.
STRICT_HEAD = re.compile(
    rb"%(token)s [\x21-\x7e]+ HTTP/[0-9]\.[0-9]\r\n"
    rb"(?:%(token)s:[ \t]*(?:%(vchar)s+(?:[ \t]+%(vchar)s+)*)?[ \t]*\r\n)*"
    rb"\r\n" % {b"token": _TOKEN, b"vchar": _VCHAR}
)


@attrs.frozen
class HeadLimits:
    """The limits a request head is checked against."""

    max_target: int
    max_fields: int
    max_body: int | None


def check_head(
    request: h11.Request,
    raw_head: bytes,
    limits: HeadLimits,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Reject a request head that is valid to h11 but unsafe or over a limit.

    Args:
        request: The request as h11 parsed it.
        raw_head: The bytes h11 consumed for it: request line and headers.
        limits: Target length, header count and body size limits.
        headers: ``list(request.headers)``, when the caller already has it.

    Error handling:
        Raises :class:`PeerError` with the status to answer: 505 for an HTTP
        version other than 1.0 and 1.1, 414 for a long target, 431 for too
        many header fields, 413 for a declared body over the limit, and 400
        for bare LF line endings, obs-fold, control characters in a header
        value, Content-Length with Transfer-Encoding, or Transfer-Encoding in
        an HTTP/1.0 request.
    """
    if request.http_version not in SUPPORTED_VERSIONS:
        raise PeerError(505, "only HTTP/1.0 and HTTP/1.1 are supported")
    if len(request.target) > limits.max_target:
        raise PeerError(414, "request target too long")
    if headers is None:
        headers = list(request.headers)
    if len(headers) > limits.max_fields:
        raise PeerError(431, "too many header fields")
    _check_line_endings(raw_head)
    _check_framing(request, headers, limits.max_body)


#: Every byte but the control characters a head must not hold: deleting
#: these from a head leaves only faulty ones. (CR and LF are here too: where
#: they may appear is checked by counting.)
_ALLOWED_BYTES = bytes(
    sorted({*range(0x20, 0x7F), *range(0x80, 0x100), 0x09, 0x0A, 0x0D})
)


def _has_fault(raw_head: bytes) -> bool:
    """Whether the head has any of the faults below, in a few passes in C.

    Every CR starts a CRLF and every LF ends one (no bare LF or CR), no line
    starts with whitespace (obs-fold), and no control character is left.
    """
    line_feeds = raw_head.count(b"\n")
    return (
        line_feeds != raw_head.count(b"\r\n")
        or line_feeds != raw_head.count(b"\r")
        or b"\n " in raw_head
        or b"\n\t" in raw_head
        or bool(raw_head.translate(None, _ALLOWED_BYTES))
    )


def _check_line_endings(raw_head: bytes) -> None:
    if not _has_fault(raw_head):
        return
    if _BARE_LF.search(raw_head):
        raise PeerError(400, "malformed request: bare LF line ending (use CRLF)")
    if _OBS_FOLD.search(raw_head):
        raise PeerError(400, "malformed request: obsolete line folding in a header")
    if _CONTROL.search(raw_head.replace(b"\r\n", b"")):
        raise PeerError(400, "malformed request: control character in a header")


def _check_framing(
    request: h11.Request, headers: list[tuple[bytes, bytes]], max_body: int | None
) -> None:
    # One pass over the fields: this runs for every request.
    length: bytes | None = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            length = value if length is None else length
        elif name == b"transfer-encoding":
            chunked = True
    if chunked and length is not None:
        # RFC 9112 section 6.1: a server MAY reject such a request, and
        # must close after it if not; two framings are how smuggling works.
        raise PeerError(
            400, "malformed request: both Content-Length and Transfer-Encoding"
        )
    if chunked and request.http_version == b"1.0":
        # RFC 9112 section 6.1: HTTP/1.0 has no chunked framing.
        raise PeerError(
            400, "malformed request: Transfer-Encoding in an HTTP/1.0 request"
        )
    if max_body is not None and length is not None and int(length) > max_body:
        raise PeerError(413, "request body too large")


class _Framing(enum.Enum):
    """Where :class:`ChunkedFraming` is in a chunked body."""

    SIZE_LINE = "size line"
    DATA = "data"
    DATA_END = "CRLF after the data"
    TRAILERS = "trailer section"
    DONE = "done"


#: A chunk-size line: hex digits, then an extension after optional
#: whitespace (BWS) and ";" whose bytes are visible, obs-text, SP or HTAB,
#: then CRLF (RFC 9112 section 7.1.1). No bare CR, no whitespace before CRLF
#: without an extension; at most 20 digits, as h11 reads them.
_CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]{1,20}(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r\n")
#: A trailer field line (RFC 9112 section 7.1.2, the field-line grammar of
#: section 5), or the empty line that ends the body: no bare LF or CR, no
#: obs-fold, no control character.
_TRAILER_LINE = re.compile(
    rb"(?:%(token)s:[\t\x20-\x7e\x80-\xff]*)?\r\n" % {b"token": _TOKEN}
)


class ChunkedFraming:
    """The framing lines of a chunked request body, checked as its bytes arrive.

    h11 decodes chunked bodies (with either parser) and finds each line's
    end at CRLF, but it reads the lines loosely: it takes whitespace before
    the CRLF of a chunk-size line (a space after ``5``), any byte but LF in a chunk
    extension (a bare CR too), and trailer lines ended by a bare LF or
    folded. A proxy in front that ends a line at a bare CR or LF would frame
    the body otherwise: request smuggling. This reads the same bytes beside
    the parser, skipping chunk data by count, and records the first fault;
    the connection refuses the request with 400 before it hands over
    anything parsed after the fault. Pure; what follows the body's end (a
    pipelined request) is ignored.

    Args:
        max_line: The longest framing line kept while it is incomplete (the
            head size limit); a longer one is a fault.
    """

    __slots__ = ("_line", "_max_line", "_remaining", "_state", "fault")

    def __init__(self, max_line: int) -> None:
        self._max_line = max_line
        self._state = _Framing.SIZE_LINE
        self._line = b""
        self._remaining = 0
        #: Why the framing is refused (the 400's reason), once it is.
        self.fault: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the body's last line (the trailer section's end) was read."""
        return self._state is _Framing.DONE

    def feed(self, data: bytes) -> None:
        """Read more of the body (and maybe beyond it); ``b""`` is the end."""
        position, size = 0, len(data)
        while position < size and self.fault is None:
            state = self._state
            if state is _Framing.DONE:
                return
            if state is _Framing.DATA:
                taken = min(self._remaining, size - position)
                self._remaining -= taken
                position += taken
                if not self._remaining:
                    self._state = _Framing.DATA_END
            else:
                position = self._take_line(data, position)

    def _take_line(self, data: bytes, position: int) -> int:
        """Add to the current line; check it once it ended; the new position."""
        if self._state is _Framing.DATA_END:
            # Exactly CRLF: no need to wait for an LF that may never come.
            end = position + 2 - len(self._line)
            self._line += data[position:end]
            if not b"\r\n".startswith(self._line):
                self.fault = "chunk data not followed by CRLF"
            elif len(self._line) == 2:
                self._end_line()
            return end
        end = data.find(b"\n", position)
        if end < 0:
            self._line += data[position:]
            if len(self._line) > self._max_line:
                self.fault = f"{self._state.value} too long"
            return len(data)
        self._line += data[position : end + 1]
        self._end_line()
        return end + 1

    def _end_line(self) -> None:
        line, self._line = self._line, b""
        state = self._state
        if state is _Framing.DATA_END:
            self._state = _Framing.SIZE_LINE
        elif state is _Framing.SIZE_LINE:
            if _CHUNK_LINE.fullmatch(line) is None:
                self.fault = f"malformed chunk size line {line[:40]!r}"
                return
            self._remaining = int(line.split(b";", 1)[0], 16)
            self._state = _Framing.DATA if self._remaining else _Framing.TRAILERS
        elif _TRAILER_LINE.fullmatch(line) is None:
            self.fault = f"malformed trailer line {line[:40]!r}"
        elif line == b"\r\n":
            self._state = _Framing.DONE
