"""Authentication (``request.user``, ``request.auth``) and route requirements.

:class:`AuthenticationMiddleware` asks a backend who makes each request.
:class:`Requires` states who may use a route; it is a route option
(``requires=``) of routes, routers and mounts, so a route cannot end up
unprotected because of the order of its decorators. The :func:`requires`
decorator exists for Starlette's users, and is read when the request comes,
so it protects the handler whether it sits above or below the route
decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

from ._connection import HTTPConnection
from ._denial import send_denial
from ._exceptions import HTTPException
from ._responses import PlainTextResponse, Response
from ._types import ASGIApp, Receive, Scope, Send

_F = TypeVar("_F", bound=Callable[..., Any])
#: Where :func:`requires` leaves its requirements on a handler.
_ATTRIBUTE = "__trasgi_requires__"


class BaseUser:
    """Who makes a request; subclass it for your users."""

    @property
    def is_authenticated(self) -> bool:
        """Whether a backend recognised the client."""
        return False

    @property
    def display_name(self) -> str:
        """A name to show."""
        return ""

    @property
    def identity(self) -> str:
        """A stable identifier (a user id)."""
        return ""


class SimpleUser(BaseUser):
    """An authenticated user known by a name."""

    def __init__(self, username: str) -> None:
        self.username = username

    @property
    def is_authenticated(self) -> bool:
        """Always ``True``."""
        return True

    @property
    def display_name(self) -> str:
        """The username."""
        return self.username

    @property
    def identity(self) -> str:
        """The username."""
        return self.username


class UnauthenticatedUser(BaseUser):
    """The user of a request no backend recognised."""


class AuthCredentials:
    """What the authenticated client may do: a list of scopes (permissions)."""

    def __init__(self, scopes: Iterable[str] = ()) -> None:
        self.scopes = list(scopes)


class AuthenticationError(Exception):
    """Raised by a backend for credentials that are present but invalid."""


class AuthenticationBackend(Protocol):
    """Recognises the client of a request or websocket."""

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, BaseUser] | None:
        """Credentials and user, or ``None`` for an anonymous client.

        Error handling:
            Raise :class:`AuthenticationError` for invalid credentials.
        """


ErrorHandler = Callable[[HTTPConnection, AuthenticationError], Response]


class AuthenticationMiddleware:
    """Set ``scope["user"]`` and ``scope["auth"]`` from a backend.

    Anonymous clients get :class:`UnauthenticatedUser` and empty
    :class:`AuthCredentials`; requirements on routes decide what they may
    reach. Put it inside :class:`~trasgi_web.SessionMiddleware` (add it
    first) when the backend reads the session.

    Args:
        app: The application to wrap.
        backend: An :class:`AuthenticationBackend`.
        on_error: Builds the response for an :class:`AuthenticationError`;
            by default a 400 naming the error.

    Error handling:
        An :class:`AuthenticationError` answers with ``on_error``'s
        response; on a websocket, that response refuses the handshake.
    """

    def __init__(
        self,
        app: ASGIApp,
        backend: AuthenticationBackend,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self.app = app
        self.backend = backend
        self.on_error = on_error or _default_on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            found = await self.backend.authenticate(conn)
        except AuthenticationError as exc:
            response = self.on_error(conn, exc)
            if scope["type"] == "websocket":
                await send_denial(scope, send, response)
            else:
                await response(scope, receive, send)
            return
        credentials, user = found or (AuthCredentials(), UnauthenticatedUser())
        scope["auth"], scope["user"] = credentials, user
        await self.app(scope, receive, send)


def _default_on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    return PlainTextResponse(str(exc) or "Invalid credentials", 400)


class Requires:
    """Who may use a route: an authenticated user holding every scope named.

    Args:
        *scopes: Scopes (from :class:`AuthCredentials`) the user needs.
        status_code: The answer to an authenticated user lacking a scope:
            403, or 404 to hide that the route exists.
        redirect: For an anonymous client of an HTTP route: the name of the
            route (or a path, starting with ``/``) to send it to with a 303,
            the page asked for in the ``next`` query parameter (for GET).
            ``None`` answers 401.
        challenge: The ``WWW-Authenticate`` value of the 401, which RFC 9110
            section 11.6.1 requires: the scheme clients should use.
    """

    def __init__(
        self,
        *scopes: str,
        status_code: int = 403,
        redirect: str | None = None,
        challenge: str = "Session",
    ) -> None:
        self.scopes = scopes
        self.status_code = status_code
        self.redirect = redirect
        self.challenge = challenge

    def check(self, conn: HTTPConnection) -> None:
        """Return if ``conn``'s user meets this requirement; raise otherwise.

        Error handling:
            :class:`HTTPException` 401 (with ``WWW-Authenticate``) or 303 to
            the login page for an anonymous client, ``status_code`` for a
            missing scope. ``RuntimeError`` if no
            :class:`AuthenticationMiddleware` ran: a requirement never
            passes for want of one.
        """
        if not conn.user.is_authenticated:
            raise self._unauthenticated(conn)
        granted = conn.auth.scopes
        missing = [scope for scope in self.scopes if scope not in granted]
        if missing:
            raise HTTPException(self.status_code)

    def _unauthenticated(self, conn: HTTPConnection) -> HTTPException:
        if self.redirect is None or conn.scope["type"] != "http":
            return HTTPException(401, headers={"WWW-Authenticate": self.challenge})
        location = self.redirect
        if not location.startswith("/"):
            location = conn.url_for(location)
        if conn.scope.get("method") in ("GET", "HEAD"):
            # Only a path: a full URL in "next" would let a link send the
            # user elsewhere after login (an open redirect).
            target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
            location += "?" + urlencode({"next": target})
        return HTTPException(303, headers={"Location": location})

    def __repr__(self) -> str:
        return f"Requires{self.scopes!r}"


Requirements = tuple[Requires, ...]


def as_requirements(requires: Requires | Sequence[Requires] | None) -> Requirements:
    """A route option's value as a tuple of requirements."""
    if requires is None:
        return ()
    if isinstance(requires, Requires):
        return (requires,)
    return tuple(requires)


def requires(
    *scopes: str,
    status_code: int = 403,
    redirect: str | None = None,
    challenge: str = "Session",
) -> Callable[[_F], _F]:
    """Decorator form of a :class:`Requires` route option.

    It marks the handler and returns it unchanged; the route reads the mark
    on every request, so the decorator protects the handler above or below
    ``@app.get``.
    """
    requirement = Requires(
        *scopes, status_code=status_code, redirect=redirect, challenge=challenge
    )

    def decorate(handler: _F) -> _F:
        marked: Requirements = getattr(handler, _ATTRIBUTE, ())
        setattr(handler, _ATTRIBUTE, (*marked, requirement))
        return handler

    return decorate


def check_requirements(
    requirements: Requirements, handler: object, conn: HTTPConnection
) -> None:
    """Check a route's own requirements, then those its handler is marked with."""
    for requirement in requirements:
        requirement.check(conn)
    marked: Requirements = getattr(handler, _ATTRIBUTE, ())
    for requirement in marked:
        requirement.check(conn)
