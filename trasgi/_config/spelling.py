"""Which known name a mistyped one was meant to be: the "did you mean" hints."""

from __future__ import annotations

from collections.abc import Collection


def edit_distance(first: str, second: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from one to the other."""
    previous2: list[int] = []
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, 1):
        row = [i]
        for j, other in enumerate(second, 1):
            cost = min(
                previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (char != other)
            )
            if i > 1 and j > 1 and char == second[j - 2] and first[i - 2] == other:
                cost = min(cost, previous2[j - 2] + 1)
            row.append(cost)
        previous2, previous = previous, row
    return previous[-1]


def near_miss(name: str, known: Collection[str]) -> str | None:
    """The known name ``name`` is a slip of the fingers away from, if any.

    A slip is one edit per four characters (at least one): ``prot`` for
    ``port``, ``timeout_keepalive`` for ``timeout_keep_alive``. Names that
    merely share a word (``service_host`` and ``metrics_host``) are not.
    """
    allowed = max(1, len(name) // 4)
    scored = sorted((edit_distance(name, candidate), candidate) for candidate in known)
    if scored and scored[0][0] <= allowed:
        return scored[0][1]
    return None
