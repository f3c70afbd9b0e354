"""Log-line formatting."""

from __future__ import annotations

import pytest

from trasgi._observe.logs import access_line, escape, format_client


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"/plain", "/plain"),
        (b"/a\x1b[31mred", "/a\\x1b[31mred"),
        (b"/new\r\nline", "/new\\x0d\\x0aline"),
        (b'/quote"', '/quote\\"'),
        (b"/back\\slash", "/back\\\\slash"),
        (b"/del\x7f", "/del\\x7f"),
        ("/café", "/café"),
    ],
)
def test_escape(raw: bytes | str, shown: str) -> None:
    assert escape(raw) == shown


def test_format_client() -> None:
    assert format_client(None) == "-"
    assert format_client(("1.2.3.4", 80)) == "1.2.3.4:80"
    assert format_client(("::1", 80)) == "[::1]:80"


def test_access_line() -> None:
    line = access_line(("1.2.3.4", 5), b"GET", b"/x?y", b"1.1", 404, 12, 0.0015)
    assert line == '1.2.3.4:5 - "GET /x?y HTTP/1.1" 404 12 1.5ms'
