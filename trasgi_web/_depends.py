"""Running a route's plan: validate everything, call the providers, then the handler.

A request goes through two phases. First every value of the handler and of
its providers is read and converted, and every error collected: a request
with three bad fields gets one 422 listing three. Only then are providers
called, innermost first, each once per request (unless it opts out of the
cache), and finally the handler.

A provider that yields hands its value over at the ``yield``; the rest of it
runs when the request is over (:func:`run_with_cleanups`), in the request's
own task, after the response has been sent.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from contextvars import ContextVar
from typing import Any

import attrs
import trio

from ._connection import HTTPConnection
from ._exceptions import HTTPException
from ._markers import Source
from ._models import convert_form, field_types
from ._request import Request
from ._signature import (
    REQUIRED,
    BodyParam,
    DependencyParam,
    Kind,
    Signature,
    StateParam,
)
from ._validation import ErrorDetail, RequestValidationError, missing

_Cleanup = AsyncGenerator[Any, None] | Generator[Any, None, None]


class Cleanups:
    """The suspended generators of one request's providers.

    Resource handling:
        :meth:`close` resumes them in reverse order: normally after a
        response, or with the exception that ended the request thrown in at
        their ``yield``.
    """

    def __init__(self, limiter: trio.CapacityLimiter | None) -> None:
        self._limiter = limiter
        self._generators: list[_Cleanup] = []

    def push(self, generator: _Cleanup) -> None:
        """Remember a generator that has yielded its value."""
        self._generators.append(generator)

    async def close(self, error: BaseException | None) -> None:
        """Finish every generator, the last opened first.

        Error handling:
            An exception a generator raises while finishing (other than the
            one thrown into it) is raised once all have finished; the
            request's own exception is never replaced by silence: a
            generator that catches it does not stop it.
        """
        raised: BaseException | None = None
        while self._generators:
            generator = self._generators.pop()
            try:
                await self._finish(generator, error)
            except BaseException as exc:
                if exc is not error:
                    raised = error = exc
        if raised is not None:
            raise raised

    async def _finish(self, generator: _Cleanup, error: BaseException | None) -> None:
        if isinstance(generator, Generator):
            step = functools.partial(_finish_sync, generator, error)
            await trio.to_thread.run_sync(step, limiter=self._limiter)
            return
        try:
            if error is None:
                await generator.__anext__()
            else:
                await generator.athrow(error)
        except StopAsyncIteration:
            return
        await generator.aclose()
        raise RuntimeError(f"provider {generator!r} yielded more than once")


def _finish_sync(
    generator: Generator[Any, None, None], error: BaseException | None
) -> None:
    try:
        if error is None:
            next(generator)
        else:
            generator.throw(error)
    except StopIteration:
        return
    generator.close()
    raise RuntimeError(f"provider {generator!r} yielded more than once")


_CLEANUPS: ContextVar[Cleanups | None] = ContextVar("trasgi_web_cleanups", default=None)


async def run_with_cleanups(
    scope: Mapping[str, Any], body: Callable[[], Awaitable[None]]
) -> None:
    """Run ``body`` (a request, response included); then the providers' cleanups.

    The cleanups run in this task, inside the request's scope: if the
    request is being cancelled, so are they, at their first wait.
    """
    cleanups = Cleanups(thread_limiter(scope))
    token = _CLEANUPS.set(cleanups)
    try:
        await body()
    except BaseException as exc:
        await cleanups.close(exc)
        raise
    else:
        await cleanups.close(None)
    finally:
        _CLEANUPS.reset(token)


def thread_limiter(scope: Mapping[str, Any]) -> trio.CapacityLimiter | None:
    """The application's limiter for worker threads (trio's default if none)."""
    limiter: trio.CapacityLimiter | None = getattr(
        scope.get("app"), "thread_limiter", None
    )
    return limiter


@attrs.define
class _Node:
    """One callable's arguments, read; its providers' nodes beside them."""

    signature: Signature
    kwargs: dict[str, Any]
    providers: list[tuple[DependencyParam, _Node]]


class Solver:
    """One request's run of a plan: its errors and its providers' values."""

    def __init__(
        self, connection: HTTPConnection, path_params: Mapping[str, Any]
    ) -> None:
        self.connection = connection
        self.path_params = path_params
        self.errors: list[ErrorDetail] = []
        self._read: dict[Callable[..., Any], _Node] = {}
        self._cache: dict[Callable[..., Any], Any] = {}

    async def arguments(self, signature: Signature) -> dict[str, Any]:
        """The keyword arguments for the handler, its providers called.

        Error handling:
            :class:`RequestValidationError` listing every value that failed,
            before any provider is called.
        """
        node = await self._read_node(signature)
        if self.errors:
            raise RequestValidationError(self.errors)
        return await self._provide(node)

    def flat_arguments(self, signature: Signature) -> dict[str, Any]:
        """The arguments of a handler with neither providers nor a body.

        Error handling:
            As :meth:`arguments`.
        """
        kwargs = self._values(signature)
        if self.errors:
            raise RequestValidationError(self.errors)
        return kwargs

    async def _read_node(self, signature: Signature) -> _Node:
        kwargs = self._values(signature)
        if signature.body is not None:
            await self._read_body(signature.body, kwargs)
        providers = []
        for dependency in signature.dependencies:
            func = dependency.signature.func
            known = self._read.get(func) if dependency.marker.use_cache else None
            if known is None:
                known = await self._read_node(dependency.signature)
                self._read[func] = known
            providers.append((dependency, known))
        return _Node(signature, kwargs, providers)

    def _values(self, signature: Signature) -> dict[str, Any]:
        connection = self.connection
        path_params = self.path_params
        kwargs: dict[str, Any] = {}
        if signature.takes_kwargs:
            kwargs.update(path_params)
        for name in signature.path_names:
            kwargs[name] = path_params[name]
        if signature.connection is not None:
            kwargs[signature.connection] = connection
        for value in signature.values:
            converted, error = value.resolve(connection, path_params)
            if error is None:
                kwargs[value.name] = converted
            else:
                self.errors.append(error)
        for state in signature.states:
            kwargs[state.name] = _state_value(connection, state)
        return kwargs

    async def _read_body(self, body: BodyParam, kwargs: dict[str, Any]) -> None:
        request = self.connection
        if not isinstance(request, Request):  # pragma: no cover - refused at definition
            raise TypeError("only an HTTP request has a body")
        if body.source is Source.FORM:
            value, errors = await _read_form(request, body)
        else:
            value, errors = await _read_json(request, body)
        if errors:
            self.errors.extend(errors)
        else:
            kwargs[body.name] = value

    async def _provide(self, node: _Node) -> dict[str, Any]:
        kwargs = node.kwargs
        for dependency, provider in node.providers:
            func = dependency.signature.func
            if dependency.marker.use_cache and func in self._cache:
                kwargs[dependency.name] = self._cache[func]
                continue
            provider_kwargs = await self._provide(provider)
            value = await call(provider.signature, provider_kwargs, self.connection)
            if dependency.marker.use_cache:
                self._cache[func] = value
            kwargs[dependency.name] = value
        return kwargs


async def _read_json(
    request: Request, body: BodyParam
) -> tuple[Any, list[ErrorDetail]]:
    raw = await request.body()
    if not raw:
        if body.default is REQUIRED:
            return None, [missing(("body",))]
        return body.default, []
    try:
        result: tuple[Any, list[ErrorDetail]] = body.decoder.decode(raw, ("body",))
    except ValueError as exc:
        raise HTTPException(400, f"Invalid JSON: {exc}") from None
    return result


async def _read_form(
    request: Request, body: BodyParam
) -> tuple[Any, list[ErrorDetail]]:
    form = await request.form()
    fields: dict[str, Any] = {}
    for wire, tp, _ in field_types(body.annotation).values():
        values = form.getlist(wire)
        if values:
            many = typing.get_origin(tp) in (list, tuple, set, frozenset)
            fields[wire] = values if many else values[0]
    result: tuple[Any, list[ErrorDetail]] = convert_form(
        fields, body.annotation, ("body",)
    )
    return result


_ABSENT = object()


def _state_value(connection: HTTPConnection, state: StateParam) -> Any:
    """A lifespan state value, checked against its annotation.

    Error handling:
        ``LookupError`` if no state holds the key, ``TypeError`` for a value
        of another class: both are the application's mistakes (a 500).
    """
    value = connection.scope.get("state", {}).get(state.key, _ABSENT)
    if value is _ABSENT:
        app_state = getattr(connection.scope.get("app"), "state", None)
        value = getattr(app_state, state.key, _ABSENT)
    if value is _ABSENT:
        raise LookupError(f"the lifespan state has no {state.key!r}")
    expected = state.annotation
    if (
        isinstance(expected, type)
        and typing.get_origin(expected) is None
        and not isinstance(value, expected)
    ):
        raise TypeError(
            f"the lifespan state's {state.key!r} is a {type(value).__name__}, "
            f"not a {expected.__name__}"
        )
    return value


async def call(
    signature: Signature, kwargs: dict[str, Any], connection: HTTPConnection
) -> Any:
    """Call a handler or provider as its kind requires; a generator's first value.

    Error handling:
        ``RuntimeError`` for a generator that does not yield, or a yielding
        provider outside a request that can clean up after it.
    """
    func = signature.func
    args: tuple[Any, ...] = ()
    if signature.connection_positional and signature.connection is not None:
        args = (kwargs.pop(signature.connection),)
    kind = signature.kind
    if kind is Kind.ASYNC:
        return await func(*args, **kwargs)
    limiter = thread_limiter(connection.scope)
    if kind is Kind.SYNC:
        bound = functools.partial(func, *args, **kwargs)
        return await trio.to_thread.run_sync(bound, limiter=limiter)
    cleanups = _CLEANUPS.get()
    if cleanups is None:
        raise RuntimeError(f"provider {func!r} yields outside a request")
    generator = func(*args, **kwargs)
    if kind is Kind.ASYNC_GENERATOR:
        value = await anext(generator, _ABSENT)
    else:
        value = await trio.to_thread.run_sync(_first, generator, limiter=limiter)
    if value is _ABSENT:
        raise RuntimeError(f"provider {func!r} did not yield")
    cleanups.push(generator)
    return value


def _first(generator: Generator[Any, None, None]) -> Any:
    """The first value of a generator, in its thread (StopIteration cannot cross)."""
    return next(generator, _ABSENT)
