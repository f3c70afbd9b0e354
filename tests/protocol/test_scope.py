"""The pure scope builder, as tables of cases."""

from __future__ import annotations

import h11
import pytest

from trasgi._errors import PeerError
from trasgi._protocol.scope import (
    ConnectionInfo,
    build_http_scope,
    decode_path,
    split_target,
)

INFO = ConnectionInfo(client=("10.0.0.1", 5000), server=("127.0.0.1", 8000))


def request(
    target: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> h11.Request:
    return h11.Request(
        method="GET", target=target, headers=headers or [(b"Host", b"example.com")]
    )


@pytest.mark.parametrize(
    ("target", "raw_path", "query"),
    [
        (b"/", b"/", b""),
        (b"/a/b?x=1&y=2", b"/a/b", b"x=1&y=2"),
        (b"/a?", b"/a", b""),
        (b"/a?x=1?y", b"/a", b"x=1?y"),
        (b"/%2F%20?q=%20", b"/%2F%20", b"q=%20"),
        (b"http://example.com/p/q?z", b"/p/q", b"z"),
        (b"HTTPS://example.com:8443/p", b"/p", b""),
        (b"http://example.com", b"/", b""),
        (b"http://example.com?x", b"/", b"x"),
        (b"*", b"*", b""),
    ],
)
def test_split_target(target: bytes, raw_path: bytes, query: bytes) -> None:
    assert split_target(target) == (raw_path, query)


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        (b"/plain", "/plain"),
        (b"/a%20b", "/a b"),
        (b"/caf%C3%A9", "/café"),
        (b"/%2F", "//"),
        (b"/100%25", "/100%"),
        (b"/bad%zz", "/bad%zz"),  # not an escape: kept as written
    ],
)
def test_decode_path(raw: bytes, decoded: str) -> None:
    assert decode_path(raw) == decoded


@pytest.mark.parametrize("raw", [b"/%FF", b"/%C3", b"/%ED%A0%80"])
def test_decode_path_rejects_invalid_utf8(raw: bytes) -> None:
    with pytest.raises(PeerError) as caught:
        decode_path(raw)
    assert caught.value.status_code == 400


def test_scope_fields() -> None:
    headers = [
        (b"Host", b"example.com"),
        (b"X-A", b"1"),
        (b"x-a", b"2"),
        (b"Cookie", b"c"),
    ]
    scope = build_http_scope(
        request(b"/caf%C3%A9?x=%20", headers), INFO, state={"db": "conn"}
    )
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/café"
    assert scope["raw_path"] == b"/caf%C3%A9"
    assert scope["query_string"] == b"x=%20"
    assert scope["root_path"] == ""
    # Lower-cased names, order and duplicates kept.
    assert scope["headers"] == [
        (b"host", b"example.com"),
        (b"x-a", b"1"),
        (b"x-a", b"2"),
        (b"cookie", b"c"),
    ]
    assert scope["client"] == ("10.0.0.1", 5000)
    assert scope["server"] == ("127.0.0.1", 8000)
    assert scope["state"] == {"db": "conn"}


def test_state_is_a_shallow_copy() -> None:
    shared: dict[str, object] = {"items": []}
    scope = build_http_scope(request(b"/"), INFO, state=shared)
    scope["state"]["new"] = 1
    scope["state"]["items"].append(1)
    assert "new" not in shared
    assert shared["items"] == [1]  # shallow: the same objects are shared


def test_root_path_prefixes_path_and_raw_path() -> None:
    scope = build_http_scope(request(b"/users?x"), INFO, root_path="/api")
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/users"
    assert scope["raw_path"] == b"/api/users"


def test_https_scheme_and_missing_addresses() -> None:
    scope = build_http_scope(request(b"/"), ConnectionInfo(scheme="https"))
    assert scope["scheme"] == "https"
    assert scope["client"] is None
    assert scope["server"] is None
