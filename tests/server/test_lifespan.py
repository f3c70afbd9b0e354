"""The lifespan handshake, driven through the real server and client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio

from trasgi import Config, LifespanFailure
from trasgi._server.lifespan import lifespan
from trasgi.testing import open_client

from ..helpers import Receive, Send


def lifespan_app(
    *,
    startup: dict[str, Any] | Exception | None = None,
    shutdown: dict[str, Any] | Exception | None = None,
    events: list[str] | None = None,
) -> Any:
    """An app whose lifespan answers are given; HTTP answers with its state."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            for phase, answer in (("startup", startup), ("shutdown", shutdown)):
                message = await receive()
                assert message["type"] == f"lifespan.{phase}"
                if events is not None:
                    events.append(phase)
                if phase == "startup":
                    scope["state"]["greeting"] = "hi from startup"
                if isinstance(answer, Exception):
                    raise answer
                await send(answer or {"type": f"lifespan.{phase}.complete"})
            return
        body = scope["state"].get("greeting", "none").encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_startup_state_reaches_requests_and_shutdown_runs() -> None:
    events: list[str] = []
    async with open_client(lifespan_app(events=events)) as client:
        assert events == ["startup"]
        response = await client.get("/")
        assert response.text == "hi from startup"
    assert events == ["startup", "shutdown"]


async def test_startup_failed_message_raises_with_the_apps_message() -> None:
    app = lifespan_app(
        startup={"type": "lifespan.startup.failed", "message": "no database"}
    )
    with pytest.raises(LifespanFailure, match="startup failed: no database"):
        async with open_client(app):
            pytest.fail("the body must not run")


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_startup_failed_is_fatal_in_both_modes(mode: str) -> None:
    app = lifespan_app(startup={"type": "lifespan.startup.failed"})
    with pytest.raises(LifespanFailure, match="startup failed"):
        async with open_client(app, config=Config(lifespan=mode)):  # type: ignore[arg-type]
            pass


async def test_exception_in_startup_is_fatal_with_lifespan_on() -> None:
    app = lifespan_app(startup=RuntimeError("cannot connect"))
    with pytest.raises(LifespanFailure, match="RuntimeError: cannot connect"):
        async with open_client(app, config=Config(lifespan="on")):
            pass


async def plain_http_app(scope: Any, receive: Receive, send: Send) -> None:
    assert scope["type"] == "http", "only http here"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"plain"})


async def test_auto_mode_tolerates_an_app_without_lifespan(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.error")
    async with open_client(plain_http_app) as client:
        assert (await client.get("/")).text == "plain"
    assert any(
        "does not support the ASGI lifespan" in r.getMessage() for r in caplog.records
    )


async def test_on_mode_rejects_an_app_without_lifespan() -> None:
    with pytest.raises(LifespanFailure, match="AssertionError: only http here"):
        async with open_client(plain_http_app, config=Config(lifespan="on")):
            pass


async def test_on_mode_rejects_an_app_that_returns_without_answering() -> None:
    async def returns(scope: Any, receive: Receive, send: Send) -> None:
        return None

    with pytest.raises(LifespanFailure, match="returned without answering"):
        async with open_client(returns, config=Config(lifespan="on")):
            pass


async def test_off_mode_never_calls_the_app_for_lifespan() -> None:
    events: list[str] = []
    async with open_client(
        lifespan_app(events=events), config=Config(lifespan="off")
    ) as client:
        assert (await client.get("/")).text == "none"
    assert events == []


async def test_wrong_startup_answer_is_a_failure() -> None:
    app = lifespan_app(startup={"type": "lifespan.shutdown.complete"})
    with pytest.raises(
        LifespanFailure, match=r"'lifespan\.shutdown\.complete' during lifespan startup"
    ):
        async with open_client(app):
            pass


@pytest.mark.parametrize(
    ("shutdown", "words"),
    [
        (
            {"type": "lifespan.shutdown.failed", "message": "flush failed"},
            "shutdown failed: flush failed",
        ),
        (RuntimeError("crash"), "lifespan shutdown failed: RuntimeError: crash"),
    ],
)
async def test_failed_shutdown_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, shutdown: Any, words: str
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.error")
    async with open_client(lifespan_app(shutdown=shutdown)):
        pass
    assert any(
        words in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR
    )


async def test_cancellation_skips_shutdown() -> None:
    events: list[str] = []
    with trio.CancelScope() as scope:
        async with lifespan(lifespan_app(events=events), "on", {}):
            scope.cancel()
            await trio.sleep_forever()
    assert events == ["startup"]
