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
