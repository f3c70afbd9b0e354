"""SessionMiddleware: ``request.session`` kept in a signed cookie or a store.

The cookie is signed and timestamped with itsdangerous (see pyproject.toml
for the choice). Without a store the cookie carries the session itself, as
compact JSON: the client can read it but not change it. With a
:class:`SessionStore` the cookie carries only a signed random identifier and
the data stays on the server.
"""

from __future__ import annotations

import copy
import enum
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from itsdangerous import BadData, URLSafeTimedSerializer

from ._cookies import SameSite, format_set_cookie, parse_cookie_header
from ._datastructures import Headers, MutableHeaders
from ._types import ASGIApp, Message, Receive, Scope, Send

#: Fourteen days, as Starlette's default.
DEFAULT_MAX_AGE = 14 * 24 * 3600
#: Browsers keep cookies of at least 4096 bytes, name and value included
#: (RFC 6265 section 6.1); a larger one may be dropped silently.
MAX_COOKIE_SIZE = 4096
_SALT = "trasgi_web.session"
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

SecretKey = str | bytes


class SessionStore(Protocol):
    """Where server-side sessions live, by a random identifier.

    Implement it over a database or a cache; :class:`MemorySessionStore` is
    the one for tests and single-process development.
    """

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """The session stored under ``session_id``; ``None`` if none (or expired)."""

    async def save(
        self, session_id: str, data: dict[str, Any], max_age: int | None
    ) -> None:
        """Store ``data`` under ``session_id`` for ``max_age`` seconds (or ever)."""

    async def delete(self, session_id: str) -> None:
        """Forget ``session_id``; nothing happens if it is unknown."""


class MemorySessionStore:
    """Sessions in a dict of this process, each with its expiry time.

    Args:
        clock: Seconds, monotonic; tests may pass a clock they move.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, tuple[float, dict[str, Any]]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        """See :meth:`SessionStore.load`; an expired session is dropped."""
        found = self._sessions.get(session_id)
        if found is None:
            return None
        expires, data = found
        if self._clock() >= expires:
            del self._sessions[session_id]
            return None
        return copy.deepcopy(data)

    async def save(
        self, session_id: str, data: dict[str, Any], max_age: int | None
    ) -> None:
        """See :meth:`SessionStore.save`."""
        expires = float("inf") if max_age is None else self._clock() + max_age
        self._sessions[session_id] = (expires, copy.deepcopy(data))

    async def delete(self, session_id: str) -> None:
        """See :meth:`SessionStore.delete`."""
        self._sessions.pop(session_id, None)


class Session(dict[str, Any]):
    """``request.session``: a ``dict`` that notices being cleared.

    With a store, a session cleared during a request (as a login or a logout
    should) is saved under a new identifier and the old one is deleted: an
    identifier planted in a browser before the login is worth nothing after
    it (session fixation).
    """

    def clear(self) -> None:
        """Remove every item, and renew the identifier when saved in a store."""
        super().clear()
        self.renewed = True

    renewed = False


class CookieState(enum.Enum):
    """What the request's session cookie turned out to be."""

    ABSENT = "absent"
    VALID = "valid"
    #: Tampered with, signed with an unknown key, or older than max_age.
    REJECTED = "rejected"


