"""The entries of a route table: Route, WebSocketRoute and Mount.

Each entry matches a request and handles it once chosen; the table that
holds them, in order, is the :class:`~trasgi_web.Router` of ``_router.py``.

A route compares a request's path and method and answers
:class:`Match`: ``FULL`` (this route handles it), ``PARTIAL`` (the path fits
but not the method: a 405 candidate) or ``NONE``. Keeping the three apart is
what lets the router answer 404 and 405-with-``Allow`` correctly.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import trio

from ._auth import Requirements, Requires, as_requirements, check_requirements
from ._concurrency import run_beside_once_waiting
from ._connection import HTTPConnection
from ._convertors import Converter
from ._csrf import check_csrf
from ._denial import denial_response, send_denial, supports_denial
from ._depends import run_with_cleanups
from ._endpoints import Endpoint, Handler, finish_at_once, to_response
from ._exceptions import HTTPException, WebSocketDisconnect
from ._inbox import Inbox
from ._limits import DEFAULT_MAX_BODY_SIZE
from ._openapi_doc import OperationDoc
from ._patterns import CompiledPath, compile_path
from ._plan import Plan
from ._request import ClientDisconnect, Request
from ._responses import Response
from ._types import ASGIApp, Receive, Scope, Send
from ._url import route_path
from ._validation import RequestValidationError
from ._websocket import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_POLICY_VIOLATION,
    WebSocket,
    WebSocketState,
)

logger = logging.getLogger("trasgi_web")

# A method is a token (RFC 9110 section 9.1 and 5.6.2).
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Z]+")


class Match(enum.Enum):
    """How well a route fits a request."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"


class _Unset(enum.Enum):
    UNSET = "unset"


#: Marks a route option left to the application's default.
UNSET = _Unset.UNSET


