"""Handlers: checked once at definition, called with the request and params."""

from __future__ import annotations

import dis
import functools
import inspect
import types
import typing
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from typing import Annotated, Any

from ._connection import HTTPConnection
from ._convertors import Converter, PathConverter, StringConverter
from ._models import encode_json, is_model_instance
from ._plan import Plan
from ._responses import JSONResponse, PlainTextResponse, Response

#: A route handler: ``async def``, or a plain ``def`` run in a worker thread.
Handler = Callable[..., Any]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


class Endpoint:
    """A handler with its calling convention worked out from its signature.

    A plain handler (an ``async def`` taking only the connection and path
    parameters) is called directly: the first positional parameter that is
    not a path parameter receives the request (or websocket), path
    parameters come by keyword. Any other handler (typed parameters,
    dependencies, a plain ``def``, or a declared ``status_code``) is called
    through its :class:`~trasgi_web._plan.Plan`, made here once.

    Error handling:
        ``ValueError`` if a plain handler cannot accept a path parameter;
        ``TypeError`` for a parameter nothing can supply (see ``_params.py``)
        or a handler that is a generator.
    """

    def __init__(
        self,
        func: Handler,
        path: str,
        param_names: Collection[str],
        *,
        status_code: int | None = None,
        body_allowed: bool = True,
    ) -> None:
        self.func = func
        self.status_code = status_code
        self.plan: Plan | None = None
        parameters = _parameters(func)
        # A declared status is applied to what the handler returns: that
        # too is the plan's work.
        typed = status_code is not None or not _is_plain(func, parameters, param_names)
        if typed:
            converters = _converters_of(param_names)
            self.plan = Plan(func, path, converters, body_allowed=body_allowed)
            # The route reads a JSON body first; then the plan's run waits
            # only where the handler does.
            self.cannot_wait = self.plan.waits_only_in_handler and cannot_wait(func)
            self.takes_connection = True
            return
        if not _is_async(func):
            raise TypeError(
                f"handler {_name(func)} for {path!r} must be an async function"
            )
        self.cannot_wait = cannot_wait(func)
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        named = {p.name for p in parameters if p.kind in _NAMED}
        for name in param_names:
            if name not in named and not takes_kwargs:
                raise ValueError(
                    f"handler {_name(func)} does not accept path parameter "
                    f"{name!r} of {path!r}"
                )
        rest = [p for p in parameters if p.name not in param_names]
        self.takes_connection = bool(rest) and rest[0].kind in _POSITIONAL

    def __call__(
        self, connection: object, params: Mapping[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """The handler's coroutine for this call, not yet started.

        The handler's own coroutine is returned rather than awaited inside
        one more: one frame and one await less on every request. Another
        awaitable (from a callable only marked as a coroutine function) is
        wrapped, as callers step the result as a coroutine.
        """
        if self.plan is not None:
            return self._typed(connection, params)
        if self.takes_connection:
            awaitable = self.func(connection, **params)
        else:
            awaitable = self.func(**params)
        if isinstance(awaitable, types.CoroutineType):
            return awaitable
        return _wrap(awaitable)

    async def _typed(self, connection: Any, params: Mapping[str, Any]) -> Any:
        """A typed handler's call: its result rendered with the route's status."""
        plan = self.plan
        if plan is None:  # pragma: no cover - only called when there is one
            raise RuntimeError("a plain handler has no plan")
        return render(await plan.run(connection, params), self.status_code)


def _is_plain(
    func: Any, parameters: list[inspect.Parameter], param_names: Collection[str]
) -> bool:
    """Whether a handler takes nothing but the connection and path parameters.

    Such a handler is called directly, as it always was; any other (a sync
    one, one with typed parameters or providers) runs through its
    :class:`~trasgi_web._plan.Plan`. A path parameter annotated with a type
    its ``str`` converter does not make (``{id}`` with ``id: int``) is typed.
    """
    if not _is_async(func):
        return False
    converters = _converters_of(param_names)
    rest = [p for p in parameters if p.name not in param_names]
    for index, parameter in enumerate(rest):
        if parameter.kind in _VARIADIC:
            continue
        if index > 0 or parameter.kind not in _POSITIONAL:
            return False
        if not _untyped_or_connection(parameter.annotation):
            return False
    return not any(
        _wants_conversion(p.annotation, converters[p.name])
        for p in parameters
        if p.name in converters
    )


_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _untyped_or_connection(annotation: Any) -> bool:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return True
    if isinstance(annotation, str):
        # Not evaluated (imported only for type checkers): judged by name.
        return annotation.rpartition(".")[2] in _CONNECTION_NAMES
    return isinstance(annotation, type) and issubclass(annotation, HTTPConnection)


_CONNECTION_NAMES = frozenset({"Request", "WebSocket", "HTTPConnection"})


def _wants_conversion(annotation: Any, converter: Converter) -> bool:
    if isinstance(annotation, str):
        return False  # not evaluated: the converter's value, as before typing
    if typing.get_origin(annotation) is Annotated:
        return True
    text = isinstance(converter, StringConverter | PathConverter)
    return text and annotation not in (inspect.Parameter.empty, str, Any)


def _parameters(func: Any) -> list[inspect.Parameter]:
    """The handler's parameters, annotations evaluated where they can be.

    Annotations that do not evaluate (a name imported only for type
    checkers) stay strings: a handler taking only the connection and path
    parameters is still plain with them, and any other is refused by its
    plan, which needs them evaluated.
    """
    try:
        signature = inspect.signature(func, eval_str=True)
    except NameError:
        signature = inspect.signature(func)
    return list(signature.parameters.values())


def _converters_of(param_names: Collection[str]) -> Mapping[str, Converter]:
    if isinstance(param_names, Mapping):
        return param_names
    return dict.fromkeys(param_names, StringConverter())


def render(result: Any, status_code: int | None) -> Any:
    """A typed handler's result: models and containers as JSON (msgspec).

    A :class:`Response` or a ``(body, status)`` tuple is left as it is;
    ``None`` becomes an empty response when the route declares a status
    (``status_code=204``); anything else is JSON, with the route's status.
    """
    if isinstance(result, Response | tuple):
        return result
    if result is None and status_code is not None:
        return Response(status_code=status_code)
    if isinstance(result, str | bytes):
        response = to_response(result)
    else:
        response = Response(encode_json(result), media_type="application/json")
    if status_code is not None:
        response.status_code = status_code
    return response


async def _wrap(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


# The instructions a coroutine's frame suspends at: ``await``, ``async for``
# and ``async with`` all compile to one (YIELD_FROM before Python 3.11).
_SUSPENDING = frozenset({"YIELD_VALUE", "YIELD_FROM"})


def _suspends(code: types.CodeType) -> bool:
    return any(op.opname in _SUSPENDING for op in dis.get_instructions(code))


async def _probe(awaitable: Awaitable[None]) -> None:
    """Never called: its code shows how an ``await`` compiles here."""
    await awaitable


# Checked once: on an interpreter whose suspending instructions are named
# otherwise, no handler is judged unable to wait.
_CAN_JUDGE = _suspends(_probe.__code__)


def cannot_wait(func: Any) -> bool:
    """Whether every call of ``func`` returns a coroutine that never waits.

    A coroutine suspends only at a suspending instruction of its own code:
    functions it calls, sync ones included, cannot suspend it. So a plain
    ``async def`` function whose code holds none runs to its end in one
    step, and no cancellation (a deadline, a disconnect) can reach it.
    Anything else (a partial, a callable object, a method, a sync function
    marked as a coroutine function) is judged able to wait, as is every
    function when the interpreter is not understood.
    """
    return (
        _CAN_JUDGE
        and isinstance(func, types.FunctionType)
        and bool(func.__code__.co_flags & inspect.CO_COROUTINE)
        and not _suspends(func.__code__)
    )


def finish_at_once(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine``, known by :func:`cannot_wait` never to wait; its result.

    Error handling:
        ``RuntimeError`` (the coroutine closed) should it wait after all.
    """
    try:
        coroutine.send(None)
    except StopIteration as returned:
        return returned.value
    coroutine.close()
    raise RuntimeError(f"{coroutine!r} waited, though its code has no await")


def to_response(value: Any) -> Response:
    """Turn what a handler returned into a :class:`Response`.

    ``str`` becomes text, ``bytes`` an octet stream, ``dict`` or ``list``
    JSON; ``(body, status)`` and ``(body, status, headers)`` set the status
    and add headers.

    Error handling:
        ``TypeError`` naming the type for anything else (``None`` included).
    """
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and len(value) in (2, 3):
        body, status, *rest = value
        if not isinstance(status, int) or isinstance(status, bool):
            raise TypeError(f"handler returned status {status!r}; expected an int")
        headers: Mapping[str, str] | None = rest[0] if rest else None
        return _from_body(body, status, headers)
    return _from_body(value, 200, None)


def _from_body(body: Any, status: int, headers: Mapping[str, str] | None) -> Response:
    # JSON first: the types are disjoint, and JSON is what APIs return most.
    if isinstance(body, dict | list):
        return JSONResponse(body, status, headers)
    if isinstance(body, str):
        return PlainTextResponse(body, status, headers)
    if isinstance(body, bytes | bytearray | memoryview):
        return Response(body, status, headers, "application/octet-stream")
    if is_model_instance(body):
        return Response(encode_json(body), status, headers, "application/json")
    hint = " (return Response(status_code=204) for no content)" if body is None else ""
    raise TypeError(
        f"a handler cannot return {type(body).__name__}{hint}; return a Response, "
        "str, bytes, dict, list or a (body, status[, headers]) tuple"
    )


def _is_async(func: Any) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004
    return not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or repr(func))
