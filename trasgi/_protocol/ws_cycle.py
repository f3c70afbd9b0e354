"""The sans-I/O WebSocket cycle: ASGI websocket messages <-> wsproto events.

:class:`WebSocketCycle` is to a WebSocket what
:class:`~trasgi._protocol.cycle.ResponseCycle` is to a response. It takes the
messages an application passes to ``send()`` and the bytes the client sends,
and produces the bytes to write and the
messages the application will ``receive()``. Which application message may
come when is a table, :data:`TRANSITIONS`; a message missing from it is an
ASGI mistake, named by :func:`explain`. wsproto is itself pure, so nothing
here imports trio, reads a clock or awaits: ``_io/websocket.py`` does the I/O
and the timing (pings, deadlines), and tests drive this class directly.

Two state machines meet here. :class:`Phase` follows the application's side
of the ASGI websocket protocol; wsproto's ``ConnectionState`` follows the
wire (RFC 6455). The connection is over for the application once
``disconnect`` is known: the client closed, the stream ended, or the server
closed (shutdown, ping timeout, message too big, an ASGI mistake).
"""

from __future__ import annotations

import enum
import http
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, NoReturn, TypeVar

from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate

from trasgi._asgi import Message
from trasgi._errors import ASGIProtocolError, ClientDisconnected
from trasgi._protocol.ws_handshake import Handshake, Unsendable

#: What the cycle produces: bytes over HTTP/1.1, an HTTP/2 stream's pieces.
Piece = TypeVar("Piece")


class Phase(enum.Enum):
    """Where the application is in the ASGI websocket protocol."""

    #: The handshake awaits the application's answer: ``websocket.accept``,
    #: ``websocket.close`` (403) or a denial response.
    CONNECTING = "connecting"
    #: A denial response started; its body messages are expected.
    DENYING = "denying"
    #: Accepted: messages flow both ways until someone closes.
    OPEN = "open"
    #: The application closed, refused, or finished its denial response.
    CLOSED = "closed"
    #: A mistake was made; nothing more is accepted from the application.
    FAILED = "failed"


class Ending(enum.Enum):
    """What :meth:`WebSocketCycle.app_returned` did about the connection."""

    #: Nothing was left to do: the connection was already closed or closing.
    NOTHING = "nothing"
    #: The handshake was never answered: a 500 response was queued.
    REFUSED = "refused"
    #: The websocket was open: a close frame was queued (1000, or 1011).
    CLOSED = "closed"
    #: A denial response was cut short: only aborting the stream is left.
    ABORT = "abort"


ACCEPT = "websocket.accept"
SEND = "websocket.send"
CLOSE = "websocket.close"
RESPONSE_START = "websocket.http.response.start"
RESPONSE_BODY = "websocket.http.response.body"
#: Every message type a websocket application may send.
APP_MESSAGES = (ACCEPT, SEND, CLOSE, RESPONSE_START, RESPONSE_BODY)

#: (phase, message type) -> handler name. A pair missing here is a mistake.
TRANSITIONS: dict[tuple[Phase, str], str] = {
    (Phase.CONNECTING, ACCEPT): "_on_accept",
    (Phase.CONNECTING, CLOSE): "_on_close_before_accept",
    (Phase.CONNECTING, RESPONSE_START): "_on_response_start",
    (Phase.DENYING, RESPONSE_BODY): "_on_response_body",
    (Phase.OPEN, SEND): "_on_send",
    (Phase.OPEN, CLOSE): "_on_close",
}

