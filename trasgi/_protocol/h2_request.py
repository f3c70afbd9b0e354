"""An HTTP/2 request head, as the ASGI side needs it, checked strictly.

A header block becomes an :class:`H2Request` with the shape of an HTTP/1.1
request (method, target, fields), in one pass that makes two kinds of
refusal. What RFC 9113 section 8.1.1 calls malformed (characters section
8.2.1 forbids, connection-specific fields, pseudo-header fields out of place,
repeated, unknown or missing) raises :class:`MalformedRequest`: a stream
error of type PROTOCOL_ERROR, no response. What is well-formed HTTP/2 but
unacceptable HTTP (a control character in a value, a bad method, a target or
header count over the limits) raises :class:`PeerError`: a 4xx, as on
HTTP/1.1. h2's own header checks are off (see ``h2_adaptor``): this module is
the one place a request head is judged. Pure: no I/O, no clock.
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
#: What RFC 9113 section 8.2.1 forbids outright in a name: controls, space,
#: upper case, non-ASCII, and a colon anywhere but first.
_MALFORMED_NAME = re.compile(rb".[\x00-\x20A-Z:\x7f-\xff]|^$|^[\x00-\x20A-Z\x7f-\xff]")
#: ... and in a value: NUL, CR, LF anywhere, whitespace at either end.
_MALFORMED_VALUE = re.compile(rb"[\x00\r\n]|^[ \t]|[ \t]$")
#: The pseudo-header fields of a request (RFC 9113 section 8.3.1, RFC 8441
#: section 4 for ``:protocol``); any other is malformed, ``:status`` too.
_REQUEST_PSEUDO = frozenset(
    (b":method", b":scheme", b":authority", b":path", b":protocol")
)
#: Fields that describe an HTTP/1.1 connection, never valid in HTTP/2 (RFC
#: 9113 section 8.2.2); ``te`` is allowed with the value ``trailers`` only.
_CONNECTION_SPECIFIC = frozenset(
    (
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
    )
)
#: A whole header block written as lines of ``name NUL value LF``: a
#: (pseudo-header or) lower-case token name, and a value of visible bytes,
#: spaces and tabs inside, none at either end. NUL and LF are valid in
#: neither part, so the split of every line is unambiguous (a space would
#: let the name ``x y`` pass as ``x`` with the value ``y ...``). One match
#: checks every field of a request; :func:`_first_bad_field` names the
#: culprit when it fails.
_VALID_BLOCK = re.compile(
    rb"(?::?[!#$%&'*+\-.^_`|~0-9a-z]+\x00"
    rb"(?:[^\x00-\x20\x7f](?:[^\x00-\x08\x0a-\x1f\x7f]*[^\x00-\x20\x7f])?)?\n)*"
)


class MalformedRequest(Exception):
    """A header block RFC 9113 section 8.1.1 calls malformed.

    The connection answers with RST_STREAM (PROTOCOL_ERROR), not a response,
    and counts the reset against the client's budget.
    """


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
        Raises :class:`MalformedRequest` for a block RFC 9113 section 8.1.1
        calls malformed (see the module's docstring). Raises
        :class:`PeerError`: 400 for an invalid ``:path`` or ``:method``, a
        control character in a value, or a malformed ``content-length``; 405
        for a CONNECT that is not an extended CONNECT (trasgi is no proxy);
        414 for a long target; 431 for too many fields; 413 for a declared
        body over the limit.
    """
    block = b"".join([b"%s\x00%s\n" % field for field in fields])
    # The line count makes sure no value carried a line feed of its own.
    if not _VALID_BLOCK.fullmatch(block) or block.count(b"\n") != len(fields):
        raise _first_bad_field(fields)
    pseudo: dict[bytes, bytes] = {}
    regular: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    for field in fields:
        name = field[0]
        if name[:1] == b":":
            _add_pseudo(pseudo, field, after_regular=bool(regular or cookies))
        elif name == b"cookie":
            cookies.append(field[1])
        elif name in _CONNECTION_SPECIFIC or (
            name == b"te" and field[1].lower() != b"trailers"
        ):
            raise MalformedRequest(f"connection-specific field {name.decode()}")
        else:
            regular.append(field)
    if len(regular) + len(cookies) > limits.max_fields:
        raise PeerError(431, "too many header fields")
    request = _request(pseudo, regular, cookies)
    if len(request.target) > limits.max_target:
        raise PeerError(414, "request target too long")
    _check_body_length(request, limits)
    return request


