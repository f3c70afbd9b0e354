"""``--header NAME:VALUE``: response header fields the server adds to every response."""

from __future__ import annotations

import re

#: A field name is a token (RFC 9110 section 5.1 and 5.6.2).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: A field value is visible characters, spaces and tabs (RFC 9110 section
#: 5.5); CR, LF and NUL could end the field early, so a header could forge
#: another or split the response.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
#: Fields the server writes itself from the response's framing, and the
#: connection-specific ones that RFC 9113 section 8.2.2 forbids in HTTP/2: a
#: fixed value would contradict the message it is sent with.
_SERVER_MANAGED = frozenset(
    {
        "connection",
        "content-length",
        "date",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Where one ``TRASGI_HEADER`` variable holds several fields: a comma
#: followed by the next field's ``NAME:``, so that a value keeps its own
#: commas (``cache-control: no-store, max-age=0``).
_NEXT_FIELD = re.compile(r",\s*(?=[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*:)")


def parse_header(text: str) -> tuple[bytes, bytes]:
    """Parse ``NAME:VALUE`` into a lower-case name and a value, as bytes.

    Error handling:
        Raises :class:`ValueError` with a one-line reason for a missing colon,
        a name that is not a token, a value with control characters, or a
        field the server writes itself.
    """
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip(" \t")
    if not colon:
        raise ValueError(f"--header must be NAME:VALUE, got {text!r}")
    if not _TOKEN.fullmatch(name):
        raise ValueError(f"--header {text!r}: {name!r} is not a valid header name")
    if not _FIELD_VALUE.fullmatch(value):
        raise ValueError(f"--header {text!r}: the value has control characters")
    if name.lower() in _SERVER_MANAGED:
        raise ValueError(f"--header {text!r}: the server writes {name.lower()} itself")
    return name.lower().encode("ascii"), value.encode("latin-1")


def split_header_list(text: str) -> tuple[str, ...]:
    """Split ``"x-a: 1, x-b: 2"`` into fields, keeping commas inside values."""
    return tuple(part.strip() for part in _NEXT_FIELD.split(text) if part.strip())
