"""A typed handler's plan: its signature read once, and how a request runs it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from ._connection import HTTPConnection
from ._convertors import Converter
from ._depends import Solver, call
from ._markers import Source
from ._params import read_signature
from ._signature import Kind, Signature


class Plan:
    """How to call one handler: read at definition, followed per request.

    Args:
        func: The handler.
        path: The route's pattern, for messages.
        converters: The pattern's parameters and their converters.
        body_allowed: ``False`` for a websocket handler.

    Error handling:
        ``TypeError`` at definition for a parameter nothing can supply (see
        ``_params.py``).
    """

    def __init__(
        self,
        func: Callable[..., Any],
        path: str,
        converters: Mapping[str, Converter],
        *,
        body_allowed: bool = True,
    ) -> None:
        self.signature: Signature = read_signature(
            func, path, converters, body_allowed=body_allowed
        )
        sig = self.signature
        # Most handlers have no providers: their arguments are read in one
        # pass, without the two phases a provider tree needs.
        self._flat = not sig.dependencies and sig.body is None
        bodies = sig.all_bodies()
        #: Whether a JSON body is read (the route reads it before the handler).
        self.reads_json = any(body.source is not Source.FORM for body in bodies)
        #: Whether a provider yields, so the request must clean up after it.
        self.needs_cleanups = _yields(sig)
        #: Whether a run waits only if its handler does, once a JSON body
        #: has been read: no provider, no form, an ``async`` handler.
        self.waits_only_in_handler = (
            not sig.dependencies
            and all(body.source is not Source.FORM for body in bodies)
            and sig.kind is Kind.ASYNC
        )

    def run(
        self, connection: HTTPConnection, path_params: Mapping[str, Any]
    ) -> Coroutine[Any, Any, Any]:
        """The coroutine that validates, provides and calls the handler."""
        return self._run(connection, path_params)

    async def _run(
        self, connection: HTTPConnection, path_params: Mapping[str, Any]
    ) -> Any:
        solver = Solver(connection, path_params)
        if self._flat:
            kwargs = solver.flat_arguments(self.signature)
        else:
            kwargs = await solver.arguments(self.signature)
        return await call(self.signature, kwargs, connection)


def _yields(signature: Signature) -> bool:
    """Whether a provider of ``signature`` (at any depth) is a generator."""
    for dependency in signature.dependencies:
        provider = dependency.signature
        if provider.kind in (Kind.ASYNC_GENERATOR, Kind.GENERATOR):
            return True
        if _yields(provider):
            return True
    return False
