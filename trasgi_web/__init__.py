"""trasgi_web: a micro-framework that is a pure ASGI application, built on trio.

Routes live in an inspectable table (:attr:`App.routes`); decorators are
sugar over it. Handlers get a :class:`Request` (and path parameters as
keyword arguments) and return a :class:`Response`, ``str``, ``bytes``,
``dict``/``list`` or ``(body, status[, headers])``. Typed parameters
(query, header, cookie values, JSON bodies, dependencies) are validated
with msgspec, and invalid input is answered with a structured 422.
Structured concurrency gives per-route deadlines, handlers cancelled when
their client leaves, an application nursery for background work, and
websocket handlers that receive and send at once. It runs on any ASGI
server that runs trio.
"""

from ._app import App as App
from ._auth import AuthCredentials as AuthCredentials
from ._auth import AuthenticationBackend as AuthenticationBackend
from ._auth import AuthenticationError as AuthenticationError
from ._auth import AuthenticationMiddleware as AuthenticationMiddleware
from ._auth import BaseUser as BaseUser
from ._auth import Requires as Requires
from ._auth import SimpleUser as SimpleUser
from ._auth import UnauthenticatedUser as UnauthenticatedUser
from ._auth import requires as requires
from ._background import BackgroundTasks as BackgroundTasks
from ._connection import HTTPConnection as HTTPConnection
from ._convertors import Converter as Converter
from ._cookies import format_set_cookie as format_set_cookie
from ._cookies import parse_cookie_header as parse_cookie_header
from ._csrf import CSRFMiddleware as CSRFMiddleware
from ._csrf import csrf_token as csrf_token
from ._datastructures import Headers as Headers
from ._datastructures import MultiDict as MultiDict
from ._datastructures import MutableHeaders as MutableHeaders
from ._datastructures import QueryParams as QueryParams
from ._datastructures import State as State
from ._exceptions import HTTPException as HTTPException
from ._exceptions import WebSocketDisconnect as WebSocketDisconnect
from ._files import FileResponse as FileResponse
from ._flash import flash as flash
from ._flash import get_flashed_messages as get_flashed_messages
from ._forms import FormLimits as FormLimits
from ._markers import Body as Body
from ._markers import Cookie as Cookie
from ._markers import Depends as Depends
from ._markers import Form as Form
from ._markers import FromState as FromState
from ._markers import Header as Header
from ._markers import Path as Path
from ._markers import Query as Query
from ._middleware.cors import CORSMiddleware as CORSMiddleware
from ._middleware.gzip import GZipMiddleware as GZipMiddleware
from ._middleware.trusted_host import TrustedHostMiddleware as TrustedHostMiddleware
from ._openapi_doc import OpenAPIConfig as OpenAPIConfig
from ._request import ClientDisconnect as ClientDisconnect
from ._request import Request as Request
from ._responses import HTMLResponse as HTMLResponse
from ._responses import JSONResponse as JSONResponse
from ._responses import PlainTextResponse as PlainTextResponse
from ._responses import RedirectResponse as RedirectResponse
from ._responses import Response as Response
from ._responses import StreamingResponse as StreamingResponse
from ._router import Router as Router
from ._routes import Match as Match
from ._routes import Mount as Mount
from ._routes import Route as Route
from ._routes import WebSocketRoute as WebSocketRoute
from ._sessions import MemorySessionStore as MemorySessionStore
from ._sessions import SessionMiddleware as SessionMiddleware
from ._sessions import SessionStore as SessionStore
from ._sse import EventSourceResponse as EventSourceResponse
from ._sse import ServerSentEvent as ServerSentEvent
from ._staticfiles import StaticFiles as StaticFiles
from ._templates import Jinja2Templates as Jinja2Templates
from ._uploads import FormData as FormData
from ._uploads import UploadFile as UploadFile
from ._url import URL as URL
from ._validation import RequestValidationError as RequestValidationError
from ._websocket import WebSocket as WebSocket
from ._websocket import WebSocketState as WebSocketState

__all__ = [
    "URL",
    "App",
    "AuthCredentials",
    "AuthenticationBackend",
    "AuthenticationError",
    "AuthenticationMiddleware",
    "BackgroundTasks",
    "BaseUser",
    "Body",
    "CORSMiddleware",
    "CSRFMiddleware",
    "ClientDisconnect",
    "Converter",
    "Cookie",
    "Depends",
    "EventSourceResponse",
    "FileResponse",
    "Form",
    "FormData",
    "FormLimits",
    "FromState",
    "GZipMiddleware",
    "HTMLResponse",
    "HTTPConnection",
    "HTTPException",
    "Header",
    "Headers",
    "JSONResponse",
    "Jinja2Templates",
    "Match",
    "MemorySessionStore",
    "Mount",
    "MultiDict",
    "MutableHeaders",
    "OpenAPIConfig",
    "Path",
    "PlainTextResponse",
    "Query",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "RequestValidationError",
    "Requires",
    "Response",
    "Route",
    "Router",
    "ServerSentEvent",
    "SessionMiddleware",
    "SessionStore",
    "SimpleUser",
    "State",
    "StaticFiles",
    "StreamingResponse",
    "TrustedHostMiddleware",
    "UnauthenticatedUser",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "WebSocketState",
    "csrf_token",
    "flash",
    "format_set_cookie",
    "get_flashed_messages",
    "parse_cookie_header",
    "requires",
]
