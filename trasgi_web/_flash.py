"""Flash messages: notes for the next page, kept in the session until shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._connection import HTTPConnection

#: Where pending messages wait in the session, as ``[category, message]``.
SESSION_KEY = "_flashes"
#: Where the messages taken from the session stay for the rest of a request.
_SCOPE_KEY = "trasgi_web.flashes"


def flash(conn: HTTPConnection, message: str, category: str = "info") -> None:
    """Keep ``message`` in the session until a page shows it.

    Typically called before a redirect; the page after it reads the message
    with :func:`get_flashed_messages`.

    Error handling:
        ``RuntimeError`` without :class:`~trasgi_web.SessionMiddleware`.
    """
    pending: list[Any] = conn.session.setdefault(SESSION_KEY, [])
    pending.append([category, message])


def get_flashed_messages(
    conn: HTTPConnection,
    *,
    with_categories: bool = False,
    category_filter: Iterable[str] = (),
) -> list[Any]:
    """Take the pending messages out of the session, oldest first.

    Every call in one request returns the same messages, so a layout and a
    page may both ask; the next request has none left.

    Args:
        conn: The request.
        with_categories: Return ``(category, message)`` pairs rather than
            messages.
        category_filter: Only these categories (all when empty).
    """
    taken = conn.scope.get(_SCOPE_KEY)
    if taken is None:
        taken = [tuple(item) for item in conn.session.pop(SESSION_KEY, [])]
        conn.scope[_SCOPE_KEY] = taken
    wanted = set(category_filter)
    chosen = [item for item in taken if not wanted or item[0] in wanted]
    return chosen if with_categories else [message for _, message in chosen]
