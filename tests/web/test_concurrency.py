"""Per-route deadlines and handlers cancelled when their client leaves."""

import contextvars
import functools
import inspect
import logging
import sys
import types
from collections.abc import AsyncIterator, Generator
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from trasgi.testing import open_client, open_connection
from trasgi_web import App, PlainTextResponse, Request, _endpoints
from trasgi_web._concurrency import _on_first_wait, run_beside_once_waiting
from trasgi_web._endpoints import cannot_wait, finish_at_once
from trasgi_web._types import ASGIApp, Message, Receive, Scope, Send


async def test_route_deadline_answers_504(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = App()
    cancelled = trio.Event()

    @app.get("/slow", timeout=3)
    async def slow() -> str:
        try:
            await trio.sleep(60)
        finally:
            cancelled.set()
        return "late"  # pragma: no cover

    @app.get("/fast", timeout=3)
    async def fast() -> str:
        await trio.sleep(2)
        return "in time"

    async with open_client(app) as client:
        start = trio.current_time()
        response = await client.get("/slow")
        elapsed = trio.current_time() - start
        fast_response = await client.get("/fast")
    assert response.status_code == 504
    assert response.text == "The handler did not answer within 3 s"
    assert elapsed == pytest.approx(3, abs=0.1)
    assert cancelled.is_set()
    assert fast_response.text == "in time"


async def test_app_wide_deadline_and_per_route_override(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = App(timeout=1)

    @app.get("/default")
    async def default() -> str:
        await trio.sleep(2)
        return "late"  # pragma: no cover

    @app.get("/patient", timeout=None)
    async def patient() -> str:
        await trio.sleep(2)
        return "done"

    async with open_client(app) as client:
        assert (await client.get("/default")).status_code == 504
        assert (await client.get("/patient")).text == "done"


def slow_app(
    record: dict[str, str],
    cancel_on_disconnect: bool = True,
    timeout: float | None = None,
) -> App:
    app = App()

    @app.route(
        "/slow",
        methods=["GET", "POST"],
        cancel_on_disconnect=cancel_on_disconnect,
        timeout=timeout,
    )
    async def slow(request: Request) -> str:
        await request.body()
        record["state"] = "started"
        try:
            await trio.sleep(2)
        except trio.Cancelled:
            record["state"] = "cancelled"
            raise
        record["state"] = "finished"
        return "done"

    return app


async def leave_during(app: App, request: bytes) -> None:
    async with open_connection(app) as stream:
        await stream.send_all(request)
        await trio.sleep(0.5)
        await stream.aclose()
        await trio.sleep(5)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
    ],
)
async def test_handler_is_cancelled_when_the_client_leaves_quietly(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
) -> None:
    record: dict[str, str] = {}
    with caplog.at_level(logging.DEBUG, logger="trasgi_web"):
        await leave_during(slow_app(record), request_bytes)
    assert record["state"] == "cancelled"
    assert [r for r in caplog.records if r.name == "trasgi_web"] == []


