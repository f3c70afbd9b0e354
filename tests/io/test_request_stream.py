"""RequestStream against a scripted port: receive, send, and the outcome table.

No connection and no parser: :class:`FakePort` plays the wire under one
request. Its body is a script of pieces (or errors, or stalls), and it
records every call the stream makes of it. A real ResponseCycle frames the
response, so what reaches ``write`` is what a client would read.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import trio
import trio.testing

from trasgi import ASGIProtocolError, ClientDisconnected, Config, ConnectionInfo
from trasgi._errors import PeerError
from trasgi._io.ports import BodyPiece
from trasgi._io.request_stream import LAST_WORDS_SECONDS, Outcome, RequestStream
from trasgi._io.shared import RETRY_AFTER, ServerShared
from trasgi._observe.access import PLAIN, AccessNote, Completion, RequestLine
from trasgi._protocol.cycle import H1Out, Phase, ResponseCycle

from ..helpers import HANG, Message, Receive, Send

App = Callable[[Any, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Head:
    """A request head, as the access record and the log lines read it."""

    method: bytes = b"POST"
    target: bytes = b"/upload"
    http_version: bytes = b"1.1"
    headers: Sequence[tuple[bytes, bytes]] = ()


@dataclass(frozen=True)
class Stall:
    """A script step: the next piece of body takes this long to arrive."""

    seconds: float


HEAD = Head()
#: The body bytes FakePort.refuse says it wrote.
REFUSAL_BODY = 10
#: A body that never arrives.
BLOCK = Stall(math.inf)
Step = BodyPiece | PeerError | Stall


class FakePort:
    """A RequestPort without a wire: a scripted body, and a record of every call."""

    def __init__(
        self,
        *script: Step,
        config: Config | None = None,
        expects_continue: bool = False,
    ) -> None:
        self.config = config or Config()
        self.shared = ServerShared()
        self.info = ConnectionInfo()
        self.expects_continue = expects_continue
        self.peer_lost = False
        self.peer_closed = False
        self.script = list(script)
        #: "read", "continue", "write" and "refuse", in the order made.
        self.calls: list[str] = []
        #: What each write() was given, joined.
        self.written: list[bytes] = []
        self.refused: list[tuple[PeerError, RequestLine | None]] = []
        #: (status, body bytes) of every access record.
        self.access: list[tuple[int, int]] = []
        #: (reason, completion) of every access record.
        self.notes: list[tuple[str | None, Completion]] = []
        #: Set to make send_continue() and write() fail as a broken socket does.
        self.broken = False
        #: How long a refusal takes to write (a client that does not read).
        self.refuse_takes = 0.0
        self._left = trio.Event()

    def leave(self) -> None:
        """The client closes the connection."""
        self.peer_closed = True
        self._left.set()

    def statuses(self) -> list[int]:
        return [error.status_code for error, _ in self.refused]

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        return []

    async def read_body(self) -> BodyPiece:
        self.calls.append("read")
        while True:
            step = self.script.pop(0)
            if isinstance(step, Stall):
                await trio.sleep(step.seconds)
            elif isinstance(step, PeerError):
                raise step
            else:
                await trio.lowlevel.checkpoint()
                return step

    async def _wire(self, call: str) -> None:
        await trio.lowlevel.checkpoint()
        if self.broken:
            self.peer_lost = True
            raise ClientDisconnected("broken pipe")
        self.calls.append(call)

    async def send_continue(self) -> None:
        await self._wire("continue")

    async def write(self, pieces: Sequence[H1Out]) -> None:
        assert all(isinstance(piece, bytes) for piece in pieces)
        await self._wire("write")
        self.written.append(b"".join(p for p in pieces if isinstance(p, bytes)))

    async def refuse(self, error: PeerError, head: RequestLine | None) -> int:
        # A checkpoint first: an unshielded refusal under cancellation is lost.
        await trio.lowlevel.checkpoint()
        self.calls.append("refuse")
        self.refused.append((error, head))
        await trio.sleep(self.refuse_takes)
        return REFUSAL_BODY

    def log_access(
        self,
        head: RequestLine,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> None:
        assert head is HEAD
        self.access.append((status, body_bytes))
        self.notes.append((note.reason, note.completion))

    async def wait_for_disconnect(self) -> None:
        await self._left.wait()


def stream_for(port: FakePort) -> RequestStream[H1Out]:
    cycle = ResponseCycle(HEAD.method, HEAD.http_version)
    return RequestStream(port, HEAD, cycle, expects_continue=port.expects_continue)


def request(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


DISCONNECT: Message = {"type": "http.disconnect"}
START: Message = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"5")],
}
BODY: Message = {"type": "http.response.body", "body": b"hello"}
START_STREAM: Message = {"type": "http.response.start", "status": 200, "headers": []}
MORE: Message = {"type": "http.response.body", "body": b"hel", "more_body": True}
LAST: Message = {"type": "http.response.body", "body": b"lo"}


def sending(*messages: Message, raising: Exception | None = None) -> App:
    """An app that sends ``messages``, then raises ``raising`` if given."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        for message in messages:
            await send(dict(message))
        if raising is not None:
            raise raising

    return app


