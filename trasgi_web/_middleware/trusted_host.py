"""TrustedHostMiddleware: refuse requests for hosts the site does not serve."""

from __future__ import annotations

from collections.abc import Sequence

from .._datastructures import Headers
from .._responses import PlainTextResponse, RedirectResponse
from .._types import ASGIApp, Receive, Scope, Send
from .._url import URL


class TrustedHostMiddleware:
    """Answer 400 unless the ``Host`` header names an allowed host.

    Guards against Host-header attacks: links and redirects built from a
    forged Host (password-reset poisoning, cache poisoning).

    Args:
        app: The application to wrap.
        allowed_hosts: Host names (port ignored); ``*.example.com`` allows
            any subdomain, ``*`` any host.
        www_redirect: Redirect ``example.com`` to ``www.example.com`` when
            only the latter is allowed.

    Error handling:
        ``ValueError`` for a pattern with ``*`` anywhere but a leading ``*.``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Sequence[str] = ("*",),
        www_redirect: bool = True,
    ) -> None:
        for pattern in allowed_hosts:
            if pattern != "*" and "*" in pattern.removeprefix("*."):
                raise ValueError(
                    f"host pattern {pattern!r}: '*' only as a leading '*.'"
                )
        self.app = app
        self.allowed = [host.lower() for host in allowed_hosts]
        self.www_redirect = www_redirect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.allowed:
            await self.app(scope, receive, send)
            return
        host = _hostname(Headers(scope.get("headers", [])).get("host", ""))
        if self._allowed(host):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send(
                {"type": "websocket.close", "code": 1008, "reason": "Invalid host"}
            )
            return
        if self.www_redirect and "www." + host in self.allowed:
            url = URL.from_scope(scope)
            target = f"{url.scheme}://www.{url.netloc}{url.path}" + (
                f"?{url.query}" if url.query else ""
            )
            await RedirectResponse(target, 308)(scope, receive, send)
            return
        await PlainTextResponse("Invalid host header", 400)(scope, receive, send)

    def _allowed(self, host: str) -> bool:
        for pattern in self.allowed:
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and host != pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # an IPv6 literal, RFC 3986 section 3.2.2
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]