async def test_cancel_on_disconnect_can_be_turned_off(
    autojump_clock: trio.testing.MockClock,
) -> None:
    record: dict[str, str] = {}
    await leave_during(
        slow_app(record, cancel_on_disconnect=False),
        b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    assert record["state"] == "finished"


async def test_a_client_leaving_before_the_deadline_is_not_answered_504(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The deadline and the watcher share one scope: its cancellation must
    # be told apart, a departure ends quietly.
    record: dict[str, str] = {}
    with caplog.at_level(logging.DEBUG):
        await leave_during(
            slow_app(record, timeout=1), b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
        )
    assert record["state"] == "cancelled"
    assert [r for r in caplog.records if r.name == "trasgi_web"] == []
    assert "504" not in caplog.text


@pytest.mark.parametrize("cancel_on_disconnect", [True, False])
async def test_the_deadline_cancels_with_or_without_the_watcher(
    autojump_clock: trio.testing.MockClock, cancel_on_disconnect: bool
) -> None:
    record: dict[str, str] = {}
    app = slow_app(record, cancel_on_disconnect=cancel_on_disconnect, timeout=1)
    async with open_client(app) as client:
        response = await client.get("/slow")
    assert (response.status_code, record["state"]) == (504, "cancelled")
    assert response.text == "The handler did not answer within 1 s"


async def test_scopes_and_nurseries_in_a_handler_nest_in_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    app = App(timeout=3)

    @app.get("/inner")
    async def inner() -> str:
        with trio.move_on_after(1) as inner_scope:
            await trio.sleep(2)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 1)
        return f"inner deadline caught: {inner_scope.cancelled_caught}"

    @app.get("/outer")
    async def outer() -> str:
        with trio.move_on_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
        return "unreachable"  # pragma: no cover

    async with open_client(app) as client:
        inner_response = await client.get("/inner")
        outer_response = await client.get("/outer")
    assert inner_response.text == "inner deadline caught: True"
    assert outer_response.status_code == 504


async def test_a_handler_reading_the_body_still_gets_it_all() -> None:
    app = App()

    @app.post("/upload")
    async def upload(request: Request) -> str:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            await trio.lowlevel.checkpoint()
        return str(total)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"y" * 10_000
            await trio.lowlevel.checkpoint()

    async with open_client(app) as client:
        responses = [await client.post("/upload", content=body()) for _ in range(3)]
    assert [r.text for r in responses] == ["200000"] * 3


async def test_keep_alive_requests_after_a_watched_request() -> None:
    app = App()

    @app.get("/n/{n:int}")
    async def number(request: Request, n: int) -> str:
        await trio.to_thread.run_sync(lambda: None)
        return str(n)

    async with open_client(app) as client:
        texts = [(await client.get(f"/n/{n}")).text for n in range(50)]
    assert texts == [str(n) for n in range(50)]


class CountSpawns(trio.abc.Instrument):
    """Counts the tasks trio spawns while installed."""

    def __init__(self) -> None:
        self.spawned = 0

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.spawned += 1


def waiting_and_not_waiting_app() -> App:
    app = App()
    for watched in (True, False):
        prefix = "/watched" if watched else "/unwatched"

        @app.get(prefix + "/at-once", cancel_on_disconnect=watched)
        async def at_once() -> str:
            return "answered without waiting"

        @app.get(prefix + "/waits", cancel_on_disconnect=watched)
        async def waits() -> str:
            await trio.sleep(1)
            return "answered after waiting"

    return app


async def test_the_disconnect_watcher_starts_only_when_the_handler_waits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    spawns: dict[str, int] = {}
    async with open_client(waiting_and_not_waiting_app()) as client:
        # The connection's own tasks are spawned by the first request.
        assert (await client.get("/unwatched/at-once")).status_code == 200
        for path in ("/at-once", "/waits"):
            for prefix in ("/watched", "/unwatched"):
                counter = CountSpawns()
                trio.lowlevel.add_instrument(counter)
                try:
                    assert (await client.get(prefix + path)).status_code == 200
                finally:
                    trio.lowlevel.remove_instrument(counter)
                spawns[prefix + path] = counter.spawned
    # A handler that answers without waiting cannot be cancelled: it gets no
    # watcher task; one that waits gets exactly one.
    assert spawns["/watched/at-once"] == spawns["/unwatched/at-once"]
    assert spawns["/watched/waits"] == spawns["/unwatched/waits"] + 1


def scoped_slow_app(record: dict[str, str]) -> App:
    """Handlers whose first wait is inside a cancel scope they (or the route) open."""
    app = App()

    async def sleep_recording() -> None:
        record["state"] = "started"
        try:
            await trio.sleep(2)
        except trio.Cancelled:
            record["state"] = "cancelled"
            raise
        record["state"] = "finished"  # pragma: no cover

    @app.get("/own-scope")
    async def own_scope() -> str:
        with trio.CancelScope():
            await sleep_recording()
        return "done"  # pragma: no cover

    @app.get("/route-deadline", timeout=10)
    async def route_deadline() -> str:
        await sleep_recording()
        return "done"  # pragma: no cover

    return app


@pytest.mark.parametrize("path", ["/own-scope", "/route-deadline"])
async def test_a_handler_waiting_inside_a_cancel_scope_is_cancelled_on_leaving(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
    path: str,
) -> None:
    record: dict[str, str] = {}
    with caplog.at_level(logging.DEBUG):
        await leave_during(
            scoped_slow_app(record), f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
        )
    assert record["state"] == "cancelled"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_handler_failing_before_and_after_waiting_reaches_its_handlers() -> (
    None
):
    app = App()

    class Refused(Exception):
        pass

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> PlainTextResponse:
        return PlainTextResponse(str(exc), status_code=409)

    @app.get("/before")
    async def before() -> str:
        raise Refused("before waiting")

    @app.get("/after")
    async def after() -> str:
        await trio.lowlevel.checkpoint()
        raise Refused("after waiting")

    async with open_client(app) as client:
        responses = [await client.get(path) for path in ("/before", "/after")]
    assert [(r.status_code, r.text) for r in responses] == [
        (409, "before waiting"),
        (409, "after waiting"),
    ]


class Unwanted(Exception):
    pass


@types.coroutine
def yield_once(value: str) -> Generator[str, str, str]:
    answer = yield value
    return answer


async def two_waits(seen: list[str]) -> str:
    try:
        seen.append(await yield_once("first"))
        seen.append(await yield_once("second"))
    except Unwanted:
        seen.append("caught")
        return "recovered"
    finally:
        seen.append("finally")
    return "done"


def test_on_first_wait_passes_waits_and_answers_through_like_await() -> None:
    seen: list[str] = []
    started: list[str] = []
    stepper = _on_first_wait(two_waits(seen), lambda: started.append("helper"))
    assert stepper.send(None) == "first"
    assert started == ["helper"]
    assert stepper.send("answer 1") == "second"
    with pytest.raises(StopIteration) as stop:
        stepper.send("answer 2")
    assert stop.value.value == "done"
    assert seen == ["answer 1", "answer 2", "finally"]
    assert started == ["helper"]


def test_on_first_wait_passes_a_thrown_exception_down() -> None:
    seen: list[str] = []
    stepper = _on_first_wait(two_waits(seen), lambda: None)
    stepper.send(None)
    with pytest.raises(StopIteration) as stop:
        stepper.throw(Unwanted())
    assert stop.value.value == "recovered"
    assert seen == ["caught", "finally"]


def test_closing_on_first_wait_closes_the_coroutine() -> None:
    seen: list[str] = []
    stepper = _on_first_wait(two_waits(seen), lambda: None)
    stepper.send(None)
    stepper.close()
    assert seen == ["finally"]


def test_on_first_wait_without_a_wait_calls_nothing() -> None:
    started: list[str] = []

    async def immediate() -> str:
        return "now"

    stepper = _on_first_wait(immediate(), lambda: started.append("helper"))
    with pytest.raises(StopIteration) as stop:
        stepper.send(None)
    assert stop.value.value == "now"
    assert started == []


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("REQUEST_ID")


class Observe:
    """Records what the framework does with receive(), and when, for a request."""

    def __init__(self, app: ASGIApp, *, log: list[str], fail: bool = False) -> None:
        self.app = app
        self.log = log
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        REQUEST_ID.set(scope["path"])

        async def observed_receive() -> Message:
            self.log.append(f"receive in context of {REQUEST_ID.get('nothing')}")
            try:
                if self.fail:
                    raise Broken("receive failed")
                return await receive()
            finally:
                self.log.append("receive left")

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.log.append("response started")
            await send(message)

        await self.app(scope, observed_receive, observed_send)


class Broken(Exception):
    pass


def observed_app(log: list[str], *, fail: bool = False) -> App:
    app = App()
    app.add_middleware(Observe, log=log, fail=fail)

    @app.exception_handler(Broken)
    async def broken(request: Request, exc: Broken) -> tuple[str, int]:
        return str(exc), 502

    @app.get("/waits")
    async def waits() -> str:
        try:
            await trio.sleep(1)
        except trio.Cancelled:
            log.append("handler cancelled")
            raise
        log.append("handler returned")
        return "done"

    return app


async def test_the_watcher_runs_in_the_request_context_and_ends_before_the_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_client(observed_app(log)) as client:
        assert (await client.get("/waits")).text == "done"
    # Started at the handler's first wait, the watcher sees the context the
    # request runs in, and is gone before the response starts.
    assert log[0] == "receive in context of /waits"
    assert log.index("handler returned") < log.index("response started")
    assert log.count("receive left") == log.count("receive in context of /waits")
    last_left = len(log) - 1 - log[::-1].index("receive left")
    assert last_left < log.index("response started")


async def test_a_failing_watcher_cancels_the_handler_and_reaches_the_handlers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_client(observed_app(log, fail=True)) as client:
        response = await client.get("/waits")
    assert (response.status_code, response.text) == (502, "receive failed")
    assert "handler cancelled" in log
    assert "handler returned" not in log


async def test_a_cancellation_from_outside_still_waits_for_the_helper() -> None:
    events: list[str] = []

    async def main() -> None:
        await trio.sleep_forever()

    async def helper(scope: trio.CancelScope) -> None:
        try:
            await trio.sleep_forever()
        finally:
            events.append("helper ended")

    with trio.move_on_after(0.01) as outside:
        await run_beside_once_waiting(main, helper)
    events.append("call returned")
    assert outside.cancelled_caught
    assert events == ["helper ended", "call returned"]


async def test_the_first_failure_of_main_and_helper_is_raised() -> None:
    async def main() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Unwanted("main, after the helper")

    async def helper(scope: trio.CancelScope) -> None:
        await trio.lowlevel.checkpoint()
        raise Broken("helper first")

    with pytest.raises(Broken, match="helper first"):
        await run_beside_once_waiting(main, helper)


async def never_awaits() -> str:
    return "at once"


async def awaits() -> None:
    await trio.lowlevel.checkpoint()


async def iterates(items: AsyncIterator[int]) -> None:
    async for _ in items:
        pass  # pragma: no cover


async def enters(manager: Any) -> None:
    async with manager:
        pass  # pragma: no cover


async def comprehends(items: AsyncIterator[int]) -> list[int]:
    return [item async for item in items]


async def sync_generator_inside(items: list[int]) -> int:
    return sum(item for item in items)


class CallableHandler:
    async def __call__(self) -> str:
        return "at once"

    async def method(self) -> str:
        return "at once"


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        (never_awaits, True),
        (sync_generator_inside, True),
        (awaits, False),
        (iterates, False),
        (enters, False),
        (comprehends, False),
        # Judged as able to wait, whatever they do: only plain functions
        # are read.
        (functools.partial(never_awaits), False),
        (CallableHandler(), False),
        (CallableHandler().method, False),
    ],
)
def test_cannot_wait_reads_the_handler_code(func: Any, expected: bool) -> None:
    assert cannot_wait(func) is expected


