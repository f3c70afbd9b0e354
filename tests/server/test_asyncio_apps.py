"""Applications that need asyncio: a 500 each time, the hint once per process."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from trasgi._io import asyncio_apps
from trasgi.testing import WebSocketClosed, open_client, open_websocket

from ..helpers import Receive, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]


@pytest.fixture(autouse=True)
def hint_not_yet_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test is a fresh process as far as the hint is concerned."""
    monkeypatch.setattr(asyncio_apps._Hint, "given", False)


def hints(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == asyncio_apps.HINT]


def app_doing(
    work: Callable[[], Awaitable[Any]],
) -> Callable[[Any, Receive, Send], Awaitable[None]]:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan")
        await work()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def get_running_loop() -> None:
    asyncio.get_running_loop()


async def sleep_zero() -> None:
    await asyncio.sleep(0)  # trio: "unrecognized yield message None"


async def sleep_a_while() -> None:
    await asyncio.sleep(0.01)  # no running event loop


async def create_task() -> None:
    coroutine = asyncio.sleep(0)
    try:
        task = asyncio.create_task(coroutine)  # no running event loop
        task.cancel()
    finally:
        coroutine.close()


@pytest.mark.parametrize(
    "work", [get_running_loop, sleep_zero, sleep_a_while, create_task]
)
async def test_the_hint_is_logged_once_for_many_failing_requests(
    work: Callable[[], Awaitable[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    async with open_client(app_doing(work)) as client:
        statuses = [(await client.get("/")).status_code for _ in range(3)]
    assert statuses == [500, 500, 500]
    assert len(hints(caplog)) == 1
    assert hints(caplog)[0].name == "trasgi.error"
    # Each failure is still logged with its traceback, as any other.
    assert len([r for r in caplog.records if r.exc_info]) == 3


async def test_other_failures_give_no_hint(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise RuntimeError("database is down")

    async with open_client(app_doing(fail)) as client:
        assert (await client.get("/")).status_code == 500
    assert hints(caplog) == []


async def test_a_cause_deep_in_a_chain_or_group_is_recognised() -> None:
    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError as exc:
            raise ValueError("while connecting") from exc
    except ValueError as exc:
        chained = exc
    assert asyncio_apps.needs_asyncio(chained)
    assert asyncio_apps.needs_asyncio(BaseExceptionGroup("many", [KeyError(), chained]))
    assert not asyncio_apps.needs_asyncio(ValueError("no running event"))


async def test_a_websocket_app_needing_asyncio_gets_the_hint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        asyncio.get_running_loop()

    async with open_websocket(app, "/") as ws:
        with pytest.raises(WebSocketClosed) as closed:
            await ws.receive()
    assert closed.value.code == 1011
    assert len(hints(caplog)) == 1
