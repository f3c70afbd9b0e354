"""Pure scope building: from a parsed request head to an ASGI ``http`` scope.

Nothing here does I/O or keeps state, so every rule is tested by a table of
cases (``tests/protocol/test_scope.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import attrs

from trasgi._asgi import HTTPScope, WebSocketScope
from trasgi._errors import PeerError
from trasgi._observe.access import RequestLine

#: The ASGI HTTP spec version implemented in full. 2.4 made send() on a closed
#: connection raise OSError; 2.5 changed only the websocket disconnect event.
HTTP_SPEC_VERSION = "2.5"
LIFESPAN_SPEC_VERSION = "2.0"

Address = tuple[str, int]

#: The TLS extension's key in ``scope["extensions"]`` (ASGI TLS extension).
TLS_EXTENSION = "tls"


@attrs.frozen
class TLSInfo:
    """What the ASGI TLS extension reports about one TLS connection.

    The fields are those of the extension's scope entry, with the same names
    and meanings; ``None`` is the spec's value for "not known".

    Attributes:
        server_cert: The server's certificate, PEM.
        client_cert_chain: The client's certificates, PEM, its own first;
            empty when it sent none.
        client_cert_name: The client certificate's subject, RFC 4514.
        client_cert_error: Why the client certificate failed verification.
        tls_version: The protocol version number (``0x0304`` for TLS 1.3).
        cipher_suite: The IANA number of the cipher suite (``0x1301``).
    """

    server_cert: str | None = None
    client_cert_chain: tuple[str, ...] = ()
    client_cert_name: str | None = None
    client_cert_error: str | None = None
    tls_version: int | None = None
    cipher_suite: int | None = None

    def as_extension(self) -> dict[str, Any]:
        """A fresh scope entry: no application can change another's."""
        entry = attrs.asdict(self)
        entry["client_cert_chain"] = list(self.client_cert_chain)
        return entry


@attrs.frozen
class ConnectionInfo:
    """Plain data about one connection, computed once where it is accepted.

    Attributes:
        client: The peer's ``(host, port)``, or ``None`` when unknown (Unix
            sockets, in-memory streams).
        server: The local ``(host, port)``, ``(path, None)`` for a Unix socket,
            or ``None`` when unknown.
        scheme: ``"http"`` or ``"https"``.
        tls: The TLS extension's data on a TLS connection, else ``None``:
            the spec forbids the extension on other connections.
    """

    client: Address | None = None
    server: tuple[str, int | None] | None = None
    scheme: str = "http"
    tls: TLSInfo | None = None

    def extensions(self) -> dict[str, dict[str, Any]]:
        """The connection's part of ``scope["extensions"]``, freshly built."""
        if self.tls is None:
            return {}
        return {TLS_EXTENSION: self.tls.as_extension()}


