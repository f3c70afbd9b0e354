"""--interface: ASGI 3, ASGI 2 and WSGI applications, told apart or named."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import trio

import trasgi
from trasgi import Config
from trasgi._errors import AppLoadError
from trasgi._server.interfaces import ASGI2App, Interface, as_asgi3, detect
from trasgi._server.wsgi import WSGIApp
from trasgi.testing import open_client

from ..helpers import Receive, Send
from ..ops.test_cli import run_cli


async def asgi3_function(scope: Any, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi3"})


class ASGI3Instance:
    async def __call__(self, scope: Any, receive: Receive, send: Send) -> None:
        await asgi3_function(scope, receive, send)


class ASGI2Class:
    """A double callable: constructed with the scope, then awaited."""

    def __init__(self, scope: Any) -> None:
        self.scope = scope

    async def __call__(self, receive: Receive, send: Send) -> None:
        if self.scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {
                "type": "http.response.body",
                "body": b"asgi2 " + self.scope["path"].encode(),
            }
        )


def wsgi_function(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b"wsgi"]


class WSGIInstance:
    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return wsgi_function(environ, start_response)


def takes_anything(*args: Any) -> Any:
    raise AssertionError("never called")


async def async_two(receive: Any, send: Any) -> None:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("app", "kind"),
    [
        (asgi3_function, Interface.ASGI3),
        (ASGI3Instance(), Interface.ASGI3),
        (functools.partial(asgi3_function), Interface.ASGI3),
        (ASGI2Class, Interface.ASGI2),
        (wsgi_function, Interface.WSGI),
        (WSGIInstance(), Interface.WSGI),
        (max, Interface.ASGI3),  # no signature to read: as before --interface
    ],
)
def test_auto_tells_the_kind_from_the_signature(app: Any, kind: Interface) -> None:
    assert detect(app) is kind


def test_real_frameworks_are_told_apart() -> None:
    import flask
    import starlette.applications

    assert isinstance(as_asgi3(flask.Flask("x")), WSGIApp)
    starlette_app = starlette.applications.Starlette()
    assert as_asgi3(starlette_app) is starlette_app


@pytest.mark.parametrize(
    ("app", "says"),
    [
        (
            takes_anything,
            "takes_anything(*args: 'Any') -> 'Any' speaks (it fits both ASGI 3 and WSGI)",
        ),
        (
            async_two,
            "async_two(receive: 'Any', send: 'Any') -> 'None' speaks (it fits no interface)",
        ),
    ],
)
def test_an_ambiguous_signature_is_refused_naming_the_option(
    app: Any, says: str
) -> None:
    with pytest.raises(AppLoadError) as refused:
        as_asgi3(app)
    message = str(refused.value)
    assert says in message
    assert message.endswith("pass --interface asgi3, asgi2 or wsgi")
    assert "\n" not in message


def test_an_explicit_interface_is_obeyed_and_adapters_are_not_wrapped_twice() -> None:
    assert isinstance(as_asgi3(takes_anything, "wsgi"), WSGIApp)
    assert as_asgi3(takes_anything, "asgi3") is takes_anything
    adapted = as_asgi3(ASGI2Class, "asgi2")
    assert isinstance(adapted, ASGI2App)
    assert as_asgi3(adapted, "wsgi") is adapted


def asgi2_factory(scope: Any) -> ASGI2Class:
    """An ASGI 2 application as a function: its signature fits no kind."""
    return ASGI2Class(scope)


@pytest.mark.parametrize(
    ("app", "chosen", "says"),
    [
        (wsgi_function, "asgi3", "is called as wsgi; pass --interface wsgi"),
        (WSGIInstance(), "asgi2", "is called as wsgi; pass --interface wsgi"),
        (asgi3_function, "wsgi", "is called as asgi3; pass --interface asgi3"),
        (ASGI2Class, "asgi3", "is called as asgi2; pass --interface asgi2"),
    ],
)
def test_an_interface_the_signature_contradicts_is_refused(
    app: Any, chosen: str, says: str
) -> None:
    with pytest.raises(AppLoadError) as refused:
        as_asgi3(app, chosen)
    message = str(refused.value)
    assert message.startswith(f"--interface {chosen}, but ")
    assert message.endswith(f"{says} (or auto)")
    assert "\n" not in message


def test_a_signature_that_fits_nothing_trusts_the_chosen_interface() -> None:
    assert isinstance(as_asgi3(asgi2_factory, "asgi2"), ASGI2App)
    assert as_asgi3(max, "asgi3") is max  # no signature at all


async def test_an_asgi2_class_is_served() -> None:
    async with open_client(
        cast(Any, ASGI2Class), config=Config(interface="asgi2")
    ) as client:
        response = await client.get("/two")
    assert response.text == "asgi2 /two"


def test_the_interface_option_is_checked() -> None:
    with pytest.raises(
        ValueError, match="interface must be one of auto, asgi3, asgi2, wsgi"
    ):
        Config(interface="asgi4")  # type: ignore[arg-type]


async def test_serve_tcp_applies_the_interface_on_a_socket() -> None:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(
                trasgi.serve_tcp,
                cast(Any, wsgi_function),
                0,
                host="127.0.0.1",
                config=Config(interface="wsgi"),
            )
        )
        port = listeners[0].socket.getsockname()[1]
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/")
        nursery.cancel_scope.cancel()
    assert response.text == "wsgi"


async def test_serve_tcp_refuses_an_ambiguous_app_and_closes_its_listener() -> None:
    with pytest.raises(AppLoadError, match="--interface"):
        await trasgi.serve_tcp(takes_anything, 0, host="127.0.0.1")


@pytest.mark.process
@pytest.mark.parametrize("processes", [(), ("--workers", "1")])
def test_the_command_line_refuses_an_ambiguous_app_in_one_line(
    tmp_path: Path, processes: tuple[str, ...]
) -> None:
    (tmp_path / "vague.py").write_text("def app(*args):\n    pass\n")
    result = run_cli("vague:app", "--port", "0", *processes, cwd=tmp_path)
    assert result.returncode == 1
    expected = (
        "cannot load the application: cannot tell which interface app(*args) speaks "
        "(it fits both ASGI 3 and WSGI); pass --interface asgi3, asgi2 or wsgi"
    )
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.process
@pytest.mark.parametrize("processes", [(), ("--workers", "1")])
def test_the_command_line_refuses_a_wsgi_app_run_as_asgi3_in_one_line(
    processes: tuple[str, ...],
) -> None:
    result = run_cli(
        "examples.wsgi_flask:app", "--interface", "asgi3", "--port", "0", *processes
    )
    assert result.returncode == 1
    assert "cannot load the application: --interface asgi3, but Flask" in result.stderr
    assert "pass --interface wsgi (or auto)" in result.stderr
    assert "Traceback" not in result.stderr


class AwaitableClass:
    """An ASGI 3 application as a class: constructed with all three, awaited."""

    def __init__(self, scope: Any, receive: Receive, send: Send) -> None:
        self.args = (scope, receive, send)

    def __await__(self) -> Any:
        return asgi3_function(*self.args).__await__()


class SyncCallClass:
    def __init__(self, scope: Any) -> None:
        pass

    def __call__(self, receive: Any, send: Any) -> None:
        pass


async def test_an_awaitable_class_is_asgi3_and_a_sync_class_is_refused() -> None:
    assert detect(AwaitableClass) is Interface.ASGI3
    async with open_client(AwaitableClass) as client:
        assert (await client.get("/")).text == "asgi3"
    with pytest.raises(AppLoadError, match="fits no interface"):
        detect(SyncCallClass)
