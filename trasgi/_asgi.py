"""Types for the ASGI 3 interface, shared by the server's modules.

ASGI messages and scopes are plain dictionaries. The aliases below name their
roles; the TypedDicts document the keys the server produces so that readers
(and mypy) can see the shape of what crosses the server/application boundary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, TypedDict

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Any async callable taking (scope, receive, send). Parameters are typed
#: loosely so that applications annotated with ``dict`` or their own aliases
#: are accepted; the TypedDicts below document what they receive.
ASGIApp = Callable[[Any, Any, Any], Awaitable[Any]]


class ASGIVersions(TypedDict):
    """The ``scope["asgi"]`` entry: the interface and sub-spec versions."""

    version: Literal["3.0"]
    spec_version: str


class HTTPScope(TypedDict):
    """The scope of one HTTP request (ASGI HTTP spec, "Connection Scope")."""

    type: Literal["http"]
    asgi: ASGIVersions
    http_version: str
    method: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    state: dict[str, Any]
    extensions: dict[str, dict[str, Any]]


class WebSocketScope(TypedDict):
    """The scope of one WebSocket (ASGI websocket spec, "Connection Scope")."""

    type: Literal["websocket"]
    asgi: ASGIVersions
    http_version: str
    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    server: tuple[str, int | None] | None
    subprotocols: list[str]
    state: dict[str, Any]
    extensions: dict[str, dict[str, Any]]


class LifespanScope(TypedDict):
    """The scope of the lifespan protocol (ASGI lifespan spec)."""

    type: Literal["lifespan"]
    asgi: ASGIVersions
    state: dict[str, Any]