def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split a request target into its raw path and raw query string.

    Origin-form targets (``/a?b``) split at the first ``?``. Absolute-form
    targets (``http://host/a?b``, RFC 9112 section 3.2.2) lose their scheme and
    authority, which a server must accept even though only proxies receive
    them in practice. The asterisk form (``*``, for ``OPTIONS``) stays as it is.
    """
    path, _, query = target.partition(b"?")
    lowered = path[:8].lower()
    if lowered.startswith((b"http://", b"https://")):
        authority_start = path.index(b"//") + 2
        slash = path.find(b"/", authority_start)
        path = path[slash:] if slash != -1 else b"/"
    return path, query


def decode_path(raw_path: bytes) -> str:
    """Percent-decode a raw path and decode it as UTF-8 (ASGI ``path``).

    Error handling:
        Raises :class:`PeerError` (400) when the decoded bytes are not UTF-8:
        the ASGI spec promises applications a UTF-8-decoded path, and guessing
        another encoding would let two different byte strings route alike.
    """
    try:
        if b"%" not in raw_path:
            return raw_path.decode("utf-8")  # nothing to unquote: the usual case
        return unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise PeerError(400, "request path is not valid UTF-8") from None


def target_parts(target: bytes, root_path: str) -> tuple[str, bytes, bytes]:
    """The scope's ``path``, ``raw_path`` and ``query_string`` for a target.

    ``path`` and ``raw_path`` include ``root_path`` as a prefix.

    Error handling:
        Raises :class:`PeerError` for a path that is not valid UTF-8.
    """
    raw_path, query_string = split_target(target)
    path = decode_path(raw_path)
    if root_path:
        path = root_path + path
        raw_path = root_path.encode("utf-8") + raw_path
    return path, raw_path, query_string


def build_http_scope(
    request: RequestLine,
    info: ConnectionInfo,
    *,
    root_path: str = "",
    state: dict[str, Any] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    http_version: str | None = None,
) -> HTTPScope:
    """Build the ASGI ``http`` scope for one request.

    ``path`` and ``raw_path`` include ``root_path`` as a prefix, as the ASGI
    spec's WSGI mapping and current uvicorn and Starlette expect: the proxy in
    front stripped it, so the server puts it back. ``state`` is copied
    shallowly so that one request cannot add keys seen by the next (ASGI
    lifespan spec, "Lifespan State").
    On a TLS connection, ``extensions`` holds a fresh copy of the ASGI
    ``tls`` extension.

    Error handling:
        Raises :class:`PeerError` for a path that is not valid UTF-8.
    """
    path, raw_path, query_string = target_parts(request.target, root_path)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": HTTP_SPEC_VERSION},
        "http_version": http_version or request.http_version.decode("ascii"),
        "method": request.method.decode("ascii"),
        "scheme": info.scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        # h11 has lower-cased the names and kept order and duplicates.
        "headers": headers if headers is not None else list(request.headers),
        "client": info.client,
        "server": info.server,
        "state": dict(state) if state is not None else {},
        "extensions": info.extensions(),
    }


#: The denial-response extension (ASGI websocket spec, "Websocket Denial
#: Response"): the application may answer the handshake with any HTTP response.
WEBSOCKET_DENIAL_EXTENSION = "websocket.http.response"


def offered_subprotocols(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols a handshake offers, in order (RFC 6455 section 4.1).

    ``Sec-WebSocket-Protocol`` may be repeated; each carries a comma-separated
    list of tokens. Tokens are ASCII by definition, so other bytes are read as
    latin-1 rather than refused: the application decides what it accepts.
    """
    offered: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            tokens = value.decode("latin-1").split(",")
            offered.extend(token.strip() for token in tokens if token.strip())
    return offered


def build_websocket_scope(
    request: RequestLine,
    info: ConnectionInfo,
    *,
    root_path: str = "",
    state: dict[str, Any] | None = None,
    http_version: str | None = None,
) -> WebSocketScope:
    """Build the ASGI ``websocket`` scope for one upgrade request.

    Paths, ``root_path`` and ``state`` follow :func:`build_http_scope`. The
    scheme is ``wss`` over TLS and ``ws`` otherwise, and the denial-response
    extension is always advertised, as the server supports it.

    Error handling:
        Raises :class:`PeerError` for a path that is not valid UTF-8.
    """
    path, raw_path, query_string = target_parts(request.target, root_path)
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": HTTP_SPEC_VERSION},
        "http_version": http_version or request.http_version.decode("ascii"),
        "scheme": "wss" if info.scheme == "https" else "ws",
        "path": path,
        "raw_path": raw_path,
        "query_string": query_string,
        "root_path": root_path,
        "headers": list(request.headers),
        "client": info.client,
        "server": info.server,
        "subprotocols": offered_subprotocols(request.headers),
        "state": dict(state) if state is not None else {},
        "extensions": {WEBSOCKET_DENIAL_EXTENSION: {}, **info.extensions()},
    }
