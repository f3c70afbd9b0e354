"""trasgi: an ASGI 3 server on trio and h11.

The public surface is what this module re-exports; everything else lives in
private modules and may change. ``tests/test_public_api.py`` pins this list.
"""

from trasgi._config.config import Config as Config
from trasgi._errors import ASGIProtocolError as ASGIProtocolError
from trasgi._errors import ClientDisconnected as ClientDisconnected
from trasgi._errors import LifespanFailure as LifespanFailure
from trasgi._io.connection import serve_connection as serve_connection
from trasgi._protocol.scope import ConnectionInfo as ConnectionInfo
from trasgi._server.serve import run as run
from trasgi._server.serve import serve_listeners as serve_listeners
from trasgi._server.serve import serve_tcp as serve_tcp
from trasgi._version import __version__ as __version__

__all__ = [
    "ASGIProtocolError",
    "ClientDisconnected",
    "Config",
    "ConnectionInfo",
    "LifespanFailure",
    "__version__",
    "run",
    "serve_connection",
    "serve_listeners",
    "serve_tcp",
]