#: Why a message is wrong in a phase, for the messages an app may send.
_MISTAKES: dict[tuple[Phase, str], str] = {
    (Phase.CONNECTING, SEND): f"sent {SEND!r} before {ACCEPT!r}",
    (Phase.CONNECTING, RESPONSE_BODY): f"sent {RESPONSE_BODY!r} before "
    f"{RESPONSE_START!r}",
    (Phase.DENYING, ACCEPT): f"sent {ACCEPT!r} after starting a denial response",
    (Phase.DENYING, SEND): f"sent {SEND!r} during a denial response",
    (Phase.DENYING, CLOSE): f"sent {CLOSE!r} during a denial response; finish it "
    f"with {RESPONSE_BODY!r} (more_body=False) instead",
    (Phase.DENYING, RESPONSE_START): f"sent {RESPONSE_START!r} twice",
    (Phase.OPEN, ACCEPT): f"sent {ACCEPT!r} twice",
    (Phase.OPEN, RESPONSE_START): f"sent {RESPONSE_START!r} after {ACCEPT!r}; a "
    "denial response can only replace the handshake",
    (Phase.OPEN, RESPONSE_BODY): f"sent {RESPONSE_BODY!r} after {ACCEPT!r}",
    (Phase.CLOSED, ACCEPT): f"sent {ACCEPT!r} after the websocket was closed or "
    "refused",
    (Phase.CLOSED, SEND): f"sent {SEND!r} after {CLOSE!r}",
    (Phase.CLOSED, CLOSE): f"sent {CLOSE!r} twice",
    (Phase.CLOSED, RESPONSE_START): f"sent {RESPONSE_START!r} after the websocket "
    "was closed or refused",
    (Phase.CLOSED, RESPONSE_BODY): f"sent {RESPONSE_BODY!r} after the denial "
    "response was complete",
}


def explain(phase: Phase, message_type: object) -> str:
    """Name the ASGI mistake of sending ``message_type`` in ``phase``."""
    if phase is Phase.FAILED:
        return f"sent {message_type!r} after an earlier ASGI mistake"
    known = _MISTAKES.get((phase, message_type))  # type: ignore[arg-type]
    if known is not None:
        return known
    allowed = ", ".join(repr(name) for name in APP_MESSAGES)
    return (
        f"sent a message of unknown type {message_type!r}; a websocket application "
        f"may send only {allowed}"
    )


#: RFC 6455 section 5.5: a control frame carries at most 125 bytes, two of
#: which are the close code.
MAX_CLOSE_REASON_BYTES = 123
#: Sent when a message exceeds the size limit (RFC 6455 section 7.4.1).
MESSAGE_TOO_BIG = 1009
#: Sent when the application fails (RFC 6455 section 7.4.1: "an unexpected
#: condition that prevented it from fulfilling the request").
INTERNAL_ERROR = 1011
#: Reported when the stream ended without a close frame (RFC 6455 section
#: 7.1.5); never sent on the wire.
ABNORMAL_CLOSURE = 1006


def sendable_close_code(code: object) -> bool:
    """Whether an endpoint may put ``code`` in a close frame.

    RFC 6455 section 7.4: 1000-1003 and 1007-1011 are defined, 1012-1014 are
    registered with IANA since, 3000-4999 belong to libraries and
    applications. 1004 is reserved; 1005, 1006 and 1015 must never be sent.
    """
    if not isinstance(code, int) or isinstance(code, bool):
        return False
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _disconnect(code: int, reason: str) -> dict[str, Any]:
    return {"type": "websocket.disconnect", "code": code, "reason": reason}


class Answer(enum.Enum):
    """Where the answer to the opening request is."""

    #: Not answered yet.
    PENDING = "pending"
    #: Accepted: the frames flow.
    ACCEPTED = "accepted"
    #: A denial response started; its body is not complete.
    DENYING = "denying"
    #: Refused, or denied with a complete response.
    REFUSED = "refused"


