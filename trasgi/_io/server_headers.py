"""The header fields the server adds to every response it or an application sends."""

from __future__ import annotations

import functools
import time
from email.utils import formatdate

from trasgi._config.config import Config
from trasgi._config.headers import parse_header

_SERVER_HEADER = (b"server", b"trasgi")


class _DateHeader:
    """The Date header value (RFC 9110 section 6.6.1), formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def value(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode("ascii")
        return self._value


_date_header = _DateHeader()


@functools.lru_cache(maxsize=8)
def _configured(fields: tuple[str, ...]) -> tuple[tuple[bytes, bytes], ...]:
    """The ``--header`` fields, parsed once per configuration."""
    return tuple(parse_header(text) for text in fields)


def default_headers(config: Config) -> list[tuple[bytes, bytes]]:
    """The fields the server adds to every response.

    ``date`` and ``server``, as ``--date-header`` and ``--server-header`` say,
    then the ``--header`` fields; a ``--header server:...`` replaces trasgi's.
    """
    configured = _configured(config.header)
    headers = []
    if config.date_header:
        headers.append((b"date", _date_header.value()))
    if config.server_header and all(name != b"server" for name, _ in configured):
        headers.append(_SERVER_HEADER)
    headers.extend(configured)
    return headers
