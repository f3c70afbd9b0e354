"""An HTTP/2 request head, as the ASGI side needs it, checked strictly.

h2 has already refused what RFC 9113 section 8 calls malformed at the
framing level (pseudo-header fields out of place or repeated, upper-case
names, connection-specific fields). Here the head becomes an
:class:`H2Request` with the shape of an HTTP/1.1 request (method, target,
fields), and meets the same limits and checks as an HTTP/1.1 head where
they apply. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from trasgi._errors import PeerError
from trasgi._protocol.strict import HeadLimits

#: What the access log and the metrics call the protocol (the request line
#: ``GET / HTTP/2.0``); the scope says ``"2"``, as the ASGI spec has it.
H2_VERSION = b"2.0"

#: NUL, CR and LF are never valid in a field (RFC 9113 section 8.2.1), and
#: other control characters are not valid in a value (RFC 9110 section 5.5).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|^[ \t]|[ \t]$")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
#: A whole header block written as lines of ``name SP value LF``: a
#: (pseudo-header or) lower-case token name, and a value of visible bytes,
#: spaces and tabs inside, none at either end. One match checks every field
#: of a request; :func:`_first_bad_field` names the culprit when it fails.
_VALID_BLOCK = re.compile(
    rb"(?::?[!#$%&'*+\-.^_`|~0-9a-z]+ "
    rb"(?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)?\n)*"
)


@attrs.frozen
class H2Request:
    """One HTTP/2 request head.

    Attributes:
        method: ``:method``.
        target: ``:path`` (with its query); ``*`` for server-wide OPTIONS.
        headers: The regular fields, with ``:authority`` given as ``host``
            first (the ASGI spec's rule for HTTP/2) and the ``cookie`` crumbs
            joined into one field (RFC 9113 section 8.2.3).
        protocol: ``:protocol`` of an extended CONNECT (RFC 8441), or None.
        expects_continue: Whether the request has ``expect: 100-continue``.
        http_version: :data:`H2_VERSION`, for the access record.
    """

    method: bytes
    target: bytes
    headers: Sequence[tuple[bytes, bytes]]
    protocol: bytes | None = None
    expects_continue: bool = False
    http_version: bytes = H2_VERSION

    def header(self, name: bytes) -> bytes | None:
        """The first value of a field (lower-case name), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def parse_h2_request(
    fields: Sequence[tuple[bytes, bytes]], limits: HeadLimits
) -> H2Request:
    """Turn a stream's header block into a request, refusing what is unsafe.

    Error handling:
        Raises :class:`PeerError`: 400 for a missing or invalid pseudo-header
        field, a control character or surrounding whitespace in a value, or a
        malformed ``content-length``; 405 for a CONNECT that is not an
        extended CONNECT (trasgi is no proxy); 414 for a long target; 431 for
        too many fields; 413 for a declared body over the limit.
    """
    block = b"".join([b"%s %s\n" % field for field in fields])
    # The line count makes sure no value carried a line feed of its own.
    if not _VALID_BLOCK.fullmatch(block) or block.count(b"\n") != len(fields):
        raise _first_bad_field(fields)
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    for field in fields:
        name = field[0]
        if name[:1] == b":":
            pseudo[name] = field[1]
        elif name == b"cookie":
            cookies.append(field[1])
        else:
            regular.append(field)
    if len(regular) + len(cookies) > limits.max_fields:
        raise PeerError(431, "too many header fields")
    request = _request(pseudo, regular, cookies)
    if len(request.target) > limits.max_target:
        raise PeerError(414, "request target too long")
    _check_body_length(request, limits)
    return request


def _first_bad_field(fields: Sequence[tuple[bytes, bytes]]) -> PeerError:
    """The 400 naming the first field the block check refused."""
    for name, value in fields:
        if _BAD_VALUE.search(value):
            return PeerError(400, f"invalid value of field {name.decode('latin-1')}")
        if not _TOKEN.fullmatch(name.removeprefix(b":")):
            break
    return PeerError(400, "invalid field name")


def _request(
    pseudo: dict[bytes, bytes],
    regular: list[tuple[bytes, bytes]],
    cookies: list[bytes],
) -> H2Request:
    method = pseudo.get(b":method", b"")
    protocol = pseudo.get(b":protocol")
    if method == b"CONNECT" and protocol is None:
        raise PeerError(405, "CONNECT is not supported")
    target = pseudo.get(b":path", b"")
    if not (target.startswith(b"/") or (target == b"*" and method == b"OPTIONS")):
        raise PeerError(400, "invalid :path")
    if not _TOKEN.fullmatch(method.lower()):
        raise PeerError(400, "invalid :method")
    authority = pseudo.get(b":authority")
    headers: list[tuple[bytes, bytes]] = []
    if authority is not None:
        # The ASGI spec: ":authority" becomes the "host" header; a host field
        # of the request's own is then redundant (RFC 9113 section 8.3.1).
        headers.append((b"host", authority))
        regular = [(n, v) for n, v in regular if n != b"host"]
    headers += regular
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    expect = next((v for n, v in regular if n == b"expect"), None)
    return H2Request(
        method, target, headers, protocol, expects_continue=expect == b"100-continue"
    )


def _check_body_length(request: H2Request, limits: HeadLimits) -> None:
    length = request.header(b"content-length")
    if length is None:
        return
    if not _DIGITS.fullmatch(length):
        raise PeerError(400, "malformed content-length")
    if limits.max_body is not None and int(length) > limits.max_body:
        raise PeerError(413, "request body too large")
