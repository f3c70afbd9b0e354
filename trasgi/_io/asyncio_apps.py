"""Applications that need asyncio: recognised when they fail, and said once.

trasgi runs applications on trio. An application (or a library it calls)
that uses asyncio directly fails with errors that do not name the cause:
``asyncio.get_running_loop()``, ``asyncio.create_task()`` or
``asyncio.sleep(1)`` raise ``RuntimeError: no running event loop``; awaiting
an asyncio future or ``asyncio.sleep(0)`` makes trio raise ``TypeError:
trio.run received unrecognized yield message``; sniffio-based libraries raise
``AsyncLibraryNotFound`` or refuse ``"trio"``. Each request still gets its
500 as any failure does; the first such failure of the process also gets a
one-line hint, and later ones do not repeat it in every request's log.
"""

from __future__ import annotations

import sys

from trasgi._observe.logs import error_logger

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

HINT = (
    "this app uses asyncio; trasgi runs applications on trio; "
    "see docs/explanation/which-applications.md"
)

#: Words of the messages that asyncio, trio and sniffio give to code that
#: expects asyncio and runs on trio.
_SIGNS = (
    "no running event loop",
    "no current event loop",
    "unrecognized yield message",
    "unknown async library",
)


class _Hint:
    """Whether this process has given the hint yet."""

    given = False


def hint_if_asyncio(exc: BaseException) -> bool:
    """Log :data:`HINT` once per process if ``exc`` shows a need for asyncio.

    Returns whether ``exc`` shows it, hint logged now or before.
    """
    if not needs_asyncio(exc):
        return False
    if not _Hint.given:
        _Hint.given = True
        error_logger.warning("%s", HINT)
    return True


def needs_asyncio(exc: BaseException) -> bool:
    """Whether ``exc``, its causes or its group's members are asyncio's errors."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_sign(current):
            return True
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e)
    return False


def _is_sign(exc: BaseException) -> bool:
    if type(exc).__name__ == "AsyncLibraryNotFound":  # sniffio's, not imported
        return True
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, TypeError)) and any(
        sign in text for sign in _SIGNS
    )
