"""The public surface of trasgi_web, pinned."""

import pathlib

import trasgi_web

EXPECTED = {
    "HTTPConnection",
    "AuthCredentials",
    "AuthenticationBackend",
    "AuthenticationError",
    "AuthenticationMiddleware",
    "BaseUser",
    "CSRFMiddleware",
    "Jinja2Templates",
    "MemorySessionStore",
    "Requires",
    "SessionMiddleware",
    "SessionStore",
    "SimpleUser",
    "UnauthenticatedUser",
    "csrf_token",
    "flash",
    "get_flashed_messages",
    "requires",
    "App",
    "BackgroundTasks",
    "CORSMiddleware",
    "ClientDisconnect",
    "Converter",
    "EventSourceResponse",
    "FileResponse",
    "FormData",
    "FormLimits",
    "GZipMiddleware",
    "HTMLResponse",
    "HTTPException",
    "Headers",
    "JSONResponse",
    "Match",
    "Mount",
    "MultiDict",
    "MutableHeaders",
    "PlainTextResponse",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "Route",
    "Router",
    "ServerSentEvent",
    "State",
    "StaticFiles",
    "StreamingResponse",
    "TrustedHostMiddleware",
    "URL",
    "UploadFile",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketRoute",
    "WebSocketState",
}


def test_all_is_the_expected_surface() -> None:
    assert set(trasgi_web.__all__) == EXPECTED
    public = {name for name in vars(trasgi_web) if not name.startswith("_")}
    assert public == EXPECTED


def test_every_public_name_is_documented() -> None:
    for name in EXPECTED:
        assert getattr(trasgi_web, name).__doc__, name


def test_public_objects_live_in_private_modules() -> None:
    for name in EXPECTED:
        module = getattr(trasgi_web, name).__module__
        assert module.startswith("trasgi_web._"), (name, module)


def test_package_is_typed() -> None:
    assert (pathlib.Path(trasgi_web.__file__).parent / "py.typed").exists()
