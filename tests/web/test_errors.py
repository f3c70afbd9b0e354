"""Exception handlers: by status, by class along the MRO, through groups."""

import logging
import sys
from typing import Any

import pytest
import trio

from trasgi.testing import open_client
from trasgi_web import App, HTTPException, JSONResponse, PlainTextResponse, Request

if sys.version_info >= (3, 11):
    from builtins import ExceptionGroup
else:  # pragma: no cover - trio depends on the backport before 3.11
    from exceptiongroup import ExceptionGroup  # type: ignore[import-not-found, unused-ignore]


class AppError(Exception):
    pass


class NotFoundError(AppError):
    pass


def failing_app(**options: Any) -> App:
    app = App(**options)

    @app.get("/http/{status:int}")
    async def http_error(request: Request, status: int) -> str:
        raise HTTPException(status, "custom detail", headers={"X-Why": "test"})

    @app.get("/lookup")
    async def lookup() -> str:
        raise NotFoundError("no such thing")

    @app.get("/crash")
    async def crash() -> str:
        raise RuntimeError("secret token 1234")

    @app.get("/group-http")
    async def group_http() -> str:
        async with trio.open_nursery() as nursery:

            async def fail() -> None:
                raise HTTPException(409, "conflict in a task")

            nursery.start_soon(fail)
        return "unreachable"

    @app.get("/group-mixed")
    async def group_mixed() -> str:
        async with trio.open_nursery() as nursery:

            async def conflict() -> None:
                raise HTTPException(409)

            async def bug() -> None:
                raise ZeroDivisionError

            nursery.start_soon(conflict)
            nursery.start_soon(bug)
        return "unreachable"

    return app


async def test_http_exception_default_answer() -> None:
    async with open_client(failing_app()) as client:
        response = await client.get("/http/418")
    assert response.status_code == 418
    assert response.text == "custom detail"
    assert response.headers["x-why"] == "test"


def test_http_exception_defaults_and_validation() -> None:
    assert HTTPException(404).detail == "Not Found"
    assert str(HTTPException(400, "bad")) == "400: bad"
    with pytest.raises(ValueError, match="100-599"):
        HTTPException(99)


async def test_handlers_by_status_and_by_class_along_the_mro() -> None:
    app = failing_app()

    @app.exception_handler(418)
    async def teapot(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"teapot": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> tuple[str, int]:
        return f"{type(exc).__name__}: {exc}", 404

    async with open_client(app) as client:
        teapot_response = await client.get("/http/418")
        other_status = await client.get("/http/400")
        by_class = await client.get("/lookup")
    assert teapot_response.json() == {"teapot": "custom detail"}
    assert other_status.text == "custom detail"
    assert (by_class.status_code, by_class.text) == (
        404,
        "NotFoundError: no such thing",
    )


async def test_the_default_500_page_leaks_nothing_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="trasgi_web"):
        async with open_client(failing_app()) as client:
            response = await client.get("/crash")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    assert "secret" not in response.text
    assert any("secret token 1234" in str(r.exc_info) for r in caplog.records)


async def test_debug_shows_the_traceback() -> None:
    async with open_client(failing_app(debug=True)) as client:
        response = await client.get("/crash")
    assert response.status_code == 500
    assert "Traceback" in response.text
    assert "RuntimeError: secret token 1234" in response.text


async def test_500_and_exception_handlers_replace_the_page() -> None:
    app = failing_app()

    @app.exception_handler(Exception)
    async def any_error(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse(f"oops: {type(exc).__name__}", 500)

    other = failing_app()

    @other.exception_handler(500)
    async def status_500(request: Request, exc: Exception) -> tuple[str, int]:
        return "status handler", 500

    async with open_client(app) as client:
        response = await client.get("/crash")
    async with open_client(other) as client:
        other_response = await client.get("/crash")
    assert response.text == "oops: RuntimeError"
    assert other_response.text == "status handler"


async def test_exception_groups_are_unwrapped_when_every_leaf_is_handled() -> None:
    async with open_client(failing_app()) as client:
        single = await client.get("/group-http")
        mixed = await client.get("/group-mixed")
    assert (single.status_code, single.text) == (409, "conflict in a task")
    # A bug beside a handled exception is not hidden behind the 409.
    assert mixed.status_code == 500


async def test_a_handler_for_the_group_class_wins() -> None:
    app = failing_app()

    @app.exception_handler(ExceptionGroup)
    async def group(
        request: Request, exc: ExceptionGroup[Exception]
    ) -> tuple[str, int]:
        return f"{len(exc.exceptions)} errors", 502

    async with open_client(app) as client:
        response = await client.get("/group-mixed")
    assert (response.status_code, response.text) == (502, "2 errors")


def test_invalid_handler_keys() -> None:
    app = App()

    async def handler(request: Request, exc: Exception) -> str:
        return ""

    with pytest.raises(TypeError, match="exception class or a status"):
        app.add_exception_handler("boom", handler)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="400-599"):
        app.add_exception_handler(200, handler)


async def test_error_after_the_response_started_aborts_the_response() -> None:
    from trasgi_web import StreamingResponse

    app = App()

    @app.get("/partial")
    async def partial() -> StreamingResponse:
        async def body() -> Any:
            yield b"start"
            raise RuntimeError("mid-stream")

        return StreamingResponse(body())

    import httpx

    async with open_client(app) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/partial")


class PassThrough:
    """Middleware that hands ``send`` on unchanged."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.mark.parametrize("middleware", [[], [PassThrough]])
async def test_a_handled_error_after_the_response_started_aborts_it(
    middleware: list[Any],
) -> None:
    # The inner error layer must see the start the response already sent,
    # whether or not it shares its record with the outer layer.
    import httpx

    from trasgi_web import StreamingResponse

    app = App()
    for cls in middleware:
        app.add_middleware(cls)
    answered: list[AppError] = []

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> str:
        answered.append(exc)
        return "handled"

    @app.get("/partial")
    async def partial() -> StreamingResponse:
        async def body() -> Any:
            yield b"start"
            raise AppError("mid-stream")

        return StreamingResponse(body())

    @app.get("/before")
    async def before() -> str:
        raise AppError("before the start")

    async with open_client(app) as client:
        handled = await client.get("/before")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/partial")
    assert handled.text == "handled"
    assert [str(exc) for exc in answered] == ["before the start"]
