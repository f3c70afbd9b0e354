"""Run a helper task beside a main one, with plain (ungrouped) exceptions."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

import trio

_T = TypeVar("_T")


class _Outcome:
    def __init__(self) -> None:
        self.finished = False
        self.helper_started = False
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

    async def start_helper_then_main(start_helper: Callable[[], None]) -> _T:
        start_helper()
        return await main()

    return await _run(start_helper_then_main, helper)


async def run_beside_once_waiting(
    main: Callable[[], Coroutine[Any, Any, _T]],
    helper: Callable[[trio.CancelScope], Awaitable[object]],
) -> tuple[bool, _T | None]:
    """:func:`run_beside`, but the helper starts only when ``main`` first waits.

    Trio delivers a cancellation only where a task waits, so a helper whose
    job is to cancel ``main`` has nothing to do while ``main`` runs without
    waiting: a ``main`` that returns before its first wait never pays for a
    helper task. Once ``main`` waits, the helper is started and runs beside
    it exactly as with :func:`run_beside`.

    Error handling:
        As :func:`run_beside`.
    """
    return await _run(lambda start_helper: _on_first_wait(main(), start_helper), helper)


async def _run(
    main: Callable[[Callable[[], None]], Awaitable[_T]],
    helper: Callable[[trio.CancelScope], Awaitable[object]],
) -> tuple[bool, _T | None]:
    """Run ``main(start_helper)`` in this task; ``start_helper()`` starts the helper."""
    outcome = _Outcome()
    async with trio.open_nursery() as nursery:
        scope = nursery.cancel_scope

        async def run_helper() -> None:
            try:
                await helper(scope)
            except Exception as exc:
                outcome.errors.append(exc)
                scope.cancel()

        def start_helper() -> None:
            outcome.helper_started = True
            nursery.start_soon(run_helper)

        # main runs in this task, as the nursery's body: one task spawned per
        # call at most, not two. A cancellation from the helper ends here and
        # is absorbed by the nursery, whose scope it is.
        try:
            outcome.value = await main(start_helper)
            outcome.finished = True
        except Exception as exc:
            outcome.errors.append(exc)
        if outcome.helper_started:  # nothing else runs in the scope otherwise
            scope.cancel()
    if outcome.errors:
        raise outcome.errors[0]
    if outcome.finished:
        value: _T = outcome.value  # type: ignore[assignment]
        return True, value
    return False, None


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