class SessionMiddleware:
    """Give every request a ``request.session`` dict that outlives it.

    The session is loaded before the application runs and, when the
    response starts, written back: a non-empty session sets the cookie
    (signed anew, so its age restarts and an old key's signature is replaced
    by the current key's), an emptied one deletes it. Websockets read the
    session of their handshake; what they change is not saved.

    Args:
        app: The application to wrap.
        secret_key: The signing key, or a sequence of keys, newest first:
            the first signs, every one verifies, so that a key can be
            rotated without logging everybody out.
        session_cookie: The cookie's name.
        max_age: Seconds a session lasts after its last response; ``None``
            for a cookie that ends with the browser session and a signature
            that never expires.
        path: The cookie's ``Path``.
        same_site: The cookie's ``SameSite``; ``"lax"`` keeps it off
            cross-site subrequests and form posts.
        https_only: ``True`` always marks the cookie ``Secure``, ``False``
            never; ``None`` marks it on https requests.
        domain: The cookie's ``Domain``; ``None`` keeps it to this host.
        store: Keep the data on the server, the cookie holding only a
            signed identifier.

    Error handling:
        ``ValueError`` at construction for an empty key. When the response
        starts: ``TypeError`` naming the key whose value is not JSON, and
        ``ValueError`` for a cookie over :data:`MAX_COOKIE_SIZE` bytes
        (use a store), both before anything is sent, so the client gets a
        500. A cookie that fails verification is ignored: the request gets
        an empty session and the response deletes the cookie.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: SecretKey | Sequence[SecretKey],
        *,
        session_cookie: str = "session",
        max_age: int | None = DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: SameSite = "lax",
        https_only: bool | None = None,
        domain: str | None = None,
        store: SessionStore | None = None,
    ) -> None:
        given = [secret_key] if isinstance(secret_key, str | bytes) else secret_key
        # itsdangerous takes keys as bytes (str is encoded as UTF-8 there too).
        keys = [key.encode() if isinstance(key, str) else key for key in given]
        if not keys or not all(keys):
            raise ValueError("SessionMiddleware needs a non-empty secret_key")
        self.app = app
        # itsdangerous signs with the last key of its list and verifies with
        # any: the newest-first order users write is reversed for it.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)), salt=_SALT)
        self.session_cookie = session_cookie
        self.max_age = max_age
        self.path = path
        self.same_site: SameSite = same_site
        self.https_only = https_only
        self.domain = domain
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        loaded = await self._load(scope)
        scope["session"] = Session(loaded.data)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _SessionSend(send, self, scope, loaded))

    async def _load(self, scope: Scope) -> _Loaded:
        cookies = parse_cookie_header(
            Headers(scope.get("headers", [])).getlist("cookie")
        )
        value = cookies.get(self.session_cookie)
        if value is None:
            return _Loaded(CookieState.ABSENT, {}, None)
        try:
            signed = self._serializer.loads(value, max_age=self.max_age)
        except BadData:
            # Tampered, signed with a retired key, or expired: the same
            # answer for each, so that a client learns nothing from it.
            return _Loaded(CookieState.REJECTED, {}, None)
        if self.store is None:
            data = signed if isinstance(signed, dict) else None
            session_id = None
        else:
            session_id = signed if isinstance(signed, str) else None
            data = None if session_id is None else await self.store.load(session_id)
        if data is None:
            return _Loaded(CookieState.REJECTED, {}, session_id)
        return _Loaded(CookieState.VALID, data, session_id)

    async def set_cookie_header(
        self, headers: MutableHeaders, scope: Scope, loaded: _Loaded
    ) -> None:
        """Write the session back: ``Set-Cookie`` (and the store) as it ends."""
        data: dict[str, Any] = scope["session"]
        if not data:
            if loaded.session_id is not None and self.store is not None:
                await self.store.delete(loaded.session_id)
            if loaded.state is not CookieState.ABSENT:
                headers.append("set-cookie", self._cookie(scope, "", max_age=0))
            return
        _check_json(data)
        if self.store is None:
            value = self._serializer.dumps(data)
        else:
            session_id = loaded.session_id
            if session_id is not None and getattr(data, "renewed", False):
                await self.store.delete(session_id)
                session_id = None
            session_id = session_id or secrets.token_urlsafe(32)
            await self.store.save(session_id, data, self.max_age)
            value = self._serializer.dumps(session_id)
        cookie = self._cookie(scope, value, max_age=self.max_age)
        if len(cookie.partition(";")[0]) > MAX_COOKIE_SIZE:
            raise ValueError(
                f"the session cookie would be {len(value)} bytes, more than the "
                f"{MAX_COOKIE_SIZE} browsers keep: store less, or pass "
                "SessionMiddleware a store"
            )
        headers.append("set-cookie", cookie)

    def _cookie(self, scope: Scope, value: str, *, max_age: int | None) -> str:
        secure = self.https_only
        if secure is None:
            secure = scope.get("scheme") in ("https", "wss")
        return format_set_cookie(
            self.session_cookie,
            value,
            max_age=max_age,
            path=self.path,
            domain=self.domain,
            secure=secure,
            # Scripts never need the session cookie (RFC 6265 section 4.1.2.6).
            httponly=True,
            samesite=self.same_site,
        )


class _Loaded:
    """The session as the request brought it."""

    def __init__(
        self, state: CookieState, data: dict[str, Any], session_id: str | None
    ) -> None:
        self.state = state
        self.data = data
        self.session_id = session_id


class _SessionSend:
    """The ``send`` of one response: adds the session cookie to its start."""

    def __init__(
        self, send: Send, middleware: SessionMiddleware, scope: Scope, loaded: _Loaded
    ) -> None:
        self._send = send
        self._middleware = middleware
        self._scope = scope
        self._loaded = loaded

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(message.get("headers", []))
            await self._middleware.set_cookie_header(headers, self._scope, self._loaded)
            message = {**message, "headers": headers.raw}
        await self._send(message)


def _check_json(data: dict[str, Any]) -> None:
    """Raise ``TypeError`` naming the first value that is not JSON."""
    try:
        _ENCODER.encode(data)
    except (TypeError, ValueError):
        pass
    else:
        return
    for key, value in data.items():
        try:
            _ENCODER.encode({key: value})
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"session[{key!r}] cannot be stored: {exc}. A session holds "
                "JSON values (str, int, float, bool, None, lists and dicts of "
                "them): convert the value, or store an identifier instead"
            ) from None
