"""ASGI 3 type aliases, and what a connection needs of its application.

They are defined here so that trasgi_web depends on no server. ASGI scopes
and messages are plain dictionaries (ASGI spec, "Specifications and
Protocols"); the aliases name their roles for readers and for mypy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._background import BackgroundTasks
    from ._datastructures import State

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AppLike(Protocol):
    """The application a request or websocket reaches through ``scope["app"]``.

    :class:`~trasgi_web.App` provides it. Connections are typed against this
    rather than ``App`` because the application module imports the
    connection modules; naming ``App`` there would make an import cycle.
    """

    @property
    def state(self) -> State:
        """Application-wide values."""

    @property
    def background(self) -> BackgroundTasks:
        """The application's background tasks."""

    def url_for(self, name: str, /, **params: Any) -> str:
        """The path of the route ``name`` with ``params``."""
