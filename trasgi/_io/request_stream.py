"""The ASGI side of one HTTP request: the ``receive`` and ``send`` given to the app.

A :class:`RequestStream` lives for one request. It speaks ASGI to the
application and reaches the wire only through its
:class:`~trasgi._io.ports.RequestPort`, so it does not know which protocol
carries it. ``receive()`` pulls body pieces from the port only when the
application asks (backpressure; ``100 Continue`` on the first pull), then
reports ``http.disconnect``; ``send()`` hands each message to the response
cycle (pure: it validates the order and frames the bytes) and writes what it
returns through the port. When the application returns, :meth:`finish`
applies the error taxonomy and says how the exchange ended.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import trio

from trasgi._asgi import ASGIApp, Message
from trasgi._errors import ASGIProtocolError, ClientDisconnected, PeerError
from trasgi._io.faults import AppFaults
from trasgi._io.file_sends import open_file_message
from trasgi._io.ports import ConnectionFacts, RequestPort
from trasgi._io.shared import RETRY_AFTER
from trasgi._io.socket_stream import FileTooShort
from trasgi._observe.access import (
    PLAIN,
    AccessNote,
    Address,
    Completion,
    NoRequestLine,
    RequestLine,
)
from trasgi._observe.logs import error_logger, escape, format_client
from trasgi._protocol.cycle import DISCONNECT, Phase
from trasgi._protocol.extensions import FILE_MESSAGES
from trasgi._protocol.forwarded import apply_proxy_headers

#: How long a shielded last write (a 503 during shutdown) may take.
LAST_WORDS_SECONDS = 1.0
#: The last body message, which the server sends for an application that
#: ended its streaming response because shutdown told it to.
_LAST_BODY: Message = {"type": "http.response.body", "body": b""}


Out = TypeVar("Out")
FramedOut = TypeVar("FramedOut", covariant=True)


def admission(port: RequestPort[Any], scope: Any) -> PeerError | None:
    """Let a parsed request in, or say why not; the same for every protocol.

    Trusted forwarding headers rewrite the scope; a server at
    ``--limit-concurrency`` refuses with 503; an admitted request is counted
    towards ``--limit-max-requests``. Not a coroutine: it runs for every
    request and waits for nothing.
    """
    config = port.config
    apply_proxy_headers(scope, port.info, config)
    refusal = port.shared.busy_refusal(config)
    if refusal is None:
        port.shared.count_request()
    return refusal


async def answer_error(
    port: ConnectionFacts,
    head: RequestLine,
    error: PeerError,
    started: float,
    *,
    client: Address | None = None,
) -> None:
    """Write the server's own error answer, and its access line with the reason."""
    written = await port.refuse(error, head)
    note = AccessNote(client, error.reason)
    port.log_access(head, error.status_code, written, started, note)


async def turn_away(
    port: ConnectionFacts,
    head: RequestLine | None,
    refusal: PeerError,
    started: float | None = None,
    *,
    client: Address | None = None,
) -> None:
    """Refuse a request: the answer, its access line, and a warning line.

    Every refusal goes through here, whatever refused (the head's checks,
    admission, the body's limits, shutdown), so none is silent: the warning
    is rate-limited per status code (see
    :class:`~trasgi._observe.rejections.RejectionWarnings`). ``head`` is None
    when the request line itself could not be parsed.
    """
    line = head if head is not None else NoRequestLine()
    when = time.perf_counter() if started is None else started
    await answer_error(port, line, refusal, when, client=client)
    request = f'"{escape(line.method)} {escape(line.target)}"' if line.method else "-"
    port.shared.rejections.warn(
        refusal.status_code,
        refusal.reason,
        format_client(client or port.info.client),
        request,
    )


class ResponseFramer(Protocol[FramedOut]):
    """The pure response cycle of the protocol carrying the request.

    It validates the application's messages against the ASGI order (a
    mistake raises :class:`ASGIProtocolError`) and frames each for the wire.
    """

    phase: Phase
    status: int | None
    body_bytes: int
    wrote_anything: bool
    close_after: bool

    def send(self, message: Message) -> Sequence[FramedOut]: ...

    def abandon(self) -> None:
        """Nothing more will be framed: what was could not all be sent."""
        ...


class Continue(enum.Enum):
    """Where the request is with ``Expect: 100-continue`` (RFC 9110 10.1.1)."""

    NOT_EXPECTED = "not expected"
    #: The client waits for ``100 Continue`` before it sends its body.
    EXPECTED = "expected"
    SENT = "sent"


class Body(enum.Enum):
    """Where the application is in reading the request body."""

    READING = "reading"
    #: The whole body was handed to the application.
    COMPLETE = "complete"
    #: The body broke HTTP or a limit; the client was answered with a 4xx.
    REFUSED = "refused"


