"""The URL of a request and the path its routes see, both read from the scope."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from ._types import Scope

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class URL:
    """An absolute URL split into parts; ``str(url)`` gives it whole.

    Attributes:
        scheme: ``http``, ``https``, ``ws`` or ``wss``.
        netloc: Host and, when not the scheme's default, port.
        path: The percent-encoded path, ``root_path`` included.
        query: The raw query string, without ``?``.
    """

    scheme: str
    netloc: str
    path: str
    query: str = ""

    @classmethod
    def from_scope(cls, scope: Scope) -> URL:
        """Rebuild the URL the client asked for.

        The host comes from the ``Host`` header (RFC 9110 section 7.2), then
        from ``scope["server"]``. The path is ``raw_path`` when the server
        gives it (it keeps encoded slashes), else ``path`` re-encoded.
        """
        scheme = scope.get("scheme", "http")
        netloc = _host_header(scope) or _server_netloc(scope, scheme)
        raw_path = scope.get("raw_path")
        if raw_path is not None:
            path = raw_path.decode("latin-1")
        else:
            path = quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~")
        query = scope.get("query_string", b"").decode("latin-1")
        return cls(scheme, netloc, path, query)

    def __str__(self) -> str:
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{self.netloc}{self.path}{query}"


def route_path(scope: Scope) -> str:
    """The path the routes see: ``path`` without the ``root_path`` prefix.

    ASGI servers give ``path`` with ``root_path`` as a prefix (ASGI HTTP
    spec, "root_path"); a server that does not is tolerated.
    """
    path: str = scope.get("path", "/")
    root_path: str = scope.get("root_path", "")
    if root_path and (path == root_path or path.startswith(root_path + "/")):
        return path[len(root_path) :] or "/"
    return path


def _host_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


def _server_netloc(scope: Scope, scheme: str) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server[0], server[1]
    if port is None or _DEFAULT_PORTS.get(scheme) == port:
        return str(host)
    return f"{host}:{port}"
