"""CORSMiddleware: Cross-Origin Resource Sharing (WHATWG Fetch, "CORS protocol")."""

from __future__ import annotations

from collections.abc import Sequence

from .._datastructures import Headers, MutableHeaders
from .._responses import PlainTextResponse, Response
from .._types import ASGIApp, Message, Receive, Scope, Send

_SAFE_METHODS = ("GET", "HEAD", "POST")


class CORSMiddleware:
    """Answer preflight requests and add CORS headers to responses.

    A preflight (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) is answered here, 200 when the origin,
    method and headers are allowed and 400 naming what is not. Other
    requests from an allowed origin get ``Access-Control-Allow-Origin`` (and
    the credentials and exposed-headers fields). ``Vary: Origin`` is added
    whenever the answer depends on the origin, so caches keep them apart.

    Args:
        app: The application to wrap.
        allow_origins: Allowed origins (``https://example.com``), or ``"*"``.
        allow_methods: Methods allowed in cross-origin requests, or ``"*"``.
        allow_headers: Request headers allowed, or ``"*"``.
        allow_credentials: Let the browser send cookies; the exact origin is
            then echoed, never ``*`` (the Fetch standard forbids it).
        expose_headers: Response headers scripts may read.
        max_age: Seconds browsers may cache a preflight answer.

    Error handling:
        ``ValueError`` for an origin that is not ``scheme://host[:port]``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allow_origins: Sequence[str] = (),
        allow_methods: Sequence[str] = _SAFE_METHODS,
        allow_headers: Sequence[str] = (),
        allow_credentials: bool = False,
        expose_headers: Sequence[str] = (),
        max_age: int = 600,
    ) -> None:
        for origin in allow_origins:
            if origin != "*" and ("://" not in origin or origin.endswith("/")):
                raise ValueError(
                    f"CORS origin {origin!r} must look like https://host[:port]"
                )
        self.app = app
        self.any_origin = "*" in allow_origins
        self.origins = frozenset(allow_origins)
        self.any_method = "*" in allow_methods
        self.methods = sorted(
            method.upper() for method in allow_methods if method != "*"
        )
        self.any_header = "*" in allow_headers
        self.headers = frozenset(
            header.lower() for header in allow_headers if header != "*"
        )
        self.credentials = allow_credentials
        self.expose = ", ".join(expose_headers)
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope.get("headers", []))
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, headers)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(message.get("headers", []))
                self._add_origin_headers(response_headers, origin)
                if self.expose and self._origin_allowed(origin):
                    response_headers["access-control-expose-headers"] = self.expose
                message = {**message, "headers": response_headers.raw}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _origin_allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _add_origin_headers(self, headers: MutableHeaders, origin: str) -> None:
        if not self._origin_allowed(origin):
            return
        if self.any_origin and not self.credentials:
            headers["access-control-allow-origin"] = "*"
        else:
            headers["access-control-allow-origin"] = origin
            _add_vary(headers, "Origin")
        if self.credentials:
            headers["access-control-allow-credentials"] = "true"

    def _preflight(self, origin: str, headers: Headers) -> Response:
        method = headers["access-control-request-method"].strip().upper()
        requested = [
            name.strip().lower()
            for name in headers.get("access-control-request-headers", "").split(",")
            if name.strip()
        ]
        problem = None
        if not self._origin_allowed(origin):
            problem = "Disallowed CORS origin"
        elif not (self.any_method or method in self.methods):
            problem = "Disallowed CORS method"
        elif not self.any_header and any(
            name not in self.headers for name in requested
        ):
            problem = "Disallowed CORS headers"
        response = PlainTextResponse(problem or "OK", 400 if problem else 200)
        self._add_origin_headers(response.headers, origin)
        _add_vary(response.headers, "Origin")
        if problem is None:
            allow_methods = method if self.any_method else ", ".join(self.methods)
            response.headers["access-control-allow-methods"] = allow_methods
            if requested:
                response.headers["access-control-allow-headers"] = ", ".join(requested)
            response.headers["access-control-max-age"] = str(self.max_age)
        return response


def _add_vary(headers: MutableHeaders, field: str) -> None:
    present = [
        value.strip().lower() for value in ",".join(headers.getlist("vary")).split(",")
    ]
    if field.lower() not in present and "*" not in present:
        headers.append("vary", field)
