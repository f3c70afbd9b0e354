"""Test ASGI applications against the real trasgi server, in memory.

No sockets, no threads: the server's own connection handler runs over
:func:`trio.testing.memory_stream_pair`, in the test's trio run.

* :func:`open_client`: an :class:`httpx.AsyncClient` whose connections are
  in-memory streams served by trasgi, with the lifespan protocol run around
  the client's lifetime. Needs ``httpx`` (``pip install trasgi[testing]``).
* :func:`open_connection`: one in-memory connection to speak raw bytes over,
  for protocol-level tests.
* :func:`open_websocket`: a websocket client (wsproto) whose connection,
  handshake included, is served by trasgi in memory.
"""

from ._client import TestClient as TestClient
from ._client import open_client as open_client
from ._memory import open_connection as open_connection
from ._websocket import WebSocketClient as WebSocketClient
from ._websocket import WebSocketClosed as WebSocketClosed
from ._websocket import WebSocketDenied as WebSocketDenied
from ._websocket import open_websocket as open_websocket

__all__ = [
    "TestClient",
    "WebSocketClient",
    "WebSocketClosed",
    "WebSocketDenied",
    "open_client",
    "open_connection",
    "open_websocket",
]