async def hangs(scope: Any, receive: Receive, send: Send) -> None:
    await trio.sleep_forever()


async def catches_its_mistake(scope: Any, receive: Receive, send: Send) -> None:
    with contextlib.suppress(ASGIProtocolError):
        await send(dict(BODY))


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "trasgi.error" and record.levelno >= logging.ERROR
    ]


async def receive_into(stream: RequestStream[H1Out], got: list[Message]) -> None:
    got.append(dict(await stream.receive()))


# -- receive ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "messages"),
    [
        ([(b"hello", False)], [request(b"hello", False)]),
        ([(b"", False)], [request(b"", False)]),
        (
            [(b"he", True), (b"llo", True), (b"", False)],
            [request(b"he", True), request(b"llo", True), request(b"", False)],
        ),
    ],
)
async def test_body_pieces_become_request_messages(
    script: list[Step], messages: list[Message]
) -> None:
    port = FakePort(*script)
    stream = stream_for(port)
    assert [await stream.receive() for _ in messages] == messages
    # One read per message, on demand, and nothing read ahead.
    assert port.calls == ["read"] * len(messages)
    assert port.script == []


@pytest.mark.parametrize("ended_by", ["response complete", "client left"])
async def test_after_the_body_receive_waits_for_the_end_of_the_exchange(
    ended_by: str,
) -> None:
    port = FakePort((b"hi", False))
    stream = stream_for(port)
    assert await stream.receive() == request(b"hi", False)
    got: list[Message] = []
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_into, stream, got)
            nursery.start_soon(receive_into, stream, got)
            await stream.send(dict(START))
            await trio.testing.wait_all_tasks_blocked()
            assert got == []  # the head is held: the response is not complete
            if ended_by == "client left":
                port.leave()
            else:
                await stream.send(dict(BODY))
    assert got == [DISCONNECT, DISCONNECT]
    assert port.calls.count("read") == 1


async def test_after_the_body_a_closed_client_is_reported_at_once() -> None:
    port = FakePort((b"hi", False))
    stream = stream_for(port)
    await stream.receive()
    port.peer_closed = True  # without waking wait_for_disconnect
    with trio.fail_after(HANG):
        assert await stream.receive() == DISCONNECT


async def test_after_a_complete_response_receive_reads_no_body() -> None:
    port = FakePort((b"unread", False), expects_continue=True)
    stream = stream_for(port)
    await stream.send(dict(START))
    await stream.send(dict(BODY))
    assert await stream.receive() == DISCONNECT
    assert port.calls == ["write"]
    assert stream.continue_withheld


@pytest.mark.parametrize(
    ("expects", "before", "continued"),
    [
        (True, (), True),
        # The start alone is held back: nothing is on the wire yet.
        (True, (START_STREAM,), True),
        # A response is on its way: 100 Continue would come after it.
        (True, (START_STREAM, MORE), False),
        (False, (), False),
    ],
)
async def test_100_continue_is_sent_once_on_the_first_body_pull(
    expects: bool, before: tuple[Message, ...], continued: bool
) -> None:
    port = FakePort((b"ab", True), (b"cd", False), expects_continue=expects)
    stream = stream_for(port)
    for message in before:
        await stream.send(dict(message))
    earlier = list(port.calls)
    assert stream.continue_withheld is expects
    assert await stream.receive() == request(b"ab", True)
    assert await stream.receive() == request(b"cd", False)
    assert port.calls == [
        *earlier,
        *(["continue"] if continued else []),
        "read",
        "read",
    ]
    assert stream.continue_withheld is (expects and not continued)


async def test_a_client_gone_before_100_continue_gets_a_disconnect() -> None:
    port = FakePort((b"ab", False), expects_continue=True)
    port.broken = True
    stream = stream_for(port)
    assert await stream.receive() == DISCONNECT
    assert await stream.receive() == DISCONNECT
    assert port.calls == []  # the body was never read
    assert not stream.continue_withheld
    with pytest.raises(ClientDisconnected):
        await stream.send(dict(START))