class App(enum.Enum):
    """Where the application's call is."""

    RUNNING = "running"
    RETURNED = "returned"
    #: It raised, or made an ASGI mistake.
    FAILED = "failed"


class Delivery(enum.Enum):
    """Whether the exchange is over for ``receive()``: it then reports a disconnect."""

    IN_PROGRESS = "in progress"
    #: The final body message was written, or the application returned.
    DONE = "done"
    #: Graceful shutdown began under a started response: ``receive()``
    #: reports a disconnect so that a streaming application (server-sent
    #: events, long polling) ends now, and the server ends its body cleanly.
    STOPPED = "stopped by shutdown"


class Outcome(enum.Enum):
    """How an exchange ended, for the connection to decide what comes next."""

    #: A complete response, and nothing against reusing the connection.
    REUSABLE = "reusable"
    #: Answered (by the application or with the server's own error), but the
    #: connection must close: a request limit, ``close_after``, a failure.
    CLOSE = "close"
    #: A partial response that cannot be finished: cut the connection, so
    #: the client sees a truncated message rather than a wrong one.
    ABORT = "abort"


class RequestStream(Generic[Out]):
    """One request and its response: the ``receive`` and ``send`` of the app.

    Args:
        port: The wire under this request.
        head: The request head, for the access record and log lines.
        cycle: The response cycle of the protocol carrying the request.
        expects_continue: Whether the client waits for ``100 Continue``.
    """

    __slots__ = (
        "_watches",
        "app",
        "body",
        "body_bytes",
        "client",
        "continue_",
        "cycle",
        "delivery",
        "faults",
        "head",
        "peer_error",
        "port",
        "started",
    )

    def __init__(
        self,
        port: RequestPort[Out],
        head: RequestLine,
        cycle: ResponseFramer[Out],
        *,
        expects_continue: bool,
    ) -> None:
        self.port = port
        self.head = head
        self.cycle = cycle
        self.started = time.perf_counter()
        self.continue_ = (
            Continue.EXPECTED if expects_continue else Continue.NOT_EXPECTED
        )
        self.body = Body.READING
        self.app = App.RUNNING
        self.delivery = Delivery.IN_PROGRESS
        self.body_bytes = 0
        self.faults = AppFaults(head)
        #: The peer's fault found in the body, once answered.
        self.peer_error: PeerError | None = None
        #: receive() calls waiting for the end of the exchange.
        self._watches: set[trio.CancelScope] = set()
        #: The client a trusted proxy named in the scope; None when it is
        #: the connection's peer.
        self.client: Address | None = None

    @property
    def continue_withheld(self) -> bool:
        """Whether the client still waits for a ``100 Continue`` never sent."""
        return self.continue_ is Continue.EXPECTED

    # -- running the application -------------------------------------------

    async def run(self, app: ASGIApp, scope: Any) -> Outcome:
        """Run the application for this request; return how the exchange ended.

        Error handling:
            Exceptions of the application are logged and answered (see
            :meth:`finish`). Cancellation propagates, after a shielded 503
            when the server is shutting down and nothing was sent yet.
        """
        shared = self.port.shared
        shared.in_flight += 1
        client = scope.get("client")
        self.client = None if client == self.port.info.client else client
        returned = False
        try:
            await self._call(app, scope)
            returned = True
        finally:
            shared.in_flight -= 1
            if not returned:
                await self._answer_cancelled()
        return await self.finish()

    def _log(self, completion: Completion = Completion.COMPLETE) -> None:
        """The access line of the application's response, whole or cut short."""
        cycle = self.cycle
        error = self.peer_error
        if self.client is None and error is None and completion is Completion.COMPLETE:
            note = PLAIN  # most responses: no note to allocate
        else:
            reason = None if error is None else error.reason
            note = AccessNote(self.client, reason, completion)
        self.port.log_access(
            self.head, cycle.status or 0, cycle.body_bytes, self.started, note
        )

    async def _call(self, app: ASGIApp, scope: Any) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:
            self.app = App.FAILED
            self.faults.classify(exc)
        finally:
            if self.app is App.RUNNING:  # returned, or cancelled
                # An ASGI mistake the application caught is still its failure.
                mistaken = self.faults.mistake is not None
                self.app = App.FAILED if mistaken else App.RETURNED
            self._end_delivery()

    async def _answer_cancelled(self) -> None:
        """Tell a client whose request was cancelled by shutdown, if still possible.

        Runs while the cancellation propagates (it is re-raised after): a
        shielded, short write of a 503, so the client learns to retry rather
        than seeing the connection drop.
        """
        port = self.port
        if not port.shared.shutting_down.is_set():
            return
        port.shared.cancelled += 1
        if port.peer_lost:
            return
        if self.cycle.wrote_anything:
            self._log(Completion.DEADLINE)
            return
        refusal = PeerError(503, "the server is shutting down; retry", RETRY_AFTER)
        with trio.CancelScope(shield=True), trio.move_on_after(LAST_WORDS_SECONDS):
            await turn_away(port, self.head, refusal, self.started, client=self.client)

    async def finish(self) -> Outcome:
        """Log the response and decide the outcome, answering 500 where owed.

        The error taxonomy: a complete response is logged; a partial one is
        cut (:attr:`Outcome.ABORT`); no response at all gets a 500, and a log
        line unless the application's own failure was logged already.
        """
        cycle = self.cycle
        port = self.port
        if cycle.phase is Phase.COMPLETE:
            self._log()
            failed = self.app is App.FAILED or self.peer_error is not None
            if failed or cycle.close_after:
                return Outcome.CLOSE
            return Outcome.REUSABLE
        if port.peer_lost:
            if cycle.wrote_anything:
                self._log(Completion.CLIENT_LEFT)
            return Outcome.CLOSE
        if self._ended_by_shutdown():
            # The application ended its stream because shutdown said
            # "disconnect": the server ends the body properly (RFC 9112
            # section 7.1 last chunk, RFC 9113 END_STREAM), then closes.
            await self._write_last_body()
            self._log()
            return Outcome.CLOSE
        if cycle.wrote_anything:
            if self.app is not App.FAILED:
                error_logger.error(
                    "ASGI application returned before completing the response to %s",
                    self.faults.describe(),
                )
            failed = self.peer_error is not None
            self._log(Completion.REQUEST_FAILED if failed else Completion.APP_FAILED)
            return Outcome.ABORT
        if self.peer_error is not None:
            return Outcome.CLOSE  # answered when the error was found
        if self.app is not App.FAILED:
            if port.peer_closed:
                error_logger.debug(
                    "client left before a response to %s", self.faults.describe()
                )
                return Outcome.CLOSE
            error_logger.error(
                "ASGI application returned without sending a response to %s",
                self.faults.describe(),
            )
        error = PeerError(500, "Internal Server Error")
        await answer_error(port, self.head, error, self.started, client=self.client)
        return Outcome.CLOSE

    def _told_to_stop(self) -> bool:
        """Whether shutdown told the application to stop its response."""
        return self.delivery is Delivery.STOPPED

    def _ended_by_shutdown(self) -> bool:
        """Whether the application returned mid-response, told to stop by shutdown."""
        return (
            self._told_to_stop()
            and self.app is App.RETURNED
            and self.cycle.phase in (Phase.STARTED, Phase.STREAMING)
        )

    async def _write_last_body(self) -> None:
        """Send the last (empty) body message for the application.

        Error handling:
            A client gone meanwhile is not an error: the connection closes.
        """
        try:
            data = self.cycle.send(dict(_LAST_BODY))
            if data:
                await self.port.write(data)
        except ClientDisconnected:
            pass

    # -- receive -----------------------------------------------------------

    async def receive(self) -> Message:
        """Give the application the next request message (ASGI ``receive``)."""
        port = self.port
        over = self.delivery is not Delivery.IN_PROGRESS
        if over or port.peer_lost or self.body is Body.REFUSED:
            return dict(DISCONNECT)
        if self.body is Body.READING:
            return await self._receive_body()
        # The body is complete: block until the response is done, the client
        # leaves (ASGI HTTP spec, "Disconnect"), or shutdown stops a response
        # already under way.
        shared = port.shared
        if port.peer_closed or (shared.shutting_down.is_set() and self._stop()):
            return dict(DISCONNECT)
        with trio.CancelScope() as watch:
            self._watches.add(watch)
            shared.on_shutdown.add(self._stop)
            try:
                await port.wait_for_disconnect()
            finally:
                self._watches.discard(watch)
                if not self._watches:
                    shared.on_shutdown.discard(self._stop)
        return dict(DISCONNECT)

    def _stop(self) -> bool:
        """Shutdown began: end a started response's exchange; say whether it did.

        A response not started yet is left alone: its application is still
        to answer, and a disconnect now would leave the client without one.
        """
        if self.cycle.phase is Phase.AWAITING_START:
            return False
        self.cycle.close_after = True
        self._end_delivery(Delivery.STOPPED)
        return True

    def _end_delivery(self, why: Delivery = Delivery.DONE) -> None:
        """End the exchange for receive(), waking every call waiting for it."""
        if self.delivery is Delivery.IN_PROGRESS:
            self.delivery = why
        for watch in self._watches:
            watch.cancel()

    async def _receive_body(self) -> Message:
        if self.continue_ is Continue.EXPECTED and not self.cycle.wrote_anything:
            # RFC 9110 section 10.1.1: the client waits for 100 Continue before
            # sending the body; send it only now that the body is wanted.
            self.continue_ = Continue.SENT
            try:
                await self.port.send_continue()
            except ClientDisconnected:
                return dict(DISCONNECT)
        try:
            piece = await self._read_piece()
            if piece is None:
                return dict(DISCONNECT)  # the connection closed mid-body
            data, more = piece
            self._count(data)
        except PeerError as error:
            if not self.port.peer_closed:
                await self._refuse_mid_body(error)
            return dict(DISCONNECT)
        if not more:
            self.body = Body.COMPLETE
        return {"type": "http.request", "body": data, "more_body": more}

    async def _read_piece(self) -> tuple[bytes, bool] | None:
        with trio.move_on_after(self.port.config.timeout_body_read):
            return await self.port.read_body()
        raise PeerError(408, "request body not received in time")

    def _count(self, data: bytes) -> None:
        """Count body bytes against the limit.

        Error handling:
            Raises :class:`PeerError` (413) once the body passes the limit:
            a chunked body declares no length to check up front.
        """
        self.body_bytes += len(data)
        limit = self.port.config.limit_request_body
        if limit is not None and self.body_bytes > limit:
            raise PeerError(413, "request body too large")

    async def _refuse_mid_body(self, error: PeerError) -> None:
        """The body broke HTTP or a limit: answer now and end the exchange.

        The client gets the 4xx at once (if no response started) rather than
        whatever the application would make of a truncated body; the
        application sees ``http.disconnect`` and its later sends raise.
        """
        self.peer_error = error
        self.body = Body.REFUSED
        port = self.port
        if not self.cycle.wrote_anything and not port.peer_lost:
            await turn_away(port, self.head, error, self.started, client=self.client)

    # -- send --------------------------------------------------------------

    async def _send_file(self, message: Message) -> None:
        """A path or zero-copy send: open the file, frame it, send it.

        Error handling:
            A file that cannot be opened, or a malformed message, is an ASGI
            mistake (a 500 when nothing was sent yet, with a log line naming
            the path). A file that ends early cuts the response.
        """
        try:
            opened = await open_file_message(message)
        except ASGIProtocolError as mistake:
            self.faults.record_mistake(mistake)
            raise
        try:
            try:
                data = self.cycle.send(opened.message)
            except ASGIProtocolError as mistake:
                self.faults.record_mistake(mistake)
                raise
            await self.port.write(data)
        except FileTooShort as short:
            self.cycle.abandon()
            cut = ASGIProtocolError(f"sent {message.get('type')!r}: {short}")
            self.faults.record_mistake(cut)
            raise cut from None
        finally:
            opened.done()

    async def _write(self, data: Sequence[Out]) -> None:
        """Write what the cycle framed.

        Once shutdown told the application to stop, it may cancel its own
        send (Starlette's listener does): the write is shielded then, so that
        the bytes framed leave whole and the server can end the body.
        """
        if self._told_to_stop():
            with trio.CancelScope(shield=True):
                await self.port.write(data)
            return
        try:
            await self.port.write(data)
        except trio.Cancelled:
            if self._told_to_stop():
                # Told to stop while this write was under way, unshielded:
                # some framed bytes may not have left, so a last chunk
                # could not end the body properly; the response is cut.
                self.cycle.abandon()
            raise

    async def send(self, message: Message) -> None:
        """Take one response message from the application (ASGI ``send``).

        Error handling:
            Raises :class:`ClientDisconnected` once the client is gone, and
            :class:`ASGIProtocolError` for an out-of-order or malformed message
            (after logging the mistake).
        """
        port = self.port
        if port.peer_lost:
            raise ClientDisconnected("the client closed the connection")
        if self.peer_error is not None:
            raise ClientDisconnected(
                f"the request failed ({self.peer_error.status_code}); "
                "the connection is closing"
            )
        cycle = self.cycle
        # The phase first: it is false for every body message, the common case.
        stopping = (
            cycle.phase is Phase.AWAITING_START and port.shared.shutting_down.is_set()
        )
        if stopping:
            cycle.close_after = True
        if message.get("type") in FILE_MESSAGES:
            await self._send_file(message)
        else:
            try:
                data = cycle.send(message)
            except ASGIProtocolError as mistake:
                self.faults.record_mistake(mistake)
                raise
            if data:
                await self._write(data)
        if cycle.phase is Phase.COMPLETE:
            # Only once written: a receive() that reported the disconnect
            # earlier could let the application cancel its own last send.
            self._end_delivery()
        elif stopping and self._watches:
            # A receive() waited before the response started, and shutdown
            # began meanwhile: now that the response is under way, stop it.
            self._stop()
