"""The ASGI lifespan handshake, as an async context manager.

``async with lifespan(app, mode, state):`` runs the application's lifespan
handler in a task, completes ``lifespan.startup`` before the body runs and
``lifespan.shutdown`` after it, and holds the handler's task for the server's
whole life (ASGI lifespan spec).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from trasgi._asgi import ASGIApp, Message
from trasgi._config.config import LifespanMode
from trasgi._errors import ASGIProtocolError, LifespanFailure
from trasgi._observe.logs import error_logger
from trasgi._protocol.scope import LIFESPAN_SPEC_VERSION


class _AppFinished:
    """Sent on the app's message channel when its lifespan task ends."""

    def __init__(self, error: Exception | None) -> None:
        self.error = error


class _Handshake:
    """Both sides of the lifespan conversation with the application."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self._app = app
        self._state = state
        self._to_app, self._app_inbox = trio.open_memory_channel[Message](1)
        self._from_app, self._server_inbox = trio.open_memory_channel[
            "Message | _AppFinished"
        ](math.inf)
        self.finished = False

    async def run_app(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self._state,
        }
        error: Exception | None = None
        try:
            await self._app(scope, self._app_inbox.receive, self._from_app.send)
        except Exception as exc:
            error = exc
        self._from_app.send_nowait(_AppFinished(error))

    async def exchange(self, phase: str) -> Message | _AppFinished:
        """Send ``lifespan.<phase>`` and wait for the application's answer."""
        if not self.finished:
            await self._to_app.send({"type": f"lifespan.{phase}"})
        reply = await self._server_inbox.receive()
        if isinstance(reply, _AppFinished):
            self.finished = True
        return reply


def _check_reply(reply: Message, phase: str) -> None:
    """Raise LifespanFailure for a ``failed`` reply or a message out of order."""
    kind = reply.get("type")
    if kind == f"lifespan.{phase}.complete":
        return
    if kind == f"lifespan.{phase}.failed":
        raise LifespanFailure(
            f"{phase} failed: {reply.get('message', '')}".rstrip(": ")
        )
    raise LifespanFailure(
        f"{phase} failed: "
        + str(
            ASGIProtocolError(f"the application sent {kind!r} during lifespan {phase}")
        )
    )


@asynccontextmanager
async def lifespan(
    app: ASGIApp, mode: LifespanMode, state: dict[str, Any]
) -> AsyncIterator[None]:
    """Run the lifespan protocol around the body of the ``async with``.

    Args:
        app: The ASGI application.
        mode: ``"on"`` requires lifespan support; ``"auto"`` continues without
            it when the application raises or returns before answering
            startup; ``"off"`` does nothing.
        state: The dictionary given to the application as ``scope["state"]``;
            what it stores there is copied into every request's scope.

    Error handling:
        Raises :class:`LifespanFailure` when startup fails (a
        ``lifespan.startup.failed`` message, or, in ``"on"`` mode, an exception
        or a return before answering). A failed shutdown is logged, not raised,
        so that the server still exits.

    Resource handling:
        When the body is cancelled, shutdown is not run: cancellation means
        "stop now"; a graceful stop is a shutdown trigger, which returns
        normally and so runs the shutdown.
    """
    if mode == "off":
        yield
        return
    failure: LifespanFailure | None = None
    async with trio.open_nursery() as nursery:
        handshake = _Handshake(app, state)
        nursery.start_soon(handshake.run_app)
        try:
            supported = await _startup(handshake, mode)
        except LifespanFailure as exc:
            # Raised outside the nursery, so callers catch it as itself
            # rather than inside an exception group.
            failure = exc
        else:
            yield
            if supported:
                await _shutdown(handshake)
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure


async def _startup(handshake: _Handshake, mode: LifespanMode) -> bool:
    """Run startup; return whether the application speaks lifespan."""
    reply = await handshake.exchange("startup")
    if isinstance(reply, _AppFinished):
        if mode == "on":
            reason = (
                f"{type(reply.error).__name__}: {reply.error}"
                if reply.error
                else ("the application returned without answering lifespan.startup")
            )
            raise LifespanFailure(f"startup failed: {reason}") from reply.error
        error_logger.info(
            "the application does not support the ASGI lifespan protocol%s; "
            "continuing without it",
            f" ({type(reply.error).__name__}: {reply.error})" if reply.error else "",
        )
        return False
    _check_reply(reply, "startup")
    error_logger.info("application startup complete")
    return True


async def _shutdown(handshake: _Handshake) -> None:
    reply = await handshake.exchange("shutdown")
    if isinstance(reply, _AppFinished):
        if reply.error is not None:
            error_logger.error(
                "lifespan shutdown failed: %s: %s",
                type(reply.error).__name__,
                reply.error,
            )
        else:
            error_logger.error(
                "lifespan shutdown failed: the application returned without "
                "sending lifespan.shutdown.complete"
            )
        return
    try:
        _check_reply(reply, "shutdown")
    except LifespanFailure as failure:
        error_logger.error("lifespan %s", failure)
        return
    error_logger.info("application shutdown complete")