@pytest.mark.parametrize(
    ("limit", "script"),
    [
        (5, [(b"hello", False)]),
        (5, [(b"he", True), (b"llo", False)]),
        (0, [(b"", False)]),
        (None, [(b"x" * 100_000, False)]),
    ],
)
async def test_a_body_within_the_limit_is_delivered(
    limit: int | None, script: list[tuple[bytes, bool]]
) -> None:
    port = FakePort(*script, config=Config(limit_request_body=limit))
    stream = stream_for(port)
    received = [await stream.receive() for _ in script]
    assert received == [request(body, more) for body, more in script]
    assert port.refused == []


@pytest.mark.parametrize(
    ("limit", "script", "delivered"),
    [
        (5, [(b"hello!", False)], []),
        (5, [(b"abc", True), (b"def", False)], [request(b"abc", True)]),
        (0, [(b"x", True), (b"", False)], []),
    ],
)
async def test_a_body_over_the_limit_is_refused_with_413(
    limit: int,
    script: list[Step],
    delivered: list[Message],
    errors: pytest.LogCaptureFixture,
) -> None:
    port = FakePort(*script, config=Config(limit_request_body=limit))
    stream = stream_for(port)
    received: list[Message] = []
    refused_sends: list[OSError] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        while (message := await receive())["type"] == "http.request":
            received.append(message)
        received.append(message)
        received.append(await receive())  # stays disconnected, nothing read
        try:
            await send(dict(START))
        except OSError as exc:
            refused_sends.append(exc)

    assert await stream.run(app, {}) is Outcome.CLOSE
    assert received == [*delivered, DISCONNECT, DISCONNECT]
    assert port.calls.count("read") == len(delivered) + 1
    assert port.statuses() == [413]
    assert port.access == [(413, REFUSAL_BODY)]
    assert port.notes == [("request body too large", Completion.COMPLETE)]
    assert len(refused_sends) == 1
    assert isinstance(refused_sends[0], ClientDisconnected)
    assert "413" in str(refused_sends[0])
    assert port.written == []
    assert error_lines(errors) == []


@pytest.mark.parametrize(("peer_closed", "refused"), [(False, True), (True, False)])
async def test_a_malformed_body_is_refused_unless_the_client_closed(
    peer_closed: bool, refused: bool
) -> None:
    error = PeerError(400, "bad chunk")
    port = FakePort((b"ab", True), error)
    port.peer_closed = peer_closed
    stream = stream_for(port)
    assert await stream.receive() == request(b"ab", True)
    assert await stream.receive() == DISCONNECT
    assert port.refused == ([(error, HEAD)] if refused else [])
    assert port.access == ([(400, REFUSAL_BODY)] if refused else [])


async def test_sends_after_a_refused_body_raise() -> None:
    port = FakePort(PeerError(400, "bad chunk"))
    stream = stream_for(port)
    assert await stream.receive() == DISCONNECT
    with pytest.raises(ClientDisconnected, match="400"):
        await stream.send(dict(START))
    assert port.written == []


@pytest.mark.parametrize(
    ("script", "messages", "refused", "elapsed"),
    [
        ([Stall(4), (b"ab", False)], [request(b"ab", False)], [], 4),
        # The timeout is per piece: a slow body that keeps moving is fine.
        (
            [Stall(4), (b"ab", True), Stall(4), (b"cd", False)],
            [request(b"ab", True), request(b"cd", False)],
            [],
            8,
        ),
        ([Stall(6), (b"ab", False)], [DISCONNECT], [408], 5),
        ([(b"ab", True), BLOCK], [request(b"ab", True), DISCONNECT], [408], 5),
    ],
)
async def test_a_stalled_body_gets_408(
    autojump_clock: trio.testing.MockClock,
    script: list[Step],
    messages: list[Message],
    refused: list[int],
    elapsed: float,
) -> None:
    port = FakePort(*script, config=Config(timeout_body_read=5))
    stream = stream_for(port)
    start = trio.current_time()
    assert [await stream.receive() for _ in messages] == messages
    assert trio.current_time() - start == pytest.approx(elapsed)
    assert port.statuses() == refused
    assert port.access == [(status, REFUSAL_BODY) for status in refused]


async def test_a_stalled_body_after_the_response_started_aborts(
    autojump_clock: trio.testing.MockClock, errors: pytest.LogCaptureFixture
) -> None:
    port = FakePort(BLOCK, config=Config(timeout_body_read=5))
    stream = stream_for(port)
    seen: list[Message] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(dict(START_STREAM))
        await send(dict(MORE))
        seen.append(await receive())
        await send(dict(LAST))

    assert await stream.run(app, {}) is Outcome.ABORT
    assert seen == [DISCONNECT]
    assert port.refused == []  # too late for a 408: a response is on the wire
    assert port.access == [(200, 3)]  # "hel": cut short
    assert port.notes == [
        ("request body not received in time", Completion.REQUEST_FAILED)
    ]
    assert len(port.written) == 1
    assert error_lines(errors) == []


