"""The header fields the server adds to every response it or an application sends."""

from __future__ import annotations

import time
from email.utils import formatdate

from trasgi._config.config import Config

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


def default_headers(config: Config) -> list[tuple[bytes, bytes]]:
    """``date`` and ``server``, as ``--date-header`` and ``--server-header`` say."""
    headers = []
    if config.date_header:
        headers.append((b"date", _date_header.value()))
    if config.server_header:
        headers.append(_SERVER_HEADER)
    return headers