class Route:
    """An HTTP route: a path pattern, methods and a handler.

    Attributes:
        path: The pattern, as ``/items/{item_id:int}``.
        endpoint: The handler function.
        methods: The methods declared; ``HEAD`` is also served where ``GET``
            is, and ``OPTIONS`` is answered for every path.
        name: The name for :func:`url_for` (the handler's name by default).
        timeout: Seconds the handler may run before a 504; ``None`` for none.
        max_body_size: Bytes of request body allowed (413 beyond).
        cancel_on_disconnect: Whether the handler is cancelled when its
            client leaves.
        status_code: The status of a typed handler's answer when it returns
            a value rather than a response (``201``, or ``204`` with
            ``None``); also the success status the OpenAPI document shows.
        doc: What the OpenAPI document says of the operation.
        requires: The :class:`~trasgi_web.Requires` the client must meet
            before the handler runs (401, 403 or a login redirect otherwise).

    Error handling:
        ``ValueError`` at definition for an invalid pattern, an invalid
        method or a handler that does not fit the pattern; ``TypeError`` for
        a handler parameter nothing can supply (one without annotation that
        is neither the request nor a path parameter, for one).
    """

    def __init__(
        self,
        path: str,
        endpoint: Handler,
        *,
        methods: Iterable[str] = ("GET",),
        name: str | None = None,
        timeout: float | _Unset | None = UNSET,
        max_body_size: int | _Unset | None = UNSET,
        cancel_on_disconnect: bool = True,
        requires: Requires | Sequence[Requires] | None = None,
        converters: Mapping[str, Converter],
        status_code: int | None = None,
        doc: OperationDoc | None = None,
    ) -> None:
        self.compiled: CompiledPath = compile_path(path, converters)
        self.path = path
        self.methods = _check_methods(path, methods)
        self.name = name if name is not None else _default_name(endpoint)
        self.explicit_name = name is not None
        self.endpoint = endpoint
        self.status_code = status_code
        self.doc = doc or OperationDoc()
        self._call = Endpoint(
            endpoint, path, self.compiled.converters, status_code=status_code
        )
        self.timeout = _check_timeout(path, timeout)
        self.max_body_size = max_body_size
        self.cancel_on_disconnect = cancel_on_disconnect
        self.requires = as_requirements(requires)
        self._converters = converters

    def with_prefix(self, prefix: str, requires: Requirements = ()) -> Route:
        """This route under ``prefix``, with ``requires`` before its own."""
        return Route(
            prefix + self.path,
            self.endpoint,
            methods=self.methods,
            name=self.name if self.explicit_name else None,
            timeout=self.timeout,
            max_body_size=self.max_body_size,
            cancel_on_disconnect=self.cancel_on_disconnect,
            requires=requires + self.requires,
            converters=self._converters,
            status_code=self.status_code,
            doc=self.doc,
        )

    @property
    def plan(self) -> Plan | None:
        """How the handler's typed parameters are read (``None``: it has none)."""
        return self._call.plan

    @property
    def allowed_methods(self) -> frozenset[str]:
        """The methods served: declared ones, plus ``HEAD`` with ``GET``."""
        if "GET" in self.methods:
            return self.methods | {"HEAD"}
        return self.methods

    def match(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """Whether this route handles ``scope``, and the path parameters."""
        if scope["type"] != "http":
            return Match.NONE, {}
        params = self.compiled.match(route_path(scope))
        if params is None:
            return Match.NONE, {}
        # allowed_methods, without building a set per request.
        method = scope["method"]
        if method in self.methods or (method == "HEAD" and "GET" in self.methods):
            return Match.FULL, params
        return Match.PARTIAL, params

    def url_path_for(self, name: str, params: Mapping[str, Any]) -> str | None:
        """The path for ``params`` if ``name`` is this route's name."""
        return self.compiled.format(params) if name == self.name else None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler and send its response.

        The handler runs under the route's deadline and, unless disabled, is
        cancelled when the client disconnects; a cancelled request sends
        nothing and logs nothing.
        """
        inbox = Inbox(receive)
        request = Request(scope, inbox.receive, self._body_limit(scope))
        if scope["method"] == "HEAD":
            send = _without_body(send)
        request._send = send  # for early hints, sent while the handler runs
        plan = self._call.plan
        if plan is None or not plan.needs_cleanups:
            await self._respond(request, inbox, send)
        else:
            # Providers that yield finish after the response (or the error).
            await run_with_cleanups(scope, lambda: self._respond(request, inbox, send))

    async def _respond(self, request: Request, inbox: Inbox, send: Send) -> None:
        scope = request.scope
        try:
            check_requirements(self.requires, self.endpoint, request)
            await check_csrf(request)
            finished, response = await self._run_handler(request, inbox)
            if finished and response is not None:
                # send() raises OSError once the client has left (ASGI HTTP
                # spec 2.4): nobody is left to answer.
                with contextlib.suppress(OSError):
                    await response(scope, request.receive, send)
        except ClientDisconnect:
            pass
        finally:
            if request.holds_resources:
                with trio.CancelScope(shield=True):
                    await request.close()

    async def _run_handler(
        self, request: Request, inbox: Inbox
    ) -> tuple[bool, Response | None]:
        """The handler's response, or ``(False, None)`` if its client left.

        The watcher listens for a disconnect only while the handler runs:
        once the response is being sent, a departed client shows as a failed
        ``send()``, and ``receive()`` is left alone for the server. It starts
        only when the handler first waits: a handler that answers without
        waiting cannot be cancelled anyway. The deadline and the watcher
        share one cancel scope; a handler with neither, or whose code cannot
        wait, runs in none.

        Error handling:
            :class:`HTTPException` 504 when the deadline passed first.
        """
        plan = self._call.plan
        if plan is not None and plan.reads_json:
            # Read before the handler runs: a typed handler that then does not
            # wait needs no disconnect watcher at all, and a JSON body is held
            # whole in memory anyway (forms, which spool, are read inside).
            await request.body()
        if self._call.cannot_wait:
            # Nothing could cancel it: no scope, no watcher (see cannot_wait).
            result = finish_at_once(self._call(request, request.path_params))
            return True, to_response(result)
        timeout = self._deadline(request.scope)
        deadline = math.inf if timeout == math.inf else trio.current_time() + timeout
        params = request.path_params
        if self.cancel_on_disconnect:
            finished, result = await run_beside_once_waiting(
                lambda: self._call(request, params),
                lambda cancel_scope: inbox.watch(request.scope, cancel_scope.cancel),
                deadline=deadline,
            )
        else:
            finished, result = await self._run_unwatched(request, deadline)
        if finished:
            return True, to_response(result)
        if self.cancel_on_disconnect and inbox.disconnected.is_set():
            return False, None  # nobody is left to answer
        raise HTTPException(504, f"The handler did not answer within {timeout:g} s")

    async def _run_unwatched(
        self, request: Request, deadline: float
    ) -> tuple[bool, Any]:
        """Run the handler with no watcher: in a scope only for a deadline."""
        if deadline == math.inf:
            return True, await self._call(request, request.path_params)
        with trio.CancelScope(deadline=deadline):
            return True, await self._call(request, request.path_params)
        return False, None

    def _deadline(self, scope: Scope) -> float:
        timeout = self.timeout
        if timeout is UNSET:
            timeout = getattr(scope.get("app"), "timeout", None)
        return math.inf if timeout is None else float(timeout)

    def _body_limit(self, scope: Scope) -> int | None:
        if self.max_body_size is not UNSET:
            return self.max_body_size
        limit: int | None = getattr(
            scope.get("app"), "max_body_size", DEFAULT_MAX_BODY_SIZE
        )
        return limit

    def __repr__(self) -> str:
        methods = ",".join(sorted(self.methods))
        return f"Route({self.path!r}, methods={methods}, name={self.name!r})"


class WebSocketRoute:
    """A websocket route: a path pattern and a handler taking a ``WebSocket``.

    A handler that returns without closing closes with 1000; one that raises
    :class:`HTTPException`, or whose typed parameters are invalid, closes
    with 1008, or before accepting refuses the handshake with that status
    and detail (a bare 403 from servers without the denial-response
    extension); any other exception is logged and closes with 1011.
    ``requires`` is checked before the handler runs, and refuses the
    handshake in the same way.
    """

    def __init__(
        self,
        path: str,
        endpoint: Handler,
        *,
        name: str | None = None,
        requires: Requires | Sequence[Requires] | None = None,
        converters: Mapping[str, Converter],
    ) -> None:
        self.compiled = compile_path(path, converters)
        self.path = path
        self.name = name if name is not None else _default_name(endpoint)
        self.explicit_name = name is not None
        self.endpoint = endpoint
        self._call = Endpoint(
            endpoint, path, self.compiled.converters, body_allowed=False
        )
        self.requires = as_requirements(requires)
        self._converters = converters

    def with_prefix(self, prefix: str, requires: Requirements = ()) -> WebSocketRoute:
        """This route under ``prefix``, with ``requires`` before its own."""
        return WebSocketRoute(
            prefix + self.path,
            self.endpoint,
            name=self.name if self.explicit_name else None,
            requires=requires + self.requires,
            converters=self._converters,
        )

    def match(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """``FULL`` for a websocket scope whose path fits the pattern."""
        if scope["type"] != "websocket":
            return Match.NONE, {}
        params = self.compiled.match(route_path(scope))
        return (Match.NONE, {}) if params is None else (Match.FULL, params)

    def url_path_for(self, name: str, params: Mapping[str, Any]) -> str | None:
        """The path for ``params`` if ``name`` is this route's name."""
        return self.compiled.format(params) if name == self.name else None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler with a :class:`WebSocket`; close it if left open."""
        websocket = WebSocket(scope, receive, send)
        plan = self._call.plan
        if plan is None or not plan.needs_cleanups:
            await self._converse(websocket)
        else:
            await run_with_cleanups(scope, lambda: self._converse(websocket))

    async def _converse(self, websocket: WebSocket) -> None:
        scope = websocket.scope
        try:
            check_requirements(self.requires, self.endpoint, websocket)
            await self._call(websocket, scope.get("path_params", {}))
        except WebSocketDisconnect:
            return
        except HTTPException as exc:
            connecting = websocket.application_state is WebSocketState.CONNECTING
            if connecting and supports_denial(scope):
                await websocket.send_denial_response(denial_response(exc))
            else:
                await _close_quietly(websocket, CLOSE_POLICY_VIOLATION, exc.detail)
            return
        except RequestValidationError as exc:
            # Before accepting, this refuses the handshake with 403.
            fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors)
            await _close_quietly(websocket, CLOSE_POLICY_VIOLATION, f"Invalid {fields}")
            return
        except Exception:
            logger.exception("Exception in websocket handler for %s", scope.get("path"))
            await _close_quietly(websocket, CLOSE_INTERNAL_ERROR, "")
            return
        await _close_quietly(websocket, 1000, "")

    def __repr__(self) -> str:
        return f"WebSocketRoute({self.path!r}, name={self.name!r})"


async def _close_quietly(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        # A close frame's reason holds at most 123 bytes (RFC 6455 5.5).
        await websocket.close(code, reason[:120])


class Mount:
    """Any ASGI application served under a path prefix.

    The application receives the request with ``root_path`` extended by the
    prefix and ``path`` unchanged, which still includes it (ASGI HTTP spec,
    "root_path"); the routes of a mounted application see the rest.

    ``requires`` is checked before the application is called: the mounted
    application is as protected as a route.

    Error handling:
        ``ValueError`` if the prefix does not start with ``/``, ends with
        ``/`` or holds a ``{parameter}``.
    """

    def __init__(
        self,
        prefix: str,
        app: ASGIApp,
        *,
        name: str | None = None,
        requires: Requires | Sequence[Requires] | None = None,
    ) -> None:
        prefix = "" if prefix == "/" else prefix
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(f"mount prefix {prefix!r} must start and not end with '/'")
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"mount prefix {prefix!r} cannot hold parameters")
        self.path = prefix
        self.app = app
        self.name = name
        self.explicit_name = name is not None
        self.requires = as_requirements(requires)

    def with_prefix(self, prefix: str, requires: Requirements = ()) -> Mount:
        """This mount under ``prefix``, ``requires`` before its own."""
        return Mount(
            prefix + self.path,
            self.app,
            name=self.name,
            requires=requires + self.requires,
        )

    def match(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        """``FULL`` for any request under the prefix, whatever its method."""
        path = route_path(scope)
        if not self.path or path == self.path or path.startswith(self.path + "/"):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, params: Mapping[str, Any]) -> str | None:
        """``name`` with a ``path`` param, or ``name:inner`` for the app's routes."""
        if self.name is None:
            return None
        if name == self.name:
            if set(params) != {"path"}:
                raise ValueError(f"mount {name!r} takes exactly one parameter, 'path'")
            return self.path + "/" + str(params["path"]).lstrip("/")
        mount_name, sep, inner = name.partition(":")
        url_for: Callable[..., str] | None = getattr(self.app, "url_for", None)
        if sep and mount_name == self.name and url_for is not None:
            return self.path + url_for(inner, **params)
        return None

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call the mounted application with its ``root_path`` extended."""
        if self.requires:
            try:
                check_requirements(self.requires, None, HTTPConnection(scope))
            except HTTPException as exc:
                if scope["type"] != "websocket":
                    raise
                await send_denial(scope, send, denial_response(exc))
                return
        child = dict(scope)
        child["root_path"] = scope.get("root_path", "") + self.path
        await self.app(child, receive, send)

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, {self.app!r}, name={self.name!r})"


BaseRoute = Route | WebSocketRoute | Mount


def _check_methods(path: str, methods: Iterable[str]) -> frozenset[str]:
    if isinstance(methods, str):
        raise TypeError(
            f"methods for {path!r} must be a list, not the string {methods!r}"
        )
    checked = frozenset(method.upper() for method in methods)
    if not checked:
        raise ValueError(f"route {path!r} needs at least one method")
    for method in checked:
        if not _METHOD.fullmatch(method):
            raise ValueError(f"route {path!r}: {method!r} is not a valid HTTP method")
    return checked


def _check_timeout(path: str, timeout: float | _Unset | None) -> float | _Unset | None:
    if isinstance(timeout, int | float) and not timeout > 0:
        raise ValueError(f"route {path!r}: timeout must be positive, not {timeout!r}")
    return timeout


def _default_name(endpoint: Any) -> str:
    return str(getattr(endpoint, "__name__", type(endpoint).__name__))


def _without_body(send: Send) -> Send:
    """Drop body bytes for HEAD, whatever the response sends (RFC 9110 9.3.2)."""

    async def send_head(message: Any) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return send_head
