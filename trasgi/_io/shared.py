"""What all the connections of one server share, and the limits counted there."""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import attrs
import trio

from trasgi._config.config import Config
from trasgi._errors import PeerError
from trasgi._observe.access import (
    PLAIN,
    AccessNote,
    AccessRecord,
    Address,
    Observer,
    RequestLine,
    ResponseObserver,
)
from trasgi._observe.rejections import RejectionWarnings

#: How long a connection accepted just before a graceful shutdown still has
#: to send its first request. A client sends it right after connecting, so it
#: is normally on its way already; closed unanswered, the client could not
#: know whether to retry. Short, so that idle preconnected sockets (browsers
#: open them ahead of need) do not hold the shutdown up.
NEW_CONNECTION_GRACE = 1.0

#: Sent with every 503 that asks the client to come back (RFC 9110 section
#: 10.2.3): the condition is expected to pass within a second.
RETRY_AFTER = ((b"retry-after", b"1"),)


@attrs.define
class H2Counts:
    """What the server's HTTP/2 connections did, for the metrics.

    Attributes:
        streams: Streams clients opened.
        resets_sent: Streams the server reset (refused, aborted, stalled).
        resets_received: Streams clients reset.
        goaways_sent: GOAWAY frames the server sent.
        goaways_received: GOAWAY frames clients sent.
    """

    streams: int = 0
    resets_sent: int = 0
    resets_received: int = 0
    goaways_sent: int = 0
    goaways_received: int = 0


@attrs.define
class ServerShared:
    """What all connections of one server share.

    Attributes:
        state: The lifespan state; each request gets a shallow copy.
        shutting_down: Set by :meth:`begin_shutdown`: responses then carry
            ``Connection: close`` and no connection waits for another request.
        in_flight: Requests currently being handled (``--limit-concurrency``).
        per_client: Open connections per client IP (``--limit-per-client``).
        idle: Cancel scopes of connections idle between requests; shutdown
            cancels them so that those connections close at once.
        new: Cancel scopes of new connections waiting for their first
            request; shutdown gives them :data:`NEW_CONNECTION_GRACE`.
        observer: Told of every finished response (access log, metrics);
            built from the config on first use when the server set none.
        requests: Requests handed to the application, on every connection.
        request_budget: ``requests`` at which the server retires
            (``--limit-max-requests``); None for never.
        budget_spent: Set when ``requests`` reaches ``request_budget``; the
            server then shuts down gracefully.
        h2: What the HTTP/2 connections did, for the metrics.
        rejections: The warning line for requests the server refuses.
        on_shutdown: Called when graceful shutdown begins: requests whose
            application waits in ``receive()`` under a started response.
        in_flight_at_shutdown: Requests and WebSockets in flight when the
            graceful shutdown began.
        cancelled: Requests and WebSockets cancelled during shutdown (at
            its deadline), for the shutdown's last log line.
    """

    state: dict[str, Any] = attrs.field(factory=dict)
    shutting_down: trio.Event = attrs.field(factory=trio.Event)
    in_flight: int = 0
    per_client: collections.Counter[str] = attrs.field(factory=collections.Counter)
    idle: set[trio.CancelScope] = attrs.field(factory=set)
    new: set[trio.CancelScope] = attrs.field(factory=set)
    observer: Observer | None = None
    requests: int = 0
    request_budget: int | None = None
    budget_spent: trio.Event = attrs.field(factory=trio.Event)
    h2: H2Counts = attrs.field(factory=H2Counts)
    rejections: RejectionWarnings = attrs.field(factory=RejectionWarnings)
    on_shutdown: set[Callable[[], object]] = attrs.field(factory=set)
    in_flight_at_shutdown: int = 0
    cancelled: int = 0

    def begin_shutdown(self) -> None:
        """Start a graceful shutdown: flag it, and close idle connections now.

        Streaming responses whose application waits in ``receive()`` learn
        of it there (``http.disconnect``), so they end now, not at the deadline.
        """
        self.shutting_down.set()
        self.in_flight_at_shutdown = self.in_flight
        for scope in self.idle:
            scope.cancel()
        for stop in list(self.on_shutdown):
            stop()
        deadline = trio.current_time() + NEW_CONNECTION_GRACE
        for scope in self.new:
            scope.deadline = min(scope.deadline, deadline)

    def busy_refusal(self, config: Config) -> PeerError | None:
        """The 503 for one more request or WebSocket, or None when there is room.

        ``--limit-concurrency`` counts HTTP requests and open WebSockets alike
        (RFC 9110 section 15.6.4: shed load early with an answer clients know).
        """
        limit = config.limit_concurrency
        if limit is not None and self.in_flight >= limit:
            return PeerError(
                503,
                "the server is at its concurrency limit; retry shortly",
                RETRY_AFTER,
            )
        return None

    def count_request(self) -> None:
        """Count a request handed to the application (``--limit-max-requests``)."""
        # One increment and one comparison per request: an int never equals
        # None, the budget when there is no limit.
        self.requests += 1
        if self.requests == self.request_budget:
            self.budget_spent.set()

    def log_access(
        self,
        config: Config,
        peer: Address | None,
        head: RequestLine,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> None:
        """Hand one finished response to the access log and the metrics.

        Every response the server writes, the application's or its own, over
        any protocol, is one record; the note says what else it tells (the
        client a proxy named, a refusal's reason, a response cut short).
        """
        observer = self.observer_for(config)
        if observer.enabled():
            record = AccessRecord.of(head, peer, status, body_bytes, started, note)
            observer.on_response(record)

    def observer_for(self, config: Config) -> Observer:
        """The observer of finished responses, built from ``config`` on first use."""
        observer = self.observer
        if observer is None:
            observer = self.observer = ResponseObserver.for_format(
                config.access_log_format
            )
        return observer
