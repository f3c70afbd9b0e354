"""CSRF protection: same-origin checks and a synchronizer token in the session.

A browser attaches cookies to requests another site makes it send, so a
request authenticated by a cookie proves nothing about who wrote it. Two
defences apply to every request with an unsafe method (RFC 9110 section
9.2.1) that carries cookies:

* :class:`CSRFMiddleware` refuses one whose ``Origin`` (or, without it,
  ``Referer``) names another origin, before the application runs; it
  refuses cross-origin websocket handshakes that carry cookies too.
* The route then checks the token sent in the ``X-CSRF-Token`` header or
  the ``csrf_token`` form field against the secret kept in the session
  (:func:`csrf_token` makes it, and gives it masked for templates and
  forms), in constant time.

Requests without cookies (an API client sending ``Authorization``) are not
checked: nothing a browser adds on its own authenticates them.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

from ._connection import HTTPConnection
from ._datastructures import Headers
from ._denial import send_denial
from ._exceptions import HTTPException
from ._request import Request
from ._responses import PlainTextResponse
from ._types import ASGIApp, Receive, Scope, Send

#: Where the token is kept in the session.
SESSION_KEY = "_csrf_token"
#: Methods that do not change state (RFC 9110 section 9.2.1).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_HTTP_SCHEME = {"ws": "http", "wss": "https"}
#: Bytes of the session's secret, and of each token's mask.
_SECRET_BYTES = 32

Origin = tuple[str, str, int]


def csrf_token(conn: HTTPConnection) -> str:
    """A CSRF token for this session; put one in every form.

    The session keeps one secret, made on first use. Each call returns it
    masked with new random bytes, so that no two pages carry the same
    string: a compressed page that also reflects what an attacker sends
    would otherwise let the secret be guessed from the compressed size
    (the BREACH attack). Every masked form of the secret is accepted.

    Error handling:
        ``RuntimeError`` without :class:`~trasgi_web.SessionMiddleware`.
    """
    secret = _stored_secret(conn)
    if secret is None:
        secret = secrets.token_bytes(_SECRET_BYTES)
        conn.session[SESSION_KEY] = secret.hex()
    mask = secrets.token_bytes(_SECRET_BYTES)
    return base64.urlsafe_b64encode(mask + _xor(mask, secret)).decode()


def _stored_secret(conn: HTTPConnection) -> bytes | None:
    """The session's secret; ``None`` if absent or not of the expected shape."""
    stored = conn.session.get(SESSION_KEY)
    if not isinstance(stored, str):
        return None
    try:
        secret = bytes.fromhex(stored)
    except ValueError:
        return None
    return secret if len(secret) == _SECRET_BYTES else None


def _xor(mask: bytes, data: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(mask, data, strict=True))


def _unmask(token: str) -> bytes | None:
    """The secret inside a token from :func:`csrf_token`; ``None`` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(token.encode())
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) != 2 * _SECRET_BYTES:
        return None
    return _xor(raw[:_SECRET_BYTES], raw[_SECRET_BYTES:])


class CSRFPolicy:
    """What :class:`CSRFMiddleware` tells the routes: where tokens are sent."""

    def __init__(self, field_name: str, header_name: str) -> None:
        self.field_name = field_name
        self.header_name = header_name


class CSRFMiddleware:
    """Refuse cross-site requests made with the user's cookies.

    Add it before :class:`~trasgi_web.SessionMiddleware` (so that it runs
    inside it): the routes find the expected token in the session.

    Args:
        app: The application to wrap.
        trusted_origins: Other origins allowed to send unsafe requests, as
            ``https://admin.example.com``.
        field_name: The form field holding the token.
        header_name: The header holding the token (for ``fetch`` and JSON).

    Error handling:
        403 for an unsafe request from another origin, or whose token is
        missing or wrong; a websocket from another origin is refused with
        403. The token check is made by trasgi_web's routes, after the
        route's requirements; a mounted application that is not a trasgi_web
        application gets only the origin check.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_origins: Iterable[str] = (),
        field_name: str = "csrf_token",
        header_name: str = "x-csrf-token",
    ) -> None:
        self.app = app
        self.trusted = frozenset(
            origin for origin in map(_parse_origin, trusted_origins) if origin
        )
        self.policy = CSRFPolicy(field_name, header_name.lower())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or not _has_cookies(scope):
            await self.app(scope, receive, send)
            return
        unsafe = kind == "websocket" or scope["method"] not in SAFE_METHODS
        if unsafe and not self._same_origin(scope):
            response = PlainTextResponse("Cross-site request refused", 403)
            if kind == "websocket":
                await send_denial(scope, send, response)
            else:
                await response(scope, receive, send)
            return
        scope["csrf"] = self.policy
        await self.app(scope, receive, send)

    def _same_origin(self, scope: Scope) -> bool:
        headers = Headers(scope.get("headers", []))
        claimed = headers.get("origin")
        if claimed is None:
            claimed = headers.get("referer")
            if claimed is None:
                # Neither header: an old client or a privacy setting. The
                # token still has to match.
                return True
        origin = _parse_origin(claimed)
        return origin is not None and (
            origin == _own_origin(scope) or origin in self.trusted
        )


async def check_csrf(request: Request) -> None:
    """Check the CSRF token of an unsafe request that carries cookies.

    Does nothing without :class:`CSRFMiddleware`. The form is read with the
    request's own limits and kept for the handler.

    Error handling:
        :class:`HTTPException` 403 when the token is missing or wrong.
    """
    policy = request.scope.get("csrf")
    method = request.scope.get("method")
    if not isinstance(policy, CSRFPolicy) or method in SAFE_METHODS:
        return
    expected = _stored_secret(request)
    sent = request.headers.get(policy.header_name)
    content_type = request.headers.get("content-type", "").lower()
    if sent is None and content_type.startswith(_FORM_TYPES):
        form = await request.form()
        field = form.get(policy.field_name)
        sent = field if isinstance(field, str) else None
    if expected is None or sent is None:
        raise HTTPException(403, "CSRF token missing")
    unmasked = _unmask(sent)
    if unmasked is None or not hmac.compare_digest(unmasked, expected):
        raise HTTPException(403, "CSRF token incorrect")


def _has_cookies(scope: Scope) -> bool:
    return any(name == b"cookie" for name, _ in scope.get("headers", ()))


def _parse_origin(text: str) -> Origin | None:
    """``(scheme, host, port)`` of an origin or URL; ``None`` for ``null``."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = _HTTP_SCHEME.get(parts.scheme, parts.scheme)
    if not parts.hostname or scheme not in _DEFAULT_PORTS:
        return None
    return scheme, parts.hostname, port or _DEFAULT_PORTS[scheme]


def _own_origin(scope: Scope) -> Origin | None:
    url = HTTPConnection(scope).url
    return _parse_origin(f"{url.scheme}://{url.netloc}")
