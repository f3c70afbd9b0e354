"""What requests and websockets share: the scope, read through properties."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ._cookies import parse_cookie_header
from ._datastructures import Headers, QueryParams, State
from ._types import AppLike, Scope
from ._url import URL, route_path


class HTTPConnection:
    """Read-only accessors over an ASGI ``http`` or ``websocket`` scope.

    Args:
        scope: The ASGI connection scope.
    """

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    @property
    def app(self) -> AppLike:
        """The :class:`~trasgi_web.App` handling this connection."""
        app: AppLike = self.scope["app"]
        return app

    @cached_property
    def url(self) -> URL:
        """The full URL the client asked for."""
        return URL.from_scope(self.scope)

    @property
    def path(self) -> str:
        """The decoded path relative to the application (``root_path`` removed)."""
        return route_path(self.scope)

    @property
    def root_path(self) -> str:
        """Where the application is mounted (``""`` at the root)."""
        return str(self.scope.get("root_path", ""))

    @property
    def path_params(self) -> dict[str, Any]:
        """The converted path parameters of the matched route."""
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @cached_property
    def query(self) -> QueryParams:
        """The query string as a multi-dict (first value by key; ``getlist``)."""
        return QueryParams.from_bytes(self.scope.get("query_string", b""))

    @cached_property
    def headers(self) -> Headers:
        """The request headers, case-insensitive."""
        return Headers(self.scope.get("headers", []))

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookies from the ``Cookie`` header(s) (RFC 6265 section 5.4)."""
        return parse_cookie_header(self.headers.getlist("cookie"))

    @property
    def client(self) -> tuple[str, int] | None:
        """The client's ``(host, port)``, if the server knows it."""
        client = self.scope.get("client")
        return None if client is None else (str(client[0]), int(client[1]))

    @cached_property
    def state(self) -> State:
        """Per-connection state: a copy of what the lifespan stored (ASGI spec)."""
        return State(self.scope.setdefault("state", {}))

    @property
    def session(self) -> dict[str, Any]:
        """The session dict :class:`~trasgi_web.SessionMiddleware` loaded.

        Error handling:
            ``RuntimeError`` if no ``SessionMiddleware`` wraps the application.
        """
        session: dict[str, Any] = _installed(self.scope, "session", "SessionMiddleware")
        return session

    @property
    def user(self) -> Any:
        """Who :class:`~trasgi_web.AuthenticationMiddleware` found making the request.

        Error handling:
            ``RuntimeError`` if no ``AuthenticationMiddleware`` wraps the
            application.
        """
        return _installed(self.scope, "user", "AuthenticationMiddleware")

    @property
    def auth(self) -> Any:
        """The :class:`~trasgi_web.AuthCredentials` of :attr:`user`.

        Error handling:
            ``RuntimeError`` if no ``AuthenticationMiddleware`` wraps the
            application.
        """
        return _installed(self.scope, "auth", "AuthenticationMiddleware")

    def url_for(self, name: str, /, **params: Any) -> str:
        """The path of the route ``name`` with ``params``, ``root_path`` included.

        Error handling:
            ``LookupError`` if no route has that name; ``ValueError`` if the
            parameters do not fit it.
        """
        return self.root_path + self.app.url_for(name, **params)


def _installed(scope: Scope, key: str, middleware: str) -> Any:
    try:
        return scope[key]
    except KeyError:
        raise RuntimeError(
            f"request.{key} needs {middleware}: app.add_middleware({middleware}, ...)"
        ) from None
