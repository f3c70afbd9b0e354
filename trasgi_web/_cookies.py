"""Cookie parsing and ``Set-Cookie`` formatting (RFC 6265)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Literal

# cookie-name is an RFC 9110 token (RFC 6265 section 4.1.1).
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# cookie-octet: visible ASCII but for DQUOTE, comma, semicolon and backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Attribute values may not hold control characters or ";" (section 4.1.1).
_ATTRIBUTE_VALUE = re.compile(r"[\x20-\x3a\x3c-\x7e]*")

SameSite = Literal["lax", "strict", "none"]


def parse_cookie_header(lines: Iterable[str]) -> dict[str, str]:
    """Parse ``Cookie`` header values into a dict; the first of a name wins.

    Browsers send the most specific cookie first (RFC 6265 section 5.4 step
    2), so the first occurrence is kept. Pairs without ``=`` are skipped, and
    one pair of surrounding double quotes is removed from a value.
    """
    cookies: dict[str, str] = {}
    for line in lines:
        for pair in line.split(";"):
            name, sep, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


def format_set_cookie(
    key: str,
    value: str = "",
    *,
    max_age: int | None = None,
    expires: datetime | None = None,
    path: str | None = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = False,
    samesite: SameSite | None = "lax",
) -> str:
    """One ``Set-Cookie`` field value.

    Error handling:
        ``ValueError`` if the name is not a token, the value holds characters
        a cookie may not carry (encode it first), an attribute holds ``;`` or
        a control character, or ``samesite="none"`` comes without ``secure``
        (browsers reject that combination).
    """
    if not _TOKEN.fullmatch(key):
        raise ValueError(f"cookie name {key!r} is not an RFC 6265 token")
    if not _COOKIE_VALUE.fullmatch(value):
        # RFC 6265 section 4.1.1 leaves encoding to the server; base64url
        # uses only characters a cookie-octet allows.
        raise ValueError(
            f"cookie value for {key!r} has characters a cookie cannot hold "
            "(spaces, quotes, commas, semicolons, backslashes or non-ASCII; RFC "
            "6265 section 4.1.1): encode it first, for instance as base64url "
            "with base64.urlsafe_b64encode(value.encode()).decode()"
        )
    parts = [f"{key}={value}"]
    if max_age is not None:
        parts.append(f"Max-Age={int(max_age)}")
    if expires is not None:
        parts.append(
            "Expires=" + format_datetime(expires.astimezone(timezone.utc), usegmt=True)
        )
    for attribute, text in (("Path", path), ("Domain", domain)):
        if text is not None:
            if not _ATTRIBUTE_VALUE.fullmatch(text):
                raise ValueError(
                    f"cookie {attribute} {text!r} holds ';' or control characters"
                )
            parts.append(f"{attribute}={text}")
    if secure:
        parts.append("Secure")
    if httponly:
        parts.append("HttpOnly")
    if samesite is not None:
        if samesite not in ("lax", "strict", "none"):
            raise ValueError(
                f"samesite must be 'lax', 'strict' or 'none', not {samesite!r}"
            )
        if samesite == "none" and not secure:
            raise ValueError("samesite='none' requires secure=True")
        parts.append(f"SameSite={samesite.capitalize()}")
    return "; ".join(parts)