class WebSocketCycle(Generic[Piece]):
    """One WebSocket connection, from the opening request to the close.

    Args:
        handshake: The opening request's protocol: RFC 6455's upgrade over
            HTTP/1.1, RFC 8441's extended CONNECT over HTTP/2.
        max_size: Largest message accepted, in bytes (after decompression).
        max_queue: Messages held for the application before
            :attr:`wants_data` turns false.
        compression: Offer to accept permessage-deflate (RFC 7692).
        default_headers: Headers the server adds to its handshake answers
            (Date, Server) unless the application set one of the same name.
    """

    def __init__(
        self,
        handshake: Handshake[Piece],
        *,
        max_size: int,
        max_queue: int,
        compression: bool,
        default_headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        self._handshake = handshake
        #: The frame-level connection, once accepted.
        self._ws: Connection | None = None
        self._answer = Answer.PENDING
        self._max_size = max_size
        self._max_queue = max_queue
        self._compression = compression
        self._default_headers = list(default_headers)
        self.phase = Phase.CONNECTING
        #: The handshake answer's status (101 or 200, 403, 500, a denial's)
        #: and the denial body's size, for the access log.
        self.status: int | None = None
        self.body_bytes = 0
        self._out: list[Piece] = []
        #: Frames produced since the last piece: wrapped together, in order.
        self._frames = bytearray()
        self._inbound: deque[Message] = deque([{"type": "websocket.connect"}])
        self._disconnect: dict[str, Any] | None = None
        # RFC 6455 section 4.1: a client sends no frames before the answer,
        # so bytes arriving earlier are held (unread) until the accept.
        self._early = bytearray()
        self._eof = False
        self._broken = False
        self._app_gone = False
        self._text: list[str] = []
        self._bytes = bytearray()
        self._message_size = 0
        self._pings = 0
        self._ping_payload: bytes | None = None

    # -- what the connection asks ------------------------------------------

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return self._handshake.subprotocols

    @property
    def accepted(self) -> bool:
        """Whether the accepting answer (101, or 200 over HTTP/2) was produced."""
        return self._ws is not None

    @property
    def handshake_answered(self) -> bool:
        """Whether the handshake's answer is complete (accept, refusal, denial)."""
        return self.status is not None and self.phase is not Phase.DENYING

    @property
    def reading_done(self) -> bool:
        """Whether nothing more will be read from the client."""
        if self._eof or self._broken:
            return True
        if self._ws is None:
            return self.phase is not Phase.CONNECTING
        return self._ws.state is ConnectionState.CLOSED

    @property
    def wants_data(self) -> bool:
        """Whether the connection should read more bytes now.

        False while the application lags ``max_queue`` messages behind: the
        server then stops reading, and flow control slows the client.
        Before the accept, one chunk is read to notice a client that leaves.
        """
        if self.reading_done:
            return False
        if self._ws is None:
            return not self._early
        if self._disconnect is not None or self._app_gone:
            return True  # closing: whatever arrives is discarded, not queued
        return self.phase is not Phase.OPEN or len(self._inbound) < self._max_queue

    @property
    def awaiting_pong(self) -> bool:
        """Whether the last ping is unanswered while the websocket is open."""
        return self._ping_payload is not None and self._open_on_wire()

    def _open_on_wire(self) -> bool:
        return (
            self._disconnect is None
            and self._ws is not None
            and self._ws.state is ConnectionState.OPEN
        )

    @property
    def has_data_to_send(self) -> bool:
        """Whether :meth:`data_to_send` would return anything."""
        return bool(self._out or self._frames)

    def data_to_send(self) -> list[Piece]:
        """Take what was produced so far, in the order it must be written."""
        self._wrap_frames()
        out, self._out = self._out, []
        return out

    def _emit(self, piece: Piece) -> None:
        self._wrap_frames()
        self._out.append(piece)

    def _send_frames(self, event: Any) -> None:
        """Frame one wsproto event; frames wait to be wrapped together."""
        assert self._ws is not None
        self._frames += self._ws.send(event)

    def _wrap_frames(self) -> None:
        if self._frames:
            self._out.append(self._handshake.frames(bytes(self._frames)))
            self._frames.clear()

    def next_message(self) -> Message | None:
        """The next message for the application's ``receive()``, if any.

        Once the connection is over, this is the ``websocket.disconnect``
        message, every time; ``None`` means wait for more bytes.
        """
        if self._inbound:
            return self._inbound.popleft()
        if self._disconnect is not None:
            return dict(self._disconnect)
        return None

    # -- application messages ----------------------------------------------

    def send(self, message: Message) -> None:
        """Take one message from the application.

        Error handling:
            Raises :class:`ASGIProtocolError` naming the mistake when the
            message is out of order, of an unknown type or malformed; the
            websocket is then closed with 1011 (or the handshake answered
            with 500) and later messages are refused. Raises
            :class:`ClientDisconnected` when the connection is already over,
            except for ``websocket.close``, which then has nothing to do.
        """
        message_type = message.get("type")
        handler_name = TRANSITIONS.get((self.phase, message_type))  # type: ignore[arg-type]
        if handler_name is None:
            self._fail(explain(self.phase, message_type))
        if self._disconnect is not None:
            if message_type == CLOSE:
                self.phase = Phase.CLOSED
                return
            raise ClientDisconnected("the websocket connection is closed")
        handler: Callable[[Message], None] = getattr(self, handler_name)
        handler(message)

    def _fail(self, reason: str) -> NoReturn:
        phase, self.phase = self.phase, Phase.FAILED
        if self._disconnect is None:
            if phase is Phase.CONNECTING:
                self._refuse(500)
            elif self._open_on_wire():
                self._close_wire(INTERNAL_ERROR, "")
        raise ASGIProtocolError(reason)

    def _on_accept(self, message: Message) -> None:
        subprotocol = message.get("subprotocol")
        offered = self._handshake.subprotocols
        if subprotocol is not None and subprotocol not in offered:
            names = ", ".join(map(repr, offered)) or "none"
            self._fail(
                f"chose subprotocol {subprotocol!r} in {ACCEPT!r}, which the client "
                f"did not offer (offered: {names})"
            )
        headers = self._headers(ACCEPT, message.get("headers", ()))
        if any(name.lower() == b"sec-websocket-protocol" for name, _ in headers):
            self._fail(
                f"set a sec-websocket-protocol header in {ACCEPT!r}; the ASGI spec "
                "asks for the 'subprotocol' key instead"
            )
        extensions: list[Extension] = []
        if self._compression:
            extensions.append(PerMessageDeflate())
        try:
            answer, self._ws = self._handshake.accept(
                subprotocol, extensions, self._with_defaults(headers)
            )
        except Unsendable as exc:
            self._fail(f"sent {ACCEPT!r} with an invalid header: {exc}")
        self._emit(answer)
        self._answer = Answer.ACCEPTED
        self.phase = Phase.OPEN
        self.status = self._handshake.accept_status
        early, self._early = bytes(self._early), bytearray()
        if early:
            self._feed(early)

    def _on_close_before_accept(self, message: Message) -> None:
        self._close_args(message)
        # ASGI websocket spec: a close before the accept is an HTTP 403.
        self._refuse(403)
        self.phase = Phase.CLOSED

    def _on_response_start(self, message: Message) -> None:
        status = message.get("status")
        if (
            not isinstance(status, int)
            or isinstance(status, bool)
            or not 200 <= status <= 599
        ):
            self._fail(
                f"{RESPONSE_START!r} needs an integer status 200-599, got {status!r}"
            )
        headers = self._with_defaults(
            self._headers(RESPONSE_START, message.get("headers", ()))
        )
        try:
            self._emit(self._handshake.deny(status, headers))
        except Unsendable as exc:
            self._fail(f"sent {RESPONSE_START!r} with an invalid header: {exc}")
        self._answer = Answer.DENYING
        self.status = status
        self.phase = Phase.DENYING

    def _on_response_body(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            self._fail(
                f"{RESPONSE_BODY!r} body must be bytes, got {type(body).__name__}"
            )
        more_body = bool(message.get("more_body", False))
        try:
            self._emit(self._handshake.deny_body(bytes(body), not more_body))
        except Unsendable as exc:
            self._fail(f"sent a denial response its framing cannot carry: {exc}")
        self.body_bytes += len(body)
        if not more_body:
            self._answer = Answer.REFUSED
            self.phase = Phase.CLOSED

    def _on_send(self, message: Message) -> None:
        data, text = message.get("bytes"), message.get("text")
        if (data is None) == (text is None):
            self._fail(
                f"sent {SEND!r} with both or neither of 'bytes' and 'text'; "
                "exactly one must be set"
            )
        if text is not None:
            if not isinstance(text, str):
                self._fail(f"{SEND!r} 'text' must be str, got {type(text).__name__}")
            self._send_frames(TextMessage(data=text))
            return
        if not isinstance(data, (bytes, bytearray, memoryview)):
            self._fail(f"{SEND!r} 'bytes' must be bytes, got {type(data).__name__}")
        self._send_frames(BytesMessage(data=bytes(data)))

    def _on_close(self, message: Message) -> None:
        code, reason = self._close_args(message)
        # The disconnect is reported when the client's close frame answers
        # this one (RFC 6455 section 5.5.1), with the code the client sent.
        self._send_frames(CloseConnection(code=code, reason=reason))
        self.phase = Phase.CLOSED

    def _close_args(self, message: Message) -> tuple[int, str]:
        code = message.get("code", 1000)
        if not sendable_close_code(code):
            self._fail(
                f"sent {CLOSE!r} with code {code!r}; a close frame may carry "
                "1000-1003, 1007-1014 or 3000-4999 (RFC 6455 section 7.4)"
            )
        reason = message.get("reason") or ""
        if not isinstance(reason, str):
            self._fail(f"{CLOSE!r} 'reason' must be str, got {type(reason).__name__}")
        if len(reason.encode("utf-8")) > MAX_CLOSE_REASON_BYTES:
            self._fail(
                f"sent {CLOSE!r} with a reason longer than "
                f"{MAX_CLOSE_REASON_BYTES} bytes of UTF-8 (RFC 6455 "
                "section 5.5)"
            )
        return code, reason

    def _headers(self, message_type: str, raw: object) -> list[tuple[bytes, bytes]]:
        try:
            pairs = [tuple(pair) for pair in raw]  # type: ignore[attr-defined]
        except TypeError:
            self._fail(
                f"{message_type!r} headers must be an iterable of pairs, got {raw!r}"
            )
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(part, bytes) for part in pair):
                self._fail(
                    f"{message_type!r} headers must be [name, value] pairs "
                    f"of bytes, got {pair!r}"
                )
        return [(pair[0], pair[1]) for pair in pairs]

    def _with_defaults(
        self, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        names = {name.lower() for name, _ in headers}
        return headers + [
            (name, value) for name, value in self._default_headers if name not in names
        ]

    def _refuse(self, status: int) -> None:
        """Answer the handshake with a short plain-text error response."""
        body = http.HTTPStatus(status).phrase.encode("ascii") + b"\n"
        headers = self._with_defaults(
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
            ]
        )
        self._emit(self._handshake.deny(status, headers))
        self._emit(self._handshake.deny_body(body, True))
        self._answer = Answer.REFUSED
        self.status = status
        self.body_bytes = len(body)

    # -- the server's own decisions -----------------------------------------

    def close(self, code: int, reason: str = "") -> bool:
        """Close an open websocket on the server's behalf (shutdown, timeout).

        The application's next ``receive()`` reports ``code`` at once, after
        the messages already queued. Returns False when the websocket is not
        open (not accepted yet, or already closing), leaving it alone.
        """
        if not self._open_on_wire():
            return False
        self._close_wire(code, reason)
        return True

    def ping(self) -> bool:
        """Queue a ping whose pong :attr:`awaiting_pong` watches.

        Returns False, sending nothing, unless the websocket is open.
        """
        if not self._open_on_wire():
            return False
        self._pings += 1
        self._ping_payload = self._pings.to_bytes(4, "big")
        self._send_frames(Ping(payload=self._ping_payload))
        return True

    def transport_lost(self) -> None:
        """Record that a write failed: nothing more can be sent or received."""
        self._eof = True
        self._out.clear()
        self._frames.clear()
        self._end(ABNORMAL_CLOSURE, "")

    def app_returned(self, *, failed: bool) -> Ending:
        """Settle the connection once the application returned (or raised)."""
        self._app_gone = True
        self._inbound.clear()
        if self._answer is Answer.DENYING:
            return Ending.ABORT
        if self.phase is Phase.CONNECTING and self._disconnect is None:
            self._refuse(500)
            self.phase = Phase.CLOSED
            return Ending.REFUSED
        if self.phase is Phase.OPEN and self._open_on_wire():
            code = INTERNAL_ERROR if failed else 1000
            self._send_frames(CloseConnection(code=code))
            self.phase = Phase.CLOSED
            return Ending.CLOSED
        return Ending.NOTHING

    # -- bytes from the client ----------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Take bytes from the client; ``b""`` means the stream ended."""
        if self._eof:
            return
        if not data:
            self._eof = True
        if self._ws is None:
            if data:
                self._early += data
            else:
                self._end(ABNORMAL_CLOSURE, "")
            return
        if self._broken or self._ws.state is ConnectionState.CLOSED:
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        ws = self._ws
        assert ws is not None
        ws.receive_data(data or None)
        for event in ws.events():
            if isinstance(event, Ping):
                if ws.state is ConnectionState.OPEN:
                    # RFC 6455 section 5.5.2: answer a ping with a pong.
                    self._send_frames(event.response())
            elif isinstance(event, Pong):
                if bytes(event.payload) == self._ping_payload:
                    self._ping_payload = None
            elif isinstance(event, (TextMessage, BytesMessage)):
                self._on_data(event)
            elif isinstance(event, CloseConnection):
                self._on_peer_close(ws, event)

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        if self._disconnect is not None or self._app_gone:
            return  # closing: no one will receive it
        if self.phase is not Phase.OPEN:
            return  # the application closed: it waits only for the disconnect
        data = event.data
        self._message_size += (
            len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        )
        if self._message_size > self._max_size:
            self._close_wire(MESSAGE_TOO_BIG, "message too big")
            return
        if isinstance(data, str):
            self._text.append(data)
        else:
            self._bytes += data
        if not event.message_finished:
            return
        message: dict[str, Any] = {"type": "websocket.receive"}
        if isinstance(event, TextMessage):
            message["text"] = "".join(self._text)
        else:
            message["bytes"] = bytes(self._bytes)
        self._inbound.append(message)
        self._forget_partial_message()

    def _forget_partial_message(self) -> None:
        self._text.clear()
        self._bytes.clear()
        self._message_size = 0

    def _on_peer_close(self, ws: Connection, event: CloseConnection) -> None:
        code, reason = int(event.code), event.reason or ""
        state = ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # RFC 6455 section 5.5.1: answer a close frame with a close frame,
            # echoing the client's code.
            self._send_frames(event.response())
        elif state is ConnectionState.OPEN:
            # wsproto could not parse the client's frames: it reports the code
            # to close with (1002, 1007...) but leaves the sending to us, and
            # nothing after the bad frame can be trusted.
            self._broken = True
            self._send_frames(CloseConnection(code=code, reason=reason))
        self._end(code, reason)

    def _close_wire(self, code: int, reason: str) -> None:
        self._send_frames(CloseConnection(code=code, reason=reason))
        self._end(code, reason)

    def _end(self, code: int, reason: str) -> None:
        if self._disconnect is None:
            self._disconnect = _disconnect(code, reason)
            self._forget_partial_message()
            self._ping_payload = None