async def test_a_connection_closed_mid_body_is_a_disconnect() -> None:
    port = FakePort((b"ab", True), None)
    stream = stream_for(port)
    assert await stream.receive() == request(b"ab", True)
    assert await stream.receive() == DISCONNECT
    assert port.refused == []


# -- send ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "writes"),
    [
        ((START, BODY), [b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"]),
        (
            (START_STREAM, {"type": "http.response.body", "body": b"hi"}),
            [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"],
        ),
        (
            (START_STREAM, MORE, LAST),
            [
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhel\r\n",
                b"2\r\nlo\r\n0\r\n\r\n",
            ],
        ),
        (
            (
                {"type": "http.response.start", "status": 204},
                {"type": "http.response.body"},
            ),
            [b"HTTP/1.1 204 No Content\r\n\r\n"],
        ),
    ],
)
async def test_a_response_is_written_as_the_cycle_frames_it(
    messages: tuple[Message, ...], writes: list[bytes]
) -> None:
    port = FakePort()
    stream = stream_for(port)
    for message in messages:
        await stream.send(dict(message))
    assert port.written == writes
    assert stream.cycle.phase is Phase.COMPLETE


@pytest.mark.parametrize("before", [(), (START_STREAM, MORE)])
async def test_send_after_the_client_is_gone_raises(
    before: tuple[Message, ...],
) -> None:
    port = FakePort()
    stream = stream_for(port)
    for message in before:
        await stream.send(dict(message))
    written = list(port.written)
    port.peer_lost = True
    with pytest.raises(ClientDisconnected) as raised:
        await stream.send(dict(LAST))
    assert isinstance(raised.value, OSError)
    assert port.written == written


@pytest.mark.parametrize(
    ("before", "mistake"),
    [
        ((), BODY),
        ((START,), START),
        ((START, BODY), BODY),
        ((), {"type": "http.response.trailers"}),
        ((), {"type": "http.response.start", "status": 99}),
    ],
)
async def test_an_asgi_mistake_raises_and_is_logged_once(
    before: tuple[Message, ...],
    mistake: Message,
    errors: pytest.LogCaptureFixture,
) -> None:
    port = FakePort()
    stream = stream_for(port)
    for message in before:
        await stream.send(dict(message))
    written = list(port.written)
    for _ in range(2):
        with pytest.raises(ASGIProtocolError):
            await stream.send(dict(mistake))
    (line,) = error_lines(errors)
    assert line.startswith('ASGI protocol error while serving "POST /upload"')
    assert port.written == written


@pytest.mark.parametrize(
    ("messages", "head"),
    [
        (
            (START, BODY),
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n",
        ),
        (
            (START_STREAM, MORE, LAST),
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n",
        ),
    ],
)
async def test_a_response_started_during_shutdown_closes_the_connection(
    messages: tuple[Message, ...], head: bytes
) -> None:
    port = FakePort()
    port.shared.shutting_down.set()
    stream = stream_for(port)
    assert await stream.run(sending(*messages), {}) is Outcome.CLOSE
    assert port.written[0].startswith(head + b"\r\n")


# -- finish and run ----------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "setup", "outcome", "refused", "access", "logged"),
    [
        pytest.param(
            sending(START, BODY), "", Outcome.REUSABLE, [], [(200, 5)], [],
            id="complete",
        ),
        pytest.param(
            sending(START, BODY, raising=ValueError("late")),
            "", Outcome.CLOSE, [], [(200, 5)], ["exception in ASGI application"],
            id="complete-then-raised",
        ),
        pytest.param(
            sending(START, BODY), "close_after", Outcome.CLOSE, [], [(200, 5)], [],
            id="close-after",
        ),
        pytest.param(
            sending(), "", Outcome.CLOSE, [500], [(500, REFUSAL_BODY)],
            ["returned without sending a response"],
            id="nothing-sent",
        ),
        pytest.param(
            sending(START), "", Outcome.CLOSE, [500], [(500, REFUSAL_BODY)],
            ["returned without sending a response"],
            id="start-only-is-replaced",
        ),
        pytest.param(
            sending(raising=ValueError("boom")),
            "", Outcome.CLOSE, [500], [(500, REFUSAL_BODY)], ["exception in ASGI application"],
            id="raised-before-sending",
        ),
        pytest.param(
            sending(START_STREAM, MORE), "", Outcome.ABORT, [], [(200, 3)],
            ["returned before completing the response"],
            id="partial",
        ),
        pytest.param(
            sending(START_STREAM, MORE, raising=ValueError("midway")),
            "", Outcome.ABORT, [], [(200, 3)], ["exception in ASGI application"],
            id="partial-then-raised",
        ),
        pytest.param(
            sending(), "peer_closed", Outcome.CLOSE, [], [], [],
            id="client-left-first",
        ),
        pytest.param(
            sending(START, BODY), "peer_lost", Outcome.CLOSE, [], [], [],
            id="client-gone",
        ),
        pytest.param(
            sending(BODY), "", Outcome.CLOSE, [500], [(500, REFUSAL_BODY)],
            ["ASGI protocol error"],
            id="mistake-raised",
        ),
        pytest.param(
            catches_its_mistake, "", Outcome.CLOSE, [500], [(500, REFUSAL_BODY)],
            ["ASGI protocol error"],
            id="mistake-caught",
        ),
    ],
)  # fmt: skip
async def test_outcome(
    app: App,
    setup: str,
    outcome: Outcome,
    refused: list[int],
    access: list[tuple[int, int]],
    logged: list[str],
    errors: pytest.LogCaptureFixture,
) -> None:
    port = FakePort()
    stream = stream_for(port)
    if setup == "close_after":
        stream.cycle.close_after = True
    elif setup:
        setattr(port, setup, True)
    assert await stream.run(app, {}) is outcome
    assert port.statuses() == refused
    assert port.access == access
    lines = error_lines(errors)
    assert len(lines) == len(logged), lines
    for expected, line in zip(logged, lines, strict=True):
        assert expected in line
        assert '"POST /upload"' in line
    assert port.shared.in_flight == 0


@pytest.mark.parametrize(
    ("before", "outcome"),
    [
        ((), Outcome.CLOSE),
        ((START, BODY), Outcome.CLOSE),
        ((START_STREAM, MORE), Outcome.ABORT),
    ],
)
async def test_an_exception_is_logged_once_with_its_traceback(
    before: tuple[Message, ...], outcome: Outcome, errors: pytest.LogCaptureFixture
) -> None:
    boom = ValueError("boom")
    stream = stream_for(FakePort())
    assert await stream.run(sending(*before, raising=boom), {}) is outcome
    (record,) = [r for r in errors.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None
    assert record.exc_info[1] is boom


async def test_a_running_request_is_counted_in_flight() -> None:
    port = FakePort()
    stream = stream_for(port)
    counted: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        counted.append(port.shared.in_flight)
        raise ValueError("still uncounted afterwards")

    await stream.run(app, {})
    assert counted == [1]
    assert port.shared.in_flight == 0


@pytest.mark.parametrize(
    ("shutting_down", "before", "peer_lost", "refused"),
    [
        (True, (), False, [503]),
        # The held start never reached the wire: the 503 replaces it.
        (True, (START_STREAM,), False, [503]),
        (True, (START_STREAM, MORE), False, []),
        (True, (), True, []),
        (False, (), False, []),
    ],
)
async def test_cancellation_during_shutdown_answers_503_and_propagates(
    shutting_down: bool,
    before: tuple[Message, ...],
    peer_lost: bool,
    refused: list[int],
) -> None:
    port = FakePort()
    port.peer_lost = peer_lost
    if shutting_down:
        port.shared.shutting_down.set()
    stream = stream_for(port)
    outcomes: list[Outcome] = []
    with trio.CancelScope() as cancel:

        async def app(scope: Any, receive: Receive, send: Send) -> None:
            for message in before:
                await send(dict(message))
            cancel.cancel()
            await trio.sleep_forever()

        outcomes.append(await stream.run(app, {}))
    assert cancel.cancelled_caught
    assert outcomes == []
    assert port.statuses() == refused
    if refused:
        ((error, head),) = port.refused
        assert error.headers == RETRY_AFTER
        assert head is HEAD
    assert port.shared.in_flight == 0


async def test_the_last_503_is_bounded_in_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    port = FakePort()
    port.refuse_takes = 60.0  # a client that does not read for a minute
    port.shared.shutting_down.set()
    stream = stream_for(port)
    start = trio.current_time()
    with trio.CancelScope() as cancel:
        cancel.cancel()
        await stream.run(hangs, {})
    assert cancel.cancelled_caught
    assert port.statuses() == [503]
    assert trio.current_time() - start == pytest.approx(LAST_WORDS_SECONDS)
