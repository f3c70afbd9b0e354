"""Dependencies: providers of every kind, caching, cleanup order and lifetimes."""

import logging
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, NoReturn

import pytest
import trio
import trio.testing

from trasgi.testing import WebSocketDenied, open_client, open_connection, open_websocket
from trasgi_web import (
    App,
    Depends,
    FromState,
    Header,
    HTTPException,
    Query,
    Request,
    WebSocket,
)


class Events(list[str]):
    """What happened, in order; a test can wait for an entry."""

    def __init__(self) -> None:
        super().__init__()
        self._waiters: dict[str, trio.Event] = {}

    def append(self, item: str) -> None:
        super().append(item)
        # Waited-for entries come from trio tasks, never from threads.
        if item in self._waiters:
            self._waiters[item].set()

    async def wait_for(self, item: str) -> None:
        if item not in self:
            await self._waiters.setdefault(item, trio.Event()).wait()


class Database:
    def __init__(self, name: str) -> None:
        self.name = name


def lifespan_app(events: Events) -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[Mapping[str, Any]]:
        yield {"db": Database("main"), "count": 3}

    app = App(lifespan=lifespan)

    def plain(request: Request) -> str:
        events.append(
            f"plain in {threading.current_thread() is threading.main_thread()}"
        )
        return request.path

    async def coroutine(limit: int = 1) -> int:
        events.append("coroutine")
        return limit * 10

    async def session(base: Annotated[int, Depends(coroutine)]) -> AsyncIterator[str]:
        events.append("session open")
        try:
            yield f"session {base}"
        except Exception as exc:
            events.append(f"session saw {type(exc).__name__}")
            raise
        finally:
            events.append("session closed")

    def transaction(
        current: Annotated[str, Depends(session)],
    ) -> Iterator[str]:
        events.append("transaction open")
        yield f"tx in {current}"
        events.append("transaction closed")

    @app.get("/deps")
    async def deps(
        path: Annotated[str, Depends(plain)],
        tx: Annotated[str, Depends(transaction)],
        same: Annotated[str, Depends(session)],
        db: Annotated[Database, FromState()],
        count: Annotated[int, FromState()],
    ) -> dict[str, Any]:
        events.append("handler")
        return {"path": path, "tx": tx, "same": same, "db": db.name, "count": count}

    @app.get("/fails")
    async def fails(tx: Annotated[str, Depends(transaction)]) -> str:
        events.append("handler")
        raise HTTPException(418, "teapot")

    @app.get("/slow")
    async def slow(tx: Annotated[str, Depends(session)]) -> NoReturn:
        events.append("handler waits")
        await trio.sleep_forever()

    return app


async def test_providers_of_every_kind_cached_and_cleaned_up_in_reverse() -> None:
    events = Events()
    async with open_client(lifespan_app(events)) as client:
        response = await client.get("/deps?limit=2")
    assert response.json() == {
        "path": "/deps",
        "tx": "tx in session 20",
        "same": "session 20",
        "db": "main",
        "count": 3,
    }
    assert events == [
        "plain in False",
        "coroutine",
        "session open",
        "transaction open",
        "handler",
        "transaction closed",
        "session closed",
    ]


async def test_provider_parameters_are_validated_with_the_handler() -> None:
    events = Events()
    async with open_client(lifespan_app(events)) as client:
        response = await client.get("/deps?limit=x")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "loc": ["query", "limit"],
                "msg": "Expected `int`, got `str`",
                "type": "type_error",
            }
        ]
    }
    assert events == []  # nothing called before everything is valid


async def test_a_failing_handler_is_thrown_into_the_providers() -> None:
    events = Events()
    async with open_client(lifespan_app(events)) as client:
        response = await client.get("/fails")
    assert (response.status_code, response.text) == (418, "teapot")
    assert events == [
        "coroutine",
        "session open",
        "transaction open",
        "handler",
        "session saw HTTPException",
        "session closed",
    ]


async def test_cleanup_runs_when_the_client_leaves_mid_handler() -> None:
    events = Events()
    app = lifespan_app(events)
    async with open_connection(app) as connection:
        await connection.send_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await events.wait_for("handler waits")
        await connection.aclose()
    with trio.fail_after(5):
        await events.wait_for("session closed")
    assert events == ["coroutine", "session open", "handler waits", "session closed"]


async def test_cleanup_errors_are_not_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    async def broken() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("cleanup failed")

    @app.get("/")
    async def handler(value: Annotated[int, Depends(broken)]) -> dict[str, int]:
        return {"value": value}

    with caplog.at_level(logging.ERROR):
        async with open_client(app) as client:
            response = await client.get("/")
    # The answer was sent before the cleanup failed; the failure is logged.
    assert response.json() == {"value": 1}
    assert any("cleanup failed" in str(r.exc_info) for r in caplog.records)