def test_no_handler_is_judged_on_an_interpreter_not_understood(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_endpoints, "_CAN_JUDGE", False)
    assert not cannot_wait(never_awaits)


def test_finish_at_once_gives_the_result_or_refuses_a_wait() -> None:
    assert finish_at_once(never_awaits()) == "at once"
    seen: list[str] = []
    with pytest.raises(RuntimeError, match="waited, though its code has no await"):
        finish_at_once(two_waits(seen))
    assert seen == ["finally"]  # closed, not left to the garbage collector


async def test_a_handler_that_cannot_wait_answers_even_past_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Cancellation only reaches a waiting task: a handler that cannot wait
    # is answered as it would be in a scope whose deadline passed unseen.
    app = App(timeout=1)

    @app.get("/busy")
    async def busy() -> str:
        autojump_clock.jump(2)  # time passes in sync code
        return "answered"

    @app.get("/busy-then-waits")
    async def busy_then_waits() -> str:
        autojump_clock.jump(2)
        await trio.lowlevel.checkpoint()
        return "unreachable"  # pragma: no cover

    async with open_client(app) as client:
        busy_response = await client.get("/busy")
        waiting_response = await client.get("/busy-then-waits")
    assert (busy_response.status_code, busy_response.text) == (200, "answered")
    assert waiting_response.status_code == 504


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is 3.12+"
)
async def test_a_sync_function_marked_as_a_coroutine_function_is_awaited() -> None:
    def marked() -> AwaitsThenAnswers:
        return AwaitsThenAnswers()

    app = App()
    app.add_route(
        "/marked",
        inspect.markcoroutinefunction(marked),  # type: ignore[attr-defined, unused-ignore]
    )
    async with open_client(app) as client:
        response = await client.get("/marked")
    assert response.text == "awaited"


class AwaitsThenAnswers:
    """An awaitable that is not a coroutine: waits once, then answers."""

    def __await__(self) -> Generator[Any, None, str]:
        yield from awaits().__await__()
        return "awaited"
