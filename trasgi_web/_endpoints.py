"""Handlers: checked once at definition, called with the request and params."""

from __future__ import annotations

import dis
import functools
import inspect
import types
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from typing import Any

from ._responses import JSONResponse, PlainTextResponse, Response

Handler = Callable[..., Awaitable[Any]]

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


class Endpoint:
    """A handler with its calling convention worked out from its signature.

    The first positional parameter that is not a path parameter receives
    the request (or websocket); path parameters are passed by keyword.

    Error handling:
        ``TypeError`` if the handler is not an ``async def`` function;
        ``ValueError`` if it cannot accept a path parameter, or requires a
        parameter the framework cannot supply.
    """

    def __init__(self, func: Handler, path: str, param_names: Collection[str]) -> None:
        if not _is_async(func):
            raise TypeError(
                f"handler {_name(func)} for {path!r} must be an async function"
            )
        self.func = func
        self.cannot_wait = cannot_wait(func)
        parameters = list(inspect.signature(func).parameters.values())
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
        for parameter in rest[1 if self.takes_connection else 0 :]:
            if parameter.default is inspect.Parameter.empty and parameter.kind in (
                *_POSITIONAL,
                inspect.Parameter.KEYWORD_ONLY,
            ):
                raise ValueError(
                    f"handler {_name(func)} requires {parameter.name!r}, which is "
                    f"neither the request nor a path parameter of {path!r}"
                )

    def __call__(
        self, connection: object, params: Mapping[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """The handler's coroutine for this call, not yet started.

        The handler's own coroutine is returned rather than awaited inside
        one more: one frame and one await less on every request. Another
        awaitable (from a callable only marked as a coroutine function) is
        wrapped, as callers step the result as a coroutine.
        """
        if self.takes_connection:
            awaitable = self.func(connection, **params)
        else:
            awaitable = self.func(**params)
        if isinstance(awaitable, types.CoroutineType):
            return awaitable
        return _wrap(awaitable)


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
