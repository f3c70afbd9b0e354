"""Test ASGI applications against the real trasgi server, in memory.

No sockets, no threads: the server's own connection handler runs over
:func:`trio.testing.memory_stream_pair`, in the test's trio run.

* :func:`open_client`: an :class:`httpx.AsyncClient` whose connections are
  in-memory streams served by trasgi, with the lifespan protocol run around
  the client's lifetime. Needs ``httpx``: the ``testing`` extra, installed
  from a checkout with ``pip install -e '.[testing]'``.
* :func:`open_connection`: one in-memory connection to speak raw bytes over,
  for protocol-level tests.
* :func:`open_websocket`: a websocket client (wsproto) whose connection,
  handshake included, is served by trasgi in memory.

The raw and WebSocket clients need nothing beyond trasgi's own dependencies;
:class:`TestClient` and :func:`open_client` import httpx when first used.
"""

from typing import TYPE_CHECKING, Any

from ._client import client_class
from ._client import open_client as open_client
from ._memory import open_connection as open_connection
from ._websocket import WebSocketClient as WebSocketClient
from ._websocket import WebSocketClosed as WebSocketClosed
from ._websocket import WebSocketDenied as WebSocketDenied
from ._websocket import open_websocket as open_websocket

if TYPE_CHECKING:
    from ._httpx_client import TestClient as TestClient

__all__ = [
    "TestClient",
    "WebSocketClient",
    "WebSocketClosed",
    "WebSocketDenied",
    "open_client",
    "open_connection",
    "open_websocket",
]


def __getattr__(name: str) -> Any:
    # TestClient subclasses httpx.AsyncClient: made when first asked for
    # (PEP 562), so that importing this package does not need httpx.
    if name == "TestClient":
        return client_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
