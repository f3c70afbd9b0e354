"""Router: the route table, its decorators and its dispatch.

The entries it holds, and how each matches a request, are in ``_routes.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from ._auth import Requires, as_requirements
from ._convertors import Converter, default_converters
from ._endpoints import Handler
from ._exceptions import HTTPException
from ._openapi_doc import DocOptions, OperationDoc
from ._patterns import compile_path
from ._responses import RedirectResponse, Response
from ._routes import UNSET, BaseRoute, Match, Mount, Route, WebSocketRoute, _Unset
from ._types import ASGIApp, Receive, Scope, Send
from ._url import URL, route_path

if TYPE_CHECKING:
    # Only read by type checkers: at run time the annotation stays a string.
    from typing_extensions import Unpack

_H = TypeVar("_H", bound=Handler)


class _Handles(Protocol):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None: ...


_Found = tuple[_Handles, dict[str, Any]]
TrailingSlash = Literal["redirect", "strict", "match"]


class Router:
    """An ordered, inspectable table of routes, with decorators to fill it.

    Decorators only add entries to :attr:`routes`; what they build can be
    read, and built, without them.

    Args:
        prefix: Put before every path defined on this router (``/api``).
        converters: Extra path converters by name, beside ``str``, ``int``,
            ``float``, ``path`` and ``uuid``.
        trailing_slash: For a path that only matches with the trailing
            slash added or removed: ``"redirect"`` answers 308 to it,
            ``"match"`` serves it as if it matched, ``"strict"`` answers 404.
        requires: :class:`~trasgi_web.Requires` every route and mount of
            this router gets, however it is added (methods, decorators,
            included routers), before its own.

    Error handling:
        ``ValueError`` at definition time for invalid patterns and for
        conflicts: a pattern of the same shape with a common method, a
        repeated route name or mount prefix.
    """

    def __init__(
        self,
        prefix: str = "",
        *,
        converters: Mapping[str, Converter] | None = None,
        trailing_slash: TrailingSlash = "redirect",
        requires: Requires | Sequence[Requires] | None = None,
    ) -> None:
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(
                f"router prefix {prefix!r} must start and not end with '/'"
            )
        if trailing_slash not in ("redirect", "strict", "match"):
            raise ValueError(
                "trailing_slash must be redirect, strict or match, "
                f"not {trailing_slash!r}"
            )
        self.prefix = prefix
        self.trailing_slash: TrailingSlash = trailing_slash
        self.routes: list[BaseRoute] = []
        self.requires = as_requirements(requires)
        self.converters: dict[str, Converter] = default_converters()
        for name, converter in (converters or {}).items():
            self.register_converter(name, converter)

    # -- building the table -------------------------------------------------

    def register_converter(self, name: str, converter: Converter) -> None:
        """Make ``{param:name}`` use ``converter`` in routes defined from now on.

        Error handling:
            ``ValueError`` for a name that is not an identifier, a name
            already registered, or a regex that does not compile or captures.
        """
        if not name.isidentifier():
            raise ValueError(f"converter name {name!r} is not an identifier")
        if name in self.converters:
            raise ValueError(f"converter {name!r} is already registered")
        compile_path("/{x:" + name + "}", {**self.converters, name: converter})
        self.converters[name] = converter

    def add_route(
        self,
        path: str,
        endpoint: Handler,
        methods: Iterable[str] = ("GET",),
        *,
        name: str | None = None,
        timeout: float | _Unset | None = UNSET,
        max_body_size: int | _Unset | None = UNSET,
        cancel_on_disconnect: bool = True,
        status_code: int | None = None,
        requires: Requires | Sequence[Requires] | None = None,
        **doc: Unpack[DocOptions],
    ) -> Route:
        """Add an HTTP route for ``self.prefix + path``; return it.

        ``status_code`` is described at :class:`Route`. The documentation
        options are what the OpenAPI document says of the operation:
        ``tags``, ``summary`` and ``description`` (from the docstring by
        default), ``responses`` (a status to a description or a model),
        ``include_in_schema``, ``deprecated``, ``operation_id`` and
        ``security`` (as ``[{"bearer": []}]``).
        """
        route = Route(
            self.prefix + path,
            endpoint,
            methods=methods,
            name=name,
            timeout=timeout,
            max_body_size=max_body_size,
            cancel_on_disconnect=cancel_on_disconnect,
            requires=self.requires + as_requirements(requires),
            converters=dict(self.converters),
            status_code=status_code,
            doc=OperationDoc(**doc),
        )
        self._add(route)
        return route

    def add_websocket_route(
        self,
        path: str,
        endpoint: Handler,
        *,
        name: str | None = None,
        requires: Requires | Sequence[Requires] | None = None,
    ) -> WebSocketRoute:
        """Add a websocket route for ``self.prefix + path``; return it."""
        route = WebSocketRoute(
            self.prefix + path,
            endpoint,
            name=name,
            requires=self.requires + as_requirements(requires),
            converters=dict(self.converters),
        )
        self._add(route)
        return route

    def mount(
        self,
        prefix: str,
        app: ASGIApp,
        *,
        name: str | None = None,
        requires: Requires | Sequence[Requires] | None = None,
    ) -> Mount:
        """Serve any ASGI application under ``prefix``; return the mount."""
        mount = Mount(
            self.prefix + prefix,
            app,
            name=name,
            requires=self.requires + as_requirements(requires),
        )
        self._add(mount)
        return mount

    def include_router(self, router: Router, *, prefix: str = "") -> None:
        """Copy ``router``'s routes into this table, under ``prefix``.

        The routes are copied as they are now: define them before including.
        They keep their requirements, after this router's own.
        """
        if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
            raise ValueError(
                f"include prefix {prefix!r} must start and not end with '/'"
            )
        for route in router.routes:
            self._add(route.with_prefix(self.prefix + prefix, self.requires))

    def _add(self, new: BaseRoute) -> None:
        for route in self.routes:
            _check_conflict(route, new)
        self.routes.append(new)

    # -- decorators: sugar over add_route ----------------------------------

    def route(
        self,
        path: str,
        methods: Iterable[str] = ("GET",),
        *,
        name: str | None = None,
        timeout: float | _Unset | None = UNSET,
        max_body_size: int | _Unset | None = UNSET,
        cancel_on_disconnect: bool = True,
        status_code: int | None = None,
        requires: Requires | Sequence[Requires] | None = None,
        **doc: Unpack[DocOptions],
    ) -> Callable[[_H], _H]:
        """Decorator form of :meth:`add_route`; returns the handler unchanged."""

        def decorate(endpoint: _H) -> _H:
            self.add_route(
                path,
                endpoint,
                methods,
                name=name,
                timeout=timeout,
                max_body_size=max_body_size,
                cancel_on_disconnect=cancel_on_disconnect,
                status_code=status_code,
                requires=requires,
                **doc,
            )
            return endpoint

        return decorate

    def get(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["GET"])`` (HEAD is served too)."""
        return self.route(path, ["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["POST"])``."""
        return self.route(path, ["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["PUT"])``."""
        return self.route(path, ["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["PATCH"])``."""
        return self.route(path, ["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["DELETE"])``."""
        return self.route(path, ["DELETE"], **options)

    def options(self, path: str, **options: Any) -> Callable[[_H], _H]:
        """``route(path, methods=["OPTIONS"])``, replacing the automatic answer."""
        return self.route(path, ["OPTIONS"], **options)

    def websocket(
        self,
        path: str,
        *,
        name: str | None = None,
        requires: Requires | Sequence[Requires] | None = None,
    ) -> Callable[[_H], _H]:
        """Decorator form of :meth:`add_websocket_route`."""

        def decorate(endpoint: _H) -> _H:
            self.add_websocket_route(path, endpoint, name=name, requires=requires)
            return endpoint

        return decorate

    # -- using the table ----------------------------------------------------

    def url_for(self, name: str, /, **params: Any) -> str:
        """The path of the route called ``name``, filled with ``params``.

        The path is relative to where this router is served: a request's
        :meth:`~trasgi_web.Request.url_for` adds the ``root_path``.

        Error handling:
            ``LookupError`` if no route has that name; ``ValueError`` if the
            parameters do not fit its pattern.
        """
        for route in self.routes:
            path = route.url_path_for(name, params)
            if path is not None:
                return path
        raise LookupError(f"no route named {name!r}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Dispatch to the matching route (ASGI application interface).

        Error handling:
            Raises :class:`HTTPException` 404 or 405 (with ``Allow``) for the
            application's exception handlers to answer.
        """
        if scope["type"] not in ("http", "websocket"):
            return
        found = self._resolve(scope)
        if found is None:
            other = self._resolve_other_slash(scope)
            if isinstance(other, Response):
                await other(scope, receive, send)
                return
            found = other
        if found is None:
            await self._not_found(scope, receive, send)
            return
        route, params = found
        # params is a new dict from matching: it is taken as it is unless
        # an enclosing router already matched some.
        outer = scope.get("path_params")
        scope["path_params"] = {**outer, **params} if outer else params
        await route.handle(scope, receive, send)

    def _resolve(self, scope: Scope) -> _Found | None:
        """The route for ``scope``; raises 405 when only the method differs."""
        allowed: set[str] = set()
        head_fallback: _Found | None = None
        for route in self.routes:
            match, params = route.match(scope)
            if match is Match.FULL:
                # An explicit HEAD route beats the HEAD that GET implies.
                if (
                    scope.get("method") == "HEAD"
                    and isinstance(route, Route)
                    and "HEAD" not in route.methods
                ):
                    head_fallback = head_fallback or (route, params)
                    continue
                return route, params
            if match is Match.PARTIAL and isinstance(route, Route):
                allowed |= route.allowed_methods
        if head_fallback is not None:
            return head_fallback
        if allowed:
            allow = ", ".join(sorted(allowed | {"OPTIONS"}))
            if scope["method"] == "OPTIONS":
                # RFC 9110 section 9.3.7: OPTIONS describes the resource.
                return _AnswerOptions(allow), {}
            raise HTTPException(405, headers={"Allow": allow})
        return None

    def _resolve_other_slash(self, scope: Scope) -> _Found | Response | None:
        path = route_path(scope)
        if self.trailing_slash == "strict" or path == "/" or scope["type"] != "http":
            return None
        other = path[:-1] if path.endswith("/") else path + "/"
        root_path = scope.get("root_path", "")
        alternative = {**scope, "path": root_path + other, "raw_path": None}
        found = self._resolve(alternative)
        if found is None:
            return None
        if self.trailing_slash == "match":
            return found
        return RedirectResponse(_toggled_location(scope), status_code=308)

    async def _not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # A close before accepting makes the server refuse the handshake
            # with 403 (ASGI websocket spec, "Close - send event").
            await send({"type": "websocket.close", "code": 1000, "reason": ""})
            return
        raise HTTPException(404)


class _AnswerOptions:
    """The automatic ``OPTIONS`` answer: 204 with ``Allow``."""

    def __init__(self, allow: str) -> None:
        self.allow = allow

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await Response(status_code=204, headers={"Allow": self.allow})(
            scope, receive, send
        )


def _toggled_location(scope: Scope) -> str:
    """The request's path-absolute URL with its trailing slash toggled.

    A reference without scheme and host resolves against the request URL
    (RFC 9110 section 10.2.2), so it stays right behind proxies.
    """
    url = URL.from_scope(scope)
    path = url.path[:-1] if url.path.endswith("/") else url.path + "/"
    return path + (f"?{url.query}" if url.query else "")


def _check_conflict(existing: BaseRoute, new: BaseRoute) -> None:
    # Default names (the handler's) may repeat; a chosen name must be unique
    # so that url_for is never ambiguous about it.
    if (new.explicit_name or existing.explicit_name) and existing.name == new.name:
        raise ValueError(f"route name {new.name!r} is already used by {existing!r}")
    if isinstance(new, Mount) and isinstance(existing, Mount):
        if new.path == existing.path:
            raise ValueError(
                f"mount prefix {new.path!r} is already mounted: {existing!r}"
            )
        return
    if (
        type(existing) is not type(new)
        or isinstance(new, Mount)
        or isinstance(existing, Mount)
    ):
        return
    if existing.compiled.shape != new.compiled.shape:
        return
    if isinstance(new, Route) and isinstance(existing, Route):
        common = existing.methods & new.methods
        if common:
            raise ValueError(
                f"route {new.path!r} conflicts with {existing!r} "
                f"for {', '.join(sorted(common))}"
            )
        return
    raise ValueError(f"websocket route {new.path!r} conflicts with {existing!r}")
