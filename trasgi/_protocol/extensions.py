"""The ASGI HTTP response extensions trasgi serves, over HTTP/1.1 and HTTP/2.

An application learns what it may send from ``scope["extensions"]``:

* ``http.response.early_hint``: ``103 Early Hints`` (RFC 8297) carrying
  ``link`` fields, before the response. Offered on HTTP/1.1 and HTTP/2, not
  to HTTP/1.0 clients, which do not know interim responses (RFC 9110
  section 15.2).
* ``http.response.trailers``: fields after the body (RFC 9110 section 6.5).
  Offered when the client says it accepts them (``TE: trailers``, RFC 9110
  section 10.1.4), as the extension's text asks, on HTTP/1.1 and HTTP/2.
* ``http.response.pathsend`` and ``http.response.zerocopysend``: the body is
  a file the server sends itself, by path or from an open file, with
  ``os.sendfile`` where the socket allows. Offered everywhere; on TLS and
  HTTP/2 the server reads the file and writes what it read.

Pure: constants, the file region, and the rules for trailer fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
#: The messages whose body is a file the server sends.
FILE_MESSAGES = frozenset({PATHSEND, ZEROCOPYSEND})


@attrs.frozen
class FileRegion:
    """A stretch of an open file to send as (part of) a response body.

    Attributes:
        fd: The file's descriptor; whoever opened it closes it.
        offset: Where the stretch starts, in bytes from the file's start.
        count: How many bytes to send.
    """

    fd: int
    offset: int
    count: int

    def __len__(self) -> int:
        return self.count


#: Fields a trailer section must not carry (RFC 9110 section 6.5.1): what
#: frames the message, routes it, modifies the request, authenticates, or
#: controls the response, which a recipient needs before the body.
_NOT_IN_TRAILERS = {
    b"transfer-encoding": "frames the message",
    b"content-length": "frames the message",
    b"trailer": "announces trailers in the head",
    b"host": "routes the request",
    b"te": "modifies the request",
    b"expect": "modifies the request",
    b"range": "modifies the request",
    b"max-forwards": "modifies the request",
    b"authorization": "authenticates",
    b"proxy-authorization": "authenticates",
    b"www-authenticate": "authenticates",
    b"proxy-authenticate": "authenticates",
    b"set-cookie": "controls the response's state",
    b"cookie": "controls the request's state",
    b"cache-control": "controls caching",
    b"expires": "controls caching",
    b"age": "controls caching",
    b"vary": "controls caching",
    b"pragma": "controls caching",
    b"date": "controls the response",
    b"location": "controls the response",
    b"retry-after": "controls the response",
    b"connection": "is connection-specific",
    b"keep-alive": "is connection-specific",
    b"upgrade": "is connection-specific",
}


def trailer_mistake(name: bytes) -> str | None:
    """Why a field (lower-case name) may not be a trailer, or None if it may."""
    reason = _NOT_IN_TRAILERS.get(name)
    if reason is not None:
        return f"{reason} and cannot be a trailer (RFC 9110 section 6.5.1)"
    if name.startswith(b"content-"):
        return (
            "describes the content, which a recipient needs before the body "
            "(RFC 9110 section 6.5.1)"
        )
    return None


def accepts_trailers(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether the request's ``TE`` field lists ``trailers`` (RFC 9110 10.1.4)."""
    for name, value in headers:
        if name == b"te" and b"trailers" in (
            token.strip().split(b";", 1)[0] for token in value.lower().split(b",")
        ):
            return True
    return False


def response_extensions(
    http_version: str, headers: Iterable[tuple[bytes, bytes]]
) -> dict[str, dict[str, Any]]:
    """The response extensions offered to one request, each a fresh dict."""
    offered: dict[str, dict[str, Any]] = {PATHSEND: {}, ZEROCOPYSEND: {}}
    if http_version == "1.0":
        return offered
    offered[EARLY_HINT] = {}
    if accepts_trailers(headers):
        offered[TRAILERS] = {}
    return offered