async def test_a_provider_that_swallows_the_error_does_not_hide_it() -> None:
    app = App()
    seen: list[str] = []

    async def swallowing() -> AsyncIterator[int]:
        try:
            yield 1
        except HTTPException as exc:
            seen.append(exc.detail)

    @app.get("/")
    async def handler(value: Annotated[int, Depends(swallowing)]) -> str:
        raise HTTPException(404, "gone")

    async with open_client(app) as client:
        response = await client.get("/")
    assert (response.status_code, seen) == (404, ["gone"])


async def test_a_provider_can_refuse_the_request() -> None:
    app = App()

    async def user(authorization: Annotated[str | None, Header()] = None) -> str:
        if authorization != "Bearer good":
            raise HTTPException(401, "Not authenticated")
        return "ann"

    @app.get("/me")
    async def me(name: Annotated[str, Depends(user)]) -> dict[str, str]:
        return {"name": name}

    async with open_client(app) as client:
        refused = await client.get("/me")
        accepted = await client.get("/me", headers={"Authorization": "Bearer good"})
    assert (refused.status_code, refused.text) == (401, "Not authenticated")
    assert accepted.json() == {"name": "ann"}


async def test_use_cache_false_calls_again() -> None:
    app = App()
    calls: list[int] = []

    async def counter() -> int:
        calls.append(1)
        return len(calls)

    @app.get("/")
    async def handler(
        a: Annotated[int, Depends(counter)],
        b: Annotated[int, Depends(counter, use_cache=False)],
    ) -> list[int]:
        return [a, b]

    async with open_client(app) as client:
        response = await client.get("/")
    assert response.json() == [1, 2]


async def test_state_values_are_checked(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.state.db = "not a database"

    @app.get("/")
    async def handler(db: Annotated[Database, FromState()]) -> str:
        return db.name  # pragma: no cover

    @app.get("/missing")
    async def missing(other: Annotated[Database, FromState("nowhere")]) -> str:
        return other.name  # pragma: no cover

    with caplog.at_level(logging.ERROR, logger="trasgi_web"):
        async with open_client(app) as client:
            wrong = await client.get("/")
            missing_key = await client.get("/missing")
    assert wrong.status_code == missing_key.status_code == 500
    logged = [str(record.exc_info) for record in caplog.records]
    assert any("lifespan state's 'db' is a str, not a Database" in x for x in logged)
    assert any("the lifespan state has no 'nowhere'" in x for x in logged)


async def test_sync_handlers_run_in_threads_under_the_limiter() -> None:
    app = App(max_threads=2)
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()
    both_running = threading.Event()

    @app.get("/block")
    def block() -> dict[str, bool]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                both_running.set()
        release.wait(5)
        with lock:
            running -= 1
        return {"main": threading.current_thread() is threading.main_thread()}

    results: list[Any] = []
    async with open_client(app) as client:

        async def call() -> None:
            results.append((await client.get("/block")).json())

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            assert app.thread_limiter.borrowed_tokens == 2
            assert await trio.to_thread.run_sync(both_running.wait, 5)
            # Two run, two wait for a token.
            assert app.thread_limiter.statistics().tasks_waiting == 2
            release.set()
    assert results == [{"main": False}] * 4
    assert most == 2


async def test_generator_providers_in_a_websocket() -> None:
    app = App()
    events = Events()

    async def resource() -> AsyncIterator[str]:
        events.append("open")
        yield "r"
        events.append("close")

    @app.websocket("/ws")
    async def ws(websocket: Any, value: Annotated[str, Depends(resource)]) -> None:
        await websocket.accept()
        await websocket.send_text(value)

    async with open_websocket(app, "/ws") as websocket:
        assert await websocket.receive_text() == "r"
    with trio.fail_after(5):
        await events.wait_for("close")
    assert events == ["open", "close"]


async def test_typed_websocket_parameters() -> None:
    app = App()

    @app.websocket("/room/{room}")
    async def room(websocket: WebSocket, room: str, limit: int = 10) -> None:
        await websocket.accept()
        await websocket.send_text(f"{room}:{limit}")

    async with open_websocket(app, "/room/a?limit=3") as websocket:
        assert await websocket.receive_text() == "a:3"
    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(app, "/room/a?limit=x"):
            pass  # pragma: no cover
    assert denied.value.status_code == 403


async def test_depends_without_a_provider_uses_the_annotated_class() -> None:
    app = App()

    class Pager:
        def __init__(
            self, page: int = 1, size: Annotated[int, Query(le=50)] = 10
        ) -> None:
            self.page = page
            self.size = size

    @app.get("/list")
    async def listing(pager: Annotated[Pager, Depends()]) -> dict[str, int]:
        return {"page": pager.page, "size": pager.size}

    async with open_client(app) as client:
        ok = await client.get("/list?page=3")
        invalid = await client.get("/list?size=99")
    assert ok.json() == {"page": 3, "size": 10}
    assert invalid.json() == {
        "detail": [
            {
                "loc": ["query", "size"],
                "msg": "Expected `int` <= 50",
                "type": "value_error",
            }
        ]
    }
    with pytest.raises(
        TypeError, match="Depends\\(\\) without a provider needs a class"
    ):

        @app.get("/bad")
        async def bad(value: Annotated[int | None, Depends()]) -> None: ...
