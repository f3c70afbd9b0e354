"""The public surface of trasgi_web, pinned."""

import pathlib
import types

import trasgi_web

EXPECTED = {
    # Typed parameters, dependencies and validation.
    "Body",
    "Cookie",
    "Depends",
    "Form",
    "FromState",
    "Header",
    "OpenAPIConfig",
    "Path",
    "Query",
    "RequestValidationError",
    # Cookie helpers for middleware and handlers.
    "format_set_cookie",
    "parse_cookie_header",
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
    # Public submodules (trasgi_web.types) show as attributes once imported.
    public = {
        name
        for name, value in vars(trasgi_web).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == EXPECTED


def test_every_public_name_is_documented() -> None:
    for name in EXPECTED:
        assert getattr(trasgi_web, name).__doc__, name


def test_public_objects_live_in_private_modules() -> None:
    for name in EXPECTED:
        module = getattr(trasgi_web, name).__module__
        assert module.startswith("trasgi_web._"), (name, module)


def test_asgi_types_are_public_for_middleware_authors() -> None:
    from trasgi_web import types as asgi_types

    assert set(asgi_types.__all__) == {"ASGIApp", "Message", "Receive", "Scope", "Send"}
    assert asgi_types.Scope is trasgi_web._types.Scope


def test_cookie_helpers_round_trip() -> None:
    field = trasgi_web.format_set_cookie("sid", "abc", max_age=60, httponly=True)
    assert field == "sid=abc; Max-Age=60; Path=/; HttpOnly; SameSite=Lax"
    assert trasgi_web.parse_cookie_header(['sid=abc; theme="dark"', "sid=old"]) == {
        "sid": "abc",
        "theme": "dark",
    }


def test_package_is_typed() -> None:
    assert (pathlib.Path(trasgi_web.__file__).parent / "py.typed").exists()
