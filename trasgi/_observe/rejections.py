"""A warning line for requests the server rejects, at most one per kind at a time.

A client that the server refuses (a 431 for a head grown too large with
cookies, a 400 for a malformed request, a 503 at the concurrency limit)
sees the answer; the operator sees it only in this warning, besides the
access line. A client that sends thousands of bad requests must not turn the
error log into a copy of the access log, so each kind (the status code) is
written at most once per window, and the next line of that kind says how
many were left out meanwhile.

The clock is a parameter: the server passes :func:`time.monotonic`, tests a
clock of their own.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

from trasgi._observe.logs import error_logger

#: Seconds between two warnings of the same kind.
WINDOW_SECONDS = 10.0


class RejectionWarnings:
    """Writes the warning for a rejected request, rate-limited per status code.

    Args:
        window: Seconds during which further rejections of a kind are only
            counted.
        clock: Returns seconds from any fixed origin (monotonic).
    """

    __slots__ = ("_clock", "_quiet_until", "_suppressed", "window")

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self._clock = clock
        #: Per status code: until when further warnings are only counted.
        self._quiet_until: dict[int, float] = {}
        #: Per status code: rejections counted and not written.
        self._suppressed: collections.Counter[int] = collections.Counter()

    def warn(self, status: int, reason: str, client: str, request: str) -> bool:
        """Write the warning for one rejection, unless its kind spoke recently.

        Args:
            status: The status code of the refusal: the kind.
            reason: The refusal's reason, as the client got it.
            client: Who was refused, already formatted (``host:port``).
            request: The request line, already escaped (``-`` if unparsed).

        Returns:
            Whether a line was written.
        """
        now = self._clock()
        if now < self._quiet_until.get(status, -1.0):
            self._suppressed[status] += 1
            return False
        self._quiet_until[status] = now + self.window
        left_out = self._suppressed.pop(status, 0)
        more = (
            f" ({left_out} more {status} rejections since the last such line)"
            if left_out
            else ""
        )
        error_logger.warning(
            "rejected a request: %d %s (client %s, request %s)%s",
            status,
            reason,
            client,
            request,
            more,
        )
        return True
