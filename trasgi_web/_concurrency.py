"""Run a helper task beside a main one, with plain (ungrouped) exceptions."""

from __future__ import annotations

import contextvars
import math
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

import trio

_T = TypeVar("_T")


class _Outcome:
    def __init__(self) -> None:
        self.finished = False
        self.value: object = None
        self.errors: list[Exception] = []


async def run_beside(
    main: Callable[[], Awaitable[_T]],
    helper: Callable[[trio.CancelScope], Awaitable[object]],
) -> tuple[bool, _T | None]:
    """Run ``main`` with ``helper`` beside it; stop the helper when main ends.

    The helper receives the cancel scope of both, and may cancel it to stop
    ``main`` early (a client disconnect, the end of a stream). Returns
    ``(True, result)`` when ``main`` finished, ``(False, None)`` when it was
    cancelled that way.

    Error handling:
        An ``Exception`` from either task cancels the other and is re-raised
        as itself, not wrapped in an ``ExceptionGroup``, so that exception
        handlers and callers see the type they expect. If both fail, the
        first failure is raised.
    """
    outcome = _Outcome()
    async with trio.open_nursery() as nursery:
        scope = nursery.cancel_scope

        async def run_helper() -> None:
            try:
                await helper(scope)
            except Exception as exc:
                outcome.errors.append(exc)
                scope.cancel()

        nursery.start_soon(run_helper)
        # main runs in this task, as the nursery's body: one task spawned per
        # call, not two. A cancellation from the helper ends here and is
        # absorbed by the nursery, whose scope it is.
        try:
            outcome.value = await main()
            outcome.finished = True
        except Exception as exc:
            outcome.errors.append(exc)
        scope.cancel()
    if outcome.errors:
        raise outcome.errors[0]
    if outcome.finished:
        value: _T = outcome.value  # type: ignore[assignment]
        return True, value
    return False, None


async def run_beside_once_waiting(
    main: Callable[[], Coroutine[Any, Any, _T]],
    helper: Callable[[trio.CancelScope], Awaitable[object]],
    *,
    deadline: float = math.inf,
) -> tuple[bool, _T | None]:
    """:func:`run_beside`, but the helper starts only when ``main`` first waits.

    ``main`` runs in one cancel scope, which the helper may cancel and which
    expires at ``deadline`` (trio time): a deadline costs no scope of its
    own. ``(False, None)`` means that scope was cancelled, by either.

    Trio delivers a cancellation only where a task waits, so a helper whose
    job is to cancel ``main`` has nothing to do while ``main`` runs without
    waiting: a ``main`` that returns before its first wait costs no task and
    no nursery (whose exit would be one more pass of the scheduler). Once
    ``main`` waits, the helper starts as a trio system task, in a copy of
    this task's context, and this call does not return before it has ended:
    its lifetime stays inside the call, as in a nursery.

    Error handling:
        As :func:`run_beside`. An exception the helper raises (other than
        trio's own cancellation) is re-raised here rather than by the system
        task, which would crash the run.
    """
    late = _LateHelper(helper, deadline)
    value: _T | None = None
    try:
        with late.main_scope:
            try:
                value = await _on_first_wait(main(), late.start)
            except Exception as exc:
                late.errors.append(exc)
            else:
                late.finished = True
    finally:
        if late.started:
            await late.stop()
    if late.errors:
        raise late.errors[0]
    return (True, value) if late.finished else (False, None)


class _LateHelper:
    """A helper started as a system task on demand, and stopped with its main."""

    def __init__(
        self,
        helper: Callable[[trio.CancelScope], Awaitable[object]],
        deadline: float,
    ) -> None:
        self.helper = helper
        self.main_scope = trio.CancelScope(deadline=deadline)
        self.finished = False
        self.errors: list[BaseException] = []
        # Made only when the helper starts: most mains never wait.
        self._scope: trio.CancelScope | None = None
        self._ended: trio.Event | None = None

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self._scope is not None

    def start(self) -> None:
        """Start the helper now, beside the main task."""
        self._scope = scope = trio.CancelScope()
        self._ended = ended = trio.Event()
        trio.lowlevel.spawn_system_task(
            self._run,
            scope,
            ended,
            name=self.helper,
            context=contextvars.copy_context(),
        )

    async def _run(self, scope: trio.CancelScope, ended: trio.Event) -> None:
        try:
            with scope:
                await self.helper(self.main_scope)
        except trio.Cancelled:
            raise  # the run is ending: the system nursery's own cancellation
        except BaseException as exc:
            self.errors.append(exc)
            self.main_scope.cancel()
        finally:
            ended.set()

    async def stop(self) -> None:
        """Cancel the helper, if it started, and wait until it has ended."""
        if self._scope is None or self._ended is None:
            return
        self._scope.cancel()
        # Shielded: main's scope may be cancelled, and the helper must not
        # outlive this call whatever happens to it.
        with trio.CancelScope(shield=True):
            await self._ended.wait()


@types.coroutine
def _on_first_wait(
    coroutine: Coroutine[Any, Any, _T], on_wait: Callable[[], None]
) -> Generator[Any, Any, _T]:
    """Await ``coroutine``, calling ``on_wait`` just before it first waits.

    The coroutine is stepped by hand, as ``await`` would step it: whatever it
    yields to trio (its wait) is passed up unchanged, and trio's answer is
    passed back down. It runs in the awaiting task throughout, so the cancel
    scopes it opens nest inside the caller's.
    """
    try:
        waiting_for = coroutine.send(None)
    except StopIteration as returned:
        result: _T = returned.value
        return result
    on_wait()
    while True:
        try:
            answer = yield waiting_for
        except GeneratorExit:
            coroutine.close()
            raise
        except BaseException as thrown:
            step: Callable[[Any], Any] = coroutine.throw
            answer = thrown
        else:
            step = coroutine.send
        try:
            waiting_for = step(answer)
        except StopIteration as returned:
            result = returned.value
            return result
