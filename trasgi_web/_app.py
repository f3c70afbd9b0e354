"""App: the route table plus lifespan, middleware and error handling."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import trio

from ._background import DEFAULT_SHUTDOWN_TIMEOUT, BackgroundTasks
from ._convertors import Converter
from ._datastructures import State
from ._docs_page import OpenAPIDocs
from ._errors import ExceptionHandler, ExceptionHandlers, HandlerKey
from ._limits import DEFAULT_MAX_BODY_SIZE
from ._middleware.errors import ExceptionMiddleware, ServerErrorMiddleware
from ._openapi import openapi_document
from ._openapi_doc import OpenAPIConfig
from ._router import Router, TrailingSlash
from ._types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("trasgi_web")

Hook = Callable[[], Any]
Lifespan = Callable[["App"], AbstractAsyncContextManager[Mapping[str, Any] | None]]
_F = TypeVar("_F", bound=Callable[..., Any])
_DEFAULT_OPENAPI = OpenAPIConfig()
#: Said by an App called outside trio: without it, the first trio call fails
#: with an AttributeError from trio's internals that names no cause.
NEEDS_TRIO = (
    "trasgi_web runs on trio, and this server runs the application on another "
    "event loop (asyncio); serve it with a trio server: trasgi, or hypercorn "
    "--worker-class trio"
)


class App(Router):
    """An ASGI application: routes, lifespan, middleware, exception handlers.

    ``App`` is a :class:`Router`, so ``app.get(...)``, ``app.routes`` and
    ``app.url_for(...)`` work on it directly.

    Args:
        debug: Show tracebacks on the 500 page (never in production).
        max_body_size: Default request body limit in bytes (``None``: none).
        timeout: Default handler deadline in seconds (``None``: none).
        lifespan: ``lifespan(app)`` returns an async context manager entered
            at startup and exited at shutdown; a mapping it yields is copied
            into the ASGI lifespan state (``request.state``).
        shutdown_timeout: Seconds background tasks get at shutdown.
        converters: Extra path converters by name.
        trailing_slash: See :class:`Router`.
        openapi: The OpenAPI document's title, version and where it and
            its docs page are served (``/openapi.json`` and ``/docs`` by
            default); ``None`` serves neither.
        max_threads: How many worker threads plain ``def`` handlers and
            providers may occupy at once (the rest wait their turn).

    Attributes:
        state: Application-wide values (``app.state.db = ...``).
        background: The :class:`BackgroundTasks` of the application.
        thread_limiter: The ``trio.CapacityLimiter`` of ``max_threads``.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
        timeout: float | None = None,
        lifespan: Lifespan | None = None,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        converters: Mapping[str, Converter] | None = None,
        trailing_slash: TrailingSlash = "redirect",
        openapi: OpenAPIConfig | None = _DEFAULT_OPENAPI,
        max_threads: int = 40,
    ) -> None:
        super().__init__(converters=converters, trailing_slash=trailing_slash)
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.debug = debug
        self.max_body_size = max_body_size
        self.timeout = timeout
        self.shutdown_timeout = shutdown_timeout
        self.state = State()
        self.background = BackgroundTasks()
        self.thread_limiter = trio.CapacityLimiter(max_threads)
        self.openapi_config = openapi
        self._openapi: dict[str, Any] | None = None
        self.exception_handlers = ExceptionHandlers()
        self.middleware: list[tuple[Callable[..., ASGIApp], dict[str, Any]]] = []
        self._lifespan_factory = lifespan
        self._startup: list[Hook] = []
        self._shutdown: list[Hook] = []
        self._stack: ASGIApp | None = None

    # -- configuration ------------------------------------------------------

    def on_startup(self, func: _F) -> _F:
        """Register ``func`` (sync or async) to run at startup, in order."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func: _F) -> _F:
        """Register ``func`` (sync or async) to run at shutdown, in order."""
        self._shutdown.append(func)
        return func

    def add_middleware(self, cls: Callable[..., ASGIApp], **options: Any) -> None:
        """Wrap the application in ``cls(app, **options)``, a pure ASGI middleware.

        The middleware added last runs first. Handlers for ``500`` and
        ``Exception`` run outside all middleware; other exception handlers
        run inside, so middleware sees their responses.

        Error handling:
            ``RuntimeError`` once the application has served a request.
        """
        if self._stack is not None:
            raise RuntimeError("add middleware before the application starts serving")
        self.middleware.append((cls, options))

    def add_exception_handler(self, key: HandlerKey, handler: ExceptionHandler) -> None:
        """Answer exceptions of class ``key`` (or HTTP status ``key``) with ``handler``.

        ``handler(request, exc)`` returns what a route handler may return.
        An exception class is matched along the raised exception's MRO; an
        ``HTTPException`` is first matched by its status.
        """
        self.exception_handlers.add(key, handler)

    def exception_handler(self, key: HandlerKey) -> Callable[[_F], _F]:
        """Decorator form of :meth:`add_exception_handler`."""

        def decorate(handler: _F) -> _F:
            self.add_exception_handler(key, handler)
            return handler

        return decorate

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document of the routes, made on first use and kept.

        Made with the default :class:`~trasgi_web.OpenAPIConfig` when the
        application serves none.
        """
        if self._openapi is None:
            config = self.openapi_config or _DEFAULT_OPENAPI
            self._openapi = openapi_document(self.routes, config)
        return self._openapi

    # -- the ASGI interface -------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: lifespan, http or websocket.

        Error handling:
            :class:`RuntimeError` saying so when the server runs the app on
            another event loop than trio's (uvicorn, hypercorn on asyncio).
        """
        if not trio.lowlevel.in_trio_run():
            raise RuntimeError(NEEDS_TRIO)
        scope["app"] = self
        if scope["type"] == "lifespan":
            await self._run_lifespan(scope, receive, send)
            return
        if self._stack is None:
            self._stack = self._build_stack()
        await self._stack(scope, receive, send)

    def _build_stack(self) -> ASGIApp:
        app: ASGIApp = super().__call__
        if self.openapi_config is not None:
            app = OpenAPIDocs(app, self.openapi_config, self.openapi)
        app = ExceptionMiddleware(app, self.exception_handlers)
        for cls, options in self.middleware:
            app = cls(app, **options)
        return ServerErrorMiddleware(app, self.exception_handlers, self.debug)

    async def _run_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol around :meth:`_lifetime`."""
        await receive()  # lifespan.startup
        started = False
        try:
            async with self._lifetime() as state:
                scope.setdefault("state", {}).update(state)
                async with self.background.open(self.shutdown_timeout):
                    await send({"type": "lifespan.startup.complete"})
                    started = True
                    await receive()  # lifespan.shutdown
        except Exception as exc:
            phase = "shutdown" if started else "startup"
            logger.exception("Application %s failed", phase)
            await send({"type": f"lifespan.{phase}.failed", "message": repr(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    @asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[Mapping[str, Any]]:
        """Startup hooks and the lifespan context; shutdown hooks after."""
        for hook in self._startup:
            await _call_hook(hook)
        state: Mapping[str, Any] = {}
        try:
            if self._lifespan_factory is None:
                yield state
            else:
                async with self._lifespan_factory(self) as yielded:
                    yield yielded or state
        finally:
            for hook in self._shutdown:
                await _call_hook(hook)


async def _call_hook(hook: Hook) -> None:
    result = hook()
    if inspect.isawaitable(result):
        await result
