"""``Upgrade: h2c``: recognising the request and turning it into stream 1.

RFC 7540 section 3.2 (dropped from RFC 9113, still what ``curl --http2``
sends on ``http://`` URLs). Pure: the HTTP/1.1 connection reads the request
and writes the 101; what it asks and what it answers are decided here.
"""

from __future__ import annotations

import base64
import binascii

from trasgi._observe.access import RequestLine

#: The answer that accepts ``Upgrade: h2c`` (RFC 7540 section 3.2).
SWITCHING_TO_H2C = (
    b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
)

#: Fields of the HTTP/1.1 request that do not carry over to stream 1: its
#: connection's own, and the host that becomes ``:authority``.
_NOT_CARRIED = frozenset(
    {
        b"host",
        b"connection",
        b"upgrade",
        b"http2-settings",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
    }
)


def _tokens(headers: list[tuple[bytes, bytes]], wanted: bytes) -> set[bytes]:
    return {
        token.strip().lower()
        for name, value in headers
        if name == wanted
        for token in value.split(b",")
    }


def asks_h2c(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request asks to upgrade to HTTP/2 (RFC 7540 section 3.2).

    ``Upgrade`` must name ``h2c`` and ``Connection`` both ``Upgrade`` and
    ``HTTP2-Settings``. (Over TLS, where ALPN chooses, clients do not ask:
    RFC 7540 section 3.3.)
    """
    return b"h2c" in _tokens(headers, b"upgrade") and {
        b"upgrade",
        b"http2-settings",
    } <= _tokens(headers, b"connection")


def settings_payload(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The one ``HTTP2-Settings`` value, padded base64url; None if invalid."""
    values = [value.strip() for name, value in headers if name == b"http2-settings"]
    if len(values) != 1:
        return None  # RFC 7540 section 3.2.1: exactly one
    padded = values[0] + b"=" * (-len(values[0]) % 4)
    try:
        payload = base64.urlsafe_b64decode(padded)
    except (binascii.Error, ValueError):
        return None
    return padded if len(payload) % 6 == 0 else None


def h2_fields(
    request: RequestLine, headers: list[tuple[bytes, bytes]], scheme: str
) -> list[tuple[bytes, bytes]]:
    """The upgrading request as HTTP/2 header fields (RFC 9113 section 8.3.1)."""
    host = next((v for n, v in headers if n == b"host"), b"")
    fields = [
        (b":method", request.method),
        (b":scheme", scheme.encode("ascii")),
        (b":path", request.target),
        (b":authority", host),
    ]
    fields += [(n, v) for n, v in headers if n not in _NOT_CARRIED]
    return fields