def malformed_trailers(fields: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Why a request's trailer block is malformed (RFC 9113 section 8.1), if it is.

    Trailers carry no pseudo-header field and obey the same character rules
    as the head; trasgi reads no request trailers otherwise.
    """
    for name, value in fields:
        if name[:1] == b":":
            return "a pseudo-header field in trailers"
        reason = _malformed_characters(name, value)
        if reason is not None:
            return reason
    return None


def _add_pseudo(
    pseudo: dict[bytes, bytes], field: tuple[bytes, bytes], *, after_regular: bool
) -> None:
    """Record a pseudo-header field, refusing it where section 8.3 does."""
    name = field[0]
    if after_regular:
        raise MalformedRequest("a pseudo-header field after a regular field")
    if name not in _REQUEST_PSEUDO:
        raise MalformedRequest(f"unknown pseudo-header field {name.decode()}")
    if name in pseudo:
        raise MalformedRequest(f"repeated pseudo-header field {name.decode()}")
    pseudo[name] = field[1]


def _first_bad_field(fields: Sequence[tuple[bytes, bytes]]) -> Exception:
    """The refusal naming the first field the block check refused.

    A character RFC 9113 section 8.2.1 forbids makes the block malformed; one
    that is merely invalid in HTTP (RFC 9110 section 5.5) gets a 400.
    """
    for name, value in fields:
        reason = _malformed_characters(name, value)
        if reason is not None:
            return MalformedRequest(reason)
    for name, value in fields:
        if _BAD_VALUE.search(value):
            return PeerError(400, f"invalid value of field {name.decode('latin-1')}")
        if not _TOKEN.fullmatch(name.removeprefix(b":")):
            break
    return PeerError(400, "invalid field name")


def _malformed_characters(name: bytes, value: bytes) -> str | None:
    if _MALFORMED_NAME.search(name):
        return "a forbidden character in a field name"
    if _MALFORMED_VALUE.search(value):
        return f"a forbidden character in field {name.decode('latin-1')}"
    return None


def _request(
    pseudo: dict[bytes, bytes],
    regular: list[tuple[bytes, bytes]],
    cookies: list[bytes],
) -> H2Request:
    method = pseudo.get(b":method")
    protocol = pseudo.get(b":protocol")
    if method is None:
        raise MalformedRequest("no :method")
    if protocol is not None and method != b"CONNECT":
        raise MalformedRequest(":protocol outside an extended CONNECT")
    if method == b"CONNECT" and protocol is None:
        raise PeerError(405, "CONNECT is not supported")
    target = pseudo.get(b":path")
    if target is None or b":scheme" not in pseudo:
        raise MalformedRequest("no :scheme or :path")
    if not target:
        raise MalformedRequest("an empty :path")
    if not (target.startswith(b"/") or (target == b"*" and method == b"OPTIONS")):
        raise PeerError(400, "invalid :path")
    if not _TOKEN.fullmatch(method.lower()):
        raise PeerError(400, "invalid :method")
    headers = _with_authority(pseudo.get(b":authority"), regular)
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    expect = next((v for n, v in regular if n == b"expect"), None)
    return H2Request(
        method, target, headers, protocol, expects_continue=expect == b"100-continue"
    )


def _with_authority(
    authority: bytes | None, regular: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The fields with ``:authority`` as ``host``, first (the ASGI spec's rule).

    RFC 9113 section 8.3.1: "http" and "https" requests name their authority
    by ``:authority`` or ``host``; one that names two different ones is
    malformed, as is a request with neither or with two ``host`` fields.
    """
    hosts = [value for name, value in regular if name == b"host"]
    if len(hosts) > 1:
        raise MalformedRequest("more than one host field")
    if authority is None:
        if not hosts:
            raise MalformedRequest("neither :authority nor host")
        return list(regular)
    if hosts:
        if hosts[0] != authority:
            raise MalformedRequest(":authority and host differ")
        regular = [field for field in regular if field[0] != b"host"]
    return [(b"host", authority), *regular]


def _check_body_length(request: H2Request, limits: HeadLimits) -> None:
    length = request.header(b"content-length")
    if length is None:
        return
    if not _DIGITS.fullmatch(length):
        raise PeerError(400, "malformed content-length")
    if limits.max_body is not None and int(length) > limits.max_body:
        raise PeerError(413, "request body too large")
