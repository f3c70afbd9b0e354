"""The pure WebSocket cycle and scope builder: synchronous tables of cases.

A wsproto client on the other side makes real handshakes and frames; no
stream, no clock, no trio. Every case that does not look at the bytes of an
HTTP/1.1 answer runs over both handshakes: RFC 6455's upgrade and RFC 8441's
extended CONNECT (the HTTP/2 stream's pieces read back by a frame-level
client).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import h11
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.frame_protocol import CloseReason
from wsproto.handshake import client_extensions_handshake

from trasgi import ASGIProtocolError, ClientDisconnected
from trasgi._io.websocket import is_websocket_upgrade
from trasgi._protocol.h2_cycle import H2Out, ResponseData, ResponseHead
from trasgi._protocol.scope import (
    ConnectionInfo,
    build_websocket_scope,
    offered_subprotocols,
)
from trasgi._protocol.ws_cycle import (
    ACCEPT,
    APP_MESSAGES,
    CLOSE,
    RESPONSE_BODY,
    RESPONSE_START,
    SEND,
    TRANSITIONS,
    Ending,
    Phase,
    WebSocketCycle,
    explain,
    sendable_close_code,
)
from trasgi._protocol.ws_handshake import (
    ConnectHandshake,
    HandshakeError,
    UpgradeHandshake,
)

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs/explanation/websockets.md"


class Pair:
    """A cycle and a wsproto client wired to each other by hand."""

    #: Whether the answers are HTTP/1.1 bytes (``connection: close`` on
    #: refusals) rather than an HTTP/2 stream's pieces.
    http1 = True
    cycle: WebSocketCycle[Any]

    def to_client(self) -> list[Event]:
        """Deliver what the server wrote; return the client's events."""
        raise NotImplementedError

    def from_client(self, event: Event) -> None:
        raise NotImplementedError

    def accept(self, **message: Any) -> AcceptConnection:
        self.cycle.send({"type": ACCEPT, **message})
        (accepted,) = self.to_client()
        assert isinstance(accepted, AcceptConnection)
        return accepted

    def messages(self) -> list[dict[str, Any]]:
        """Every message the application could receive now, the connect excluded."""
        out = []
        while (message := self.cycle.next_message()) is not None:
            if message["type"] != "websocket.connect":
                out.append(dict(message))
            if message["type"] == "websocket.disconnect":
                break
        return out


class UpgradePair(Pair):
    """RFC 6455 over HTTP/1.1: a wsproto client reads the bytes."""

    def __init__(
        self,
        *,
        subprotocols: tuple[str, ...] = (),
        offer_deflate: bool = False,
        max_size: int = 1 << 20,
        max_queue: int = 4,
        compression: bool = True,
    ) -> None:
        self.client = WSConnection(ConnectionType.CLIENT)
        offer = [PerMessageDeflate()] if offer_deflate else []
        raw = self.client.send(
            Request(
                host="testserver",
                target="/chat?room=1",
                subprotocols=list(subprotocols),
                extensions=offer,
            )
        )
        self.cycle = WebSocketCycle(
            UpgradeHandshake(parse_request(raw)),
            max_size=max_size,
            max_queue=max_queue,
            compression=compression,
            default_headers=[(b"server", b"trasgi")],
        )

    def to_client(self) -> list[Event]:
        data = b"".join(self.cycle.data_to_send())
        if not data:
            return []
        self.client.receive_data(data)
        return list(self.client.events())

    def from_client(self, event: Event) -> None:
        self.cycle.receive_data(self.client.send(event))


class ConnectPair(Pair):
    """RFC 8441 over HTTP/2: the stream's pieces read back as a client would.

    A ``200`` head is the accept (the client then agrees to the extensions
    the answer names); another head is a denial, whose DATA is its body;
    after the accept, DATA carries frames to a frame-level wsproto client.
    """

    http1 = False

    def __init__(
        self,
        *,
        subprotocols: tuple[str, ...] = (),
        offer_deflate: bool = False,
        max_size: int = 1 << 20,
        max_queue: int = 4,
        compression: bool = True,
    ) -> None:
        self.offer: list[Any] = [PerMessageDeflate()] if offer_deflate else []
        headers = [(b"sec-websocket-version", b"13")]
        if subprotocols:
            value = ", ".join(subprotocols).encode()
            headers.append((b"sec-websocket-protocol", value))
        for extension in self.offer:
            offer = f"{extension.name}; {extension.offer()}".encode()
            headers.append((b"sec-websocket-extensions", offer))
        self.cycle = WebSocketCycle(
            ConnectHandshake(b"websocket", headers),
            max_size=max_size,
            max_queue=max_queue,
            compression=compression,
            default_headers=[(b"server", b"trasgi")],
        )
        self.client: Connection | None = None

    def to_client(self) -> list[Event]:
        events: list[Event] = []
        for piece in self.cycle.data_to_send():
            events += self._read(piece)
        return events

    def _read(self, piece: H2Out) -> list[Event]:
        if isinstance(piece, ResponseHead):
            assert all(name == name.lower() for name, _ in piece.headers)
            if piece.status == 200:
                return [self._accepted(piece.headers)]
            has_body = not piece.end_stream
            return [RejectConnection(piece.status, list(piece.headers), has_body)]
        assert isinstance(piece, ResponseData)
        assert isinstance(piece.data, bytes)
        if self.client is None:
            return [RejectData(piece.data, piece.end_stream)]
        assert not piece.end_stream
        self.client.receive_data(piece.data)
        return list(self.client.events())

    def _accepted(self, headers: list[tuple[bytes, bytes]]) -> AcceptConnection:
        fields = dict(headers)
        agreed = fields.get(b"sec-websocket-extensions", b"").decode()
        extensions = client_extensions_handshake([agreed] if agreed else [], self.offer)
        self.client = Connection(ConnectionType.CLIENT, extensions)
        subprotocol = fields.get(b"sec-websocket-protocol")
        return AcceptConnection(
            subprotocol=subprotocol.decode() if subprotocol else None,
            extensions=extensions,
            extra_headers=headers,
        )

    def from_client(self, event: Event) -> None:
        assert self.client is not None
        self.cycle.receive_data(self.client.send(event))


class MakePair(Protocol):
    def __call__(
        self,
        *,
        subprotocols: tuple[str, ...] = (),
        offer_deflate: bool = False,
        max_size: int = 1 << 20,
        max_queue: int = 4,
        compression: bool = True,
    ) -> Pair: ...


@pytest.fixture(params=[UpgradePair, ConnectPair], ids=["http1", "h2"])
def make_pair(request: pytest.FixtureRequest) -> MakePair:
    """Each case over RFC 6455's upgrade and RFC 8441's extended CONNECT."""
    factory: MakePair = request.param
    return factory


def answered(cycle: WebSocketCycle[Any]) -> bool:
    # Read through a call: mypy would keep an asserted property narrowed.
    return cycle.handshake_answered


def wants(cycle: WebSocketCycle[Any]) -> bool:
    return cycle.wants_data


def parse_request(raw: bytes) -> h11.Request:
    server = h11.Connection(h11.SERVER)
    server.receive_data(raw)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    return request


def upgrade_request(
    *extra: tuple[bytes, bytes],
    method: bytes = b"GET",
    version: bytes = b"13",
    without: bytes = b"",
) -> h11.Request:
    headers = [
        (b"host", b"testserver"),
        (b"upgrade", b"websocket"),
        (b"connection", b"keep-alive, Upgrade"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        (b"sec-websocket-version", version),
        *extra,
    ]
    headers = [(name, value) for name, value in headers if name != without]
    return h11.Request(method=method, target=b"/", headers=headers)


# -- handshake -------------------------------------------------------------


def test_the_accept_answers_with_101_or_200_on_http2(make_pair: MakePair) -> None:
    # RFC 6455 section 4.2.2 (wsproto's client checks the accept token);
    # RFC 8441 section 5: a 2xx on the stream.
    pair = make_pair()
    assert pair.cycle.next_message() == {"type": "websocket.connect"}
    accepted = pair.accept(headers=[(b"x-extra", b"1")])
    assert (b"x-extra", b"1") in accepted.extra_headers
    assert (b"server", b"trasgi") in accepted.extra_headers
    assert pair.cycle.status == (101 if pair.http1 else 200)
    assert pair.cycle.phase is Phase.OPEN


def test_the_application_header_replaces_the_server_default(
    make_pair: MakePair,
) -> None:
    pair = make_pair()
    accepted = pair.accept(headers=[(b"server", b"mine")])
    servers = [value for name, value in accepted.extra_headers if name == b"server"]
    assert servers == [b"mine"]


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (upgrade_request(version=b"8"), 426),
        (upgrade_request(without=b"sec-websocket-version"), 400),
        (upgrade_request(without=b"sec-websocket-key"), 400),
        (upgrade_request((b"sec-websocket-protocol", "é".encode())), 400),
    ],
    ids=["old-version", "no-version", "no-key", "non-ascii"],
)
def test_an_invalid_handshake_is_a_peer_error(
    request_: h11.Request, status: int
) -> None:
    with pytest.raises(HandshakeError) as caught:
        UpgradeHandshake(request_)
    assert caught.value.status_code == status
    assert "invalid websocket handshake" in caught.value.reason
    if status == 426:
        # RFC 6455 section 4.4: name the supported version.
        assert (b"Sec-WebSocket-Version", b"13") in caught.value.headers


@pytest.mark.parametrize(
    ("protocol", "headers", "status"),
    [
        (b"websocket", [], 400),
        (b"websocket", [(b"sec-websocket-version", b"8")], 426),
        (
            b"websocket",
            [(b"sec-websocket-version", b"13"), (b"sec-websocket-version", b"13")],
            426,
        ),
        (b"connect-udp", [(b"sec-websocket-version", b"13")], 501),
    ],
    ids=["no-version", "old-version", "two-versions", "other-protocol"],
)
def test_an_invalid_extended_connect_is_a_peer_error(
    protocol: bytes, headers: list[tuple[bytes, bytes]], status: int
) -> None:
    # RFC 8441 section 5: the version is still 13 (RFC 6455 section 4.4);
    # another :protocol is one the server does not implement.
    with pytest.raises(HandshakeError) as caught:
        ConnectHandshake(protocol, headers)
    assert caught.value.status_code == status
    if status == 426:
        assert (b"sec-websocket-version", b"13") in caught.value.headers


def test_the_extended_connect_protocol_name_is_case_insensitive() -> None:
    handshake = ConnectHandshake(b"WebSocket", [(b"sec-websocket-version", b"13")])
    assert handshake.accept_status == 200


@pytest.mark.parametrize(
    ("chosen", "offered", "fails"),
    [
        ("chat", ("chat", "superchat"), False),
        ("superchat", ("chat", "superchat"), False),
        (None, ("chat",), False),
        ("other", ("chat",), True),
        ("chat", (), True),
    ],
)
def test_the_subprotocol_must_be_one_the_client_offered(
    chosen: str | None, offered: tuple[str, ...], fails: bool, make_pair: MakePair
) -> None:
    pair = make_pair(subprotocols=offered)
    assert pair.cycle.subprotocols == list(offered)
    if not fails:
        assert pair.accept(subprotocol=chosen).subprotocol == chosen
        return
    with pytest.raises(ASGIProtocolError, match="did not offer"):
        pair.cycle.send({"type": ACCEPT, "subprotocol": chosen})
    # Before the accept, a mistake becomes a 500 answer.
    (rejected, *_) = pair.to_client()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 500


def test_the_subprotocol_header_is_refused_in_favour_of_the_key(
    make_pair: MakePair,
) -> None:
    pair = make_pair(subprotocols=("chat",))
    with pytest.raises(ASGIProtocolError, match="'subprotocol' key"):
        pair.cycle.send(
            {"type": ACCEPT, "headers": [(b"Sec-WebSocket-Protocol", b"chat")]}
        )


@pytest.mark.parametrize(
    ("offer", "compression", "negotiated"),
    [(True, True, True), (True, False, False), (False, True, False)],
)
def test_permessage_deflate_is_negotiated_when_both_want_it(
    offer: bool, compression: bool, negotiated: bool, make_pair: MakePair
) -> None:
    pair = make_pair(offer_deflate=offer, compression=compression)
    accepted = pair.accept()
    assert bool(accepted.extensions) is negotiated
    # Round trip through the (de)compressor when there is one.
    pair.from_client(TextMessage(data="hello " * 100))
    assert pair.messages() == [{"type": "websocket.receive", "text": "hello " * 100}]
    pair.cycle.send({"type": SEND, "text": "world " * 100})
    (message,) = pair.to_client()
    assert isinstance(message, TextMessage)
    assert message.data == "world " * 100


def test_a_malformed_deflate_offer_is_declined_not_fatal() -> None:
    header = (
        b"sec-websocket-extensions",
        b"permessage-deflate; client_max_window_bits=x",
    )
    cycle = WebSocketCycle(
        UpgradeHandshake(upgrade_request(header)),
        max_size=10,
        max_queue=1,
        compression=True,
    )
    cycle.send({"type": ACCEPT})
    response = b"".join(cycle.data_to_send())
    assert response.startswith(b"HTTP/1.1 101 ")
    assert b"permessage-deflate" not in response.lower()
    over_h2 = WebSocketCycle(
        ConnectHandshake(b"websocket", [(b"sec-websocket-version", b"13"), header]),
        max_size=10,
        max_queue=1,
        compression=True,
    )
    over_h2.send({"type": ACCEPT})
    (head,) = over_h2.data_to_send()
    assert isinstance(head, ResponseHead)
    assert (head.status, head.end_stream) == (200, False)
    assert b"sec-websocket-extensions" not in dict(head.headers)


def test_close_before_accept_is_a_403(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.cycle.send({"type": CLOSE})
    rejected, body, *_ = pair.to_client()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 403
    # Over HTTP/1.1 the connection is not reused; over HTTP/2 the field is
    # connection-specific, and only the stream ends.
    assert ((b"connection", b"close") in rejected.headers) is pair.http1
    assert isinstance(body, RejectData)
    assert body.data == b"Forbidden\n"
    assert answered(pair.cycle)
    assert pair.cycle.reading_done


def test_a_denial_response_streams_its_body(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.cycle.send(
        {
            "type": RESPONSE_START,
            "status": 401,
            "headers": [(b"www-authenticate", b"Bearer")],
        }
    )
    assert not answered(pair.cycle)
    pair.cycle.send({"type": RESPONSE_BODY, "body": b"log ", "more_body": True})
    pair.cycle.send({"type": RESPONSE_BODY, "body": b"in"})
    events = pair.to_client()
    assert isinstance(events[0], RejectConnection)
    assert events[0].status_code == 401
    assert (b"www-authenticate", b"Bearer") in events[0].headers
    assert ((b"connection", b"close") in events[0].headers) is pair.http1
    body = b"".join(e.data for e in events[1:] if isinstance(e, RejectData))
    assert body == b"log in"
    assert answered(pair.cycle)
    assert (pair.cycle.status, pair.cycle.body_bytes) == (401, 6)


# -- the mistake table -----------------------------------------------------

VALID: dict[str, dict[str, Any]] = {
    ACCEPT: {"type": ACCEPT},
    SEND: {"type": SEND, "text": "x"},
    CLOSE: {"type": CLOSE},
    RESPONSE_START: {"type": RESPONSE_START, "status": 401, "headers": []},
    RESPONSE_BODY: {"type": RESPONSE_BODY, "body": b"no", "more_body": True},
}


def cycle_in(phase: Phase, make_pair: MakePair) -> WebSocketCycle[Any]:
    pair = make_pair()
    cycle = pair.cycle
    if phase is Phase.DENYING:
        cycle.send(VALID[RESPONSE_START])
    elif phase in (Phase.OPEN, Phase.CLOSED):
        cycle.send(VALID[ACCEPT])
        if phase is Phase.CLOSED:
            cycle.send(VALID[CLOSE])
    elif phase is Phase.FAILED:
        with pytest.raises(ASGIProtocolError):
            cycle.send({"type": "http.response.start"})
    assert cycle.phase is phase
    return cycle


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
@pytest.mark.parametrize("message_type", APP_MESSAGES)
def test_every_phase_and_message_follows_the_table(
    phase: Phase, message_type: str, make_pair: MakePair
) -> None:
    cycle = cycle_in(phase, make_pair)
    if (phase, message_type) in TRANSITIONS:
        cycle.send(dict(VALID[message_type]))
        assert cycle.phase is not Phase.FAILED
        return
    with pytest.raises(ASGIProtocolError) as caught:
        cycle.send(dict(VALID[message_type]))
    assert str(caught.value) == explain(phase, message_type)
    assert str(caught.value).startswith("sent ")
    assert cycle.phase is Phase.FAILED


def test_an_unknown_message_type_lists_the_allowed_ones() -> None:
    reason = explain(Phase.OPEN, "http.response.start")
    assert "unknown type 'http.response.start'" in reason
    assert all(name in reason for name in APP_MESSAGES)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": SEND}, "exactly one"),
        ({"type": SEND, "text": "a", "bytes": b"b"}, "exactly one"),
        ({"type": SEND, "text": b"a"}, "'text' must be str"),
        ({"type": SEND, "bytes": "a"}, "'bytes' must be bytes"),
        ({"type": CLOSE, "code": 1006}, "RFC 6455 section 7.4"),
        ({"type": CLOSE, "code": "1000"}, "RFC 6455 section 7.4"),
        ({"type": CLOSE, "reason": 5}, "'reason' must be str"),
        ({"type": CLOSE, "reason": "é" * 62}, "123 bytes"),
    ],
)
def test_a_malformed_message_after_accept_closes_with_1011(
    message: dict[str, Any], expected: str, make_pair: MakePair
) -> None:
    pair = make_pair()
    pair.accept()
    with pytest.raises(ASGIProtocolError, match=expected):
        pair.cycle.send(message)
    (close,) = pair.to_client()
    assert isinstance(close, CloseConnection)
    assert close.code == 1011
    assert pair.messages() == [
        {"type": "websocket.disconnect", "code": 1011, "reason": ""}
    ]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"type": RESPONSE_START, "status": 101}, "status 200-599"),
        ({"type": RESPONSE_START, "status": 200, "headers": [(b"a",)]}, "pairs"),
        ({"type": RESPONSE_START, "status": 200, "headers": 5}, "iterable"),
        ({"type": RESPONSE_START, "status": 200, "headers": [(b"a b", b"")]}, "header"),
        ({"type": ACCEPT, "headers": [(b"x", "text")]}, "pairs of bytes"),
        ({"type": ACCEPT, "headers": [(b"a b", b"")]}, "invalid header"),
        ({"type": ACCEPT, "headers": [(b"x", b"\r\n")]}, "invalid header"),
    ],
)
def test_a_malformed_handshake_answer_becomes_a_500(
    message: dict[str, Any], expected: str, make_pair: MakePair
) -> None:
    pair = make_pair()
    with pytest.raises(ASGIProtocolError, match=expected):
        pair.cycle.send(message)
    (rejected, *_) = pair.to_client()
    assert isinstance(rejected, RejectConnection)
    assert rejected.status_code == 500


@pytest.mark.parametrize(
    ("code", "sendable"),
    [
        (1000, True),
        (1003, True),
        (1004, False),
        (1005, False),
        (1006, False),
        (1011, True),
        (1012, True),
        (1015, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
        (True, False),
    ],
)
def test_sendable_close_codes_follow_rfc6455(code: int, sendable: bool) -> None:
    assert sendable_close_code(code) is sendable


# -- messages and closing --------------------------------------------------


def test_fragments_are_assembled_into_one_message(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.accept()
    pair.from_client(TextMessage(data="hel", message_finished=False))
    pair.from_client(TextMessage(data="lo"))
    pair.from_client(BytesMessage(data=b"\x00", message_finished=False))
    pair.from_client(BytesMessage(data=b"\x01"))
    assert pair.messages() == [
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
    ]


def test_a_message_over_max_size_closes_with_1009(make_pair: MakePair) -> None:
    pair = make_pair(max_size=10)
    pair.accept()
    pair.from_client(BytesMessage(data=b"x" * 10))
    pair.from_client(TextMessage(data="é" * 5, message_finished=False))
    pair.from_client(TextMessage(data="a"))  # the 11th byte
    (close,) = pair.to_client()
    assert isinstance(close, CloseConnection)
    assert close.code == 1009
    assert pair.messages() == [
        {"type": "websocket.receive", "bytes": b"x" * 10},
        {"type": "websocket.disconnect", "code": 1009, "reason": "message too big"},
    ]


def test_a_client_close_is_answered_and_reported(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.accept()
    pair.from_client(CloseConnection(code=4001, reason="ciao"))
    (echo,) = pair.to_client()
    assert isinstance(echo, CloseConnection)
    assert echo.code == 4001
    assert pair.messages() == [
        {"type": "websocket.disconnect", "code": 4001, "reason": "ciao"}
    ]
    assert pair.cycle.reading_done
    with pytest.raises(ClientDisconnected):
        pair.cycle.send({"type": SEND, "text": "late"})
    pair.cycle.send({"type": CLOSE})  # nothing left to close: not a mistake


def test_a_close_without_code_is_reported_as_1005(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.accept()
    pair.from_client(CloseConnection(code=CloseReason.NO_STATUS_RCVD))
    assert pair.messages()[-1]["code"] == 1005


def test_the_disconnect_follows_the_app_close_with_the_client_code(
    make_pair: MakePair,
) -> None:
    pair = make_pair()
    pair.accept()
    pair.cycle.send({"type": CLOSE, "code": 4000, "reason": "bye"})
    (close,) = pair.to_client()
    assert isinstance(close, CloseConnection)
    assert (close.code, close.reason) == (4000, "bye")
    # Sent by the client before it saw the close frame: dropped.
    pair.cycle.receive_data(Connection(ConnectionType.CLIENT).send(TextMessage("x")))
    assert pair.cycle.next_message() == {"type": "websocket.connect"}
    assert pair.cycle.next_message() is None
    pair.from_client(close.response())
    assert pair.messages() == [
        {"type": "websocket.disconnect", "code": 4000, "reason": "bye"}
    ]


def test_the_end_of_the_stream_is_1006(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.accept()
    pair.cycle.receive_data(b"")
    assert pair.messages() == [
        {"type": "websocket.disconnect", "code": 1006, "reason": ""}
    ]


def test_a_client_leaving_before_the_accept_makes_the_accept_fail(
    make_pair: MakePair,
) -> None:
    pair = make_pair()
    assert wants(pair.cycle)
    pair.cycle.receive_data(b"")
    with pytest.raises(ClientDisconnected):
        pair.cycle.send({"type": ACCEPT})
    assert pair.cycle.app_returned(failed=False) is Ending.NOTHING


def test_bytes_before_the_accept_are_held_until_it(make_pair: MakePair) -> None:
    # A client must wait for the 101 before sending frames (RFC 6455 section
    # 4.1); one that does not has its frame kept, and reading stops.
    pair = make_pair()
    pair.cycle.receive_data(
        Connection(ConnectionType.CLIENT).send(TextMessage(data="early"))
    )
    assert not wants(pair.cycle)
    pair.accept()
    assert pair.messages() == [{"type": "websocket.receive", "text": "early"}]


def test_an_unmasked_frame_closes_with_1002_and_stops_reading(
    make_pair: MakePair,
) -> None:
    pair = make_pair()
    pair.accept()
    unmasked = Connection(ConnectionType.SERVER).send(TextMessage(data="x"))
    pair.cycle.receive_data(unmasked)
    (close,) = pair.to_client()
    assert isinstance(close, CloseConnection)
    assert close.code == 1002
    assert pair.messages()[-1]["code"] == 1002
    assert pair.cycle.reading_done


def test_pings_are_answered_and_pongs_matched(make_pair: MakePair) -> None:
    pair = make_pair()
    pair.accept()
    pair.from_client(Ping(payload=b"are you there"))
    assert pair.to_client() == [Pong(payload=b"are you there")]
    assert pair.cycle.ping()
    assert pair.cycle.awaiting_pong
    (ping,) = pair.to_client()
    assert isinstance(ping, Ping)
    pair.from_client(Pong(payload=b"unsolicited"))
    assert pair.cycle.awaiting_pong
    pair.from_client(ping.response())
    assert not pair.cycle.awaiting_pong


def pending(cycle: WebSocketCycle[Any]) -> bool:
    """Whether the cycle has bytes to write (a call: mypy narrows properties)."""
    return cycle.has_data_to_send


def test_only_answers_and_app_messages_leave_output(make_pair: MakePair) -> None:
    """What the reading side may skip flushing: a data frame needs no answer."""
    pair = make_pair()
    pair.accept()
    assert not pending(pair.cycle)
    pair.from_client(BytesMessage(data=b"x" * 100))
    assert not pending(pair.cycle)  # a message needs no answer
    pair.from_client(Ping(payload=b"?"))
    assert pending(pair.cycle)  # the pong
    assert pair.to_client() == [Pong(payload=b"?")]
    assert not pending(pair.cycle)
    pair.cycle.send({"type": "websocket.send", "text": "hi"})
    assert pending(pair.cycle)


def test_the_queue_bound_stops_reading_until_the_app_catches_up(
    make_pair: MakePair,
) -> None:
    pair = make_pair(max_queue=2)
    pair.accept()
    pair.cycle.next_message()  # websocket.connect
    pair.from_client(TextMessage(data="1"))
    assert wants(pair.cycle)
    pair.from_client(TextMessage(data="2"))
    assert not wants(pair.cycle)
    pair.cycle.next_message()
    assert wants(pair.cycle)


def test_a_server_close_reports_at_once_after_queued_messages(
    make_pair: MakePair,
) -> None:
    pair = make_pair()
    pair.accept()
    pair.from_client(TextMessage(data="before"))
    assert pair.cycle.close(1001, "server shutting down")
    assert not pair.cycle.close(1001)  # already closing
    assert not pair.cycle.ping()
    pair.from_client(TextMessage(data="after"))  # dropped
    assert pair.messages() == [
        {"type": "websocket.receive", "text": "before"},
        {
            "type": "websocket.disconnect",
            "code": 1001,
            "reason": "server shutting down",
        },
    ]
    assert not pair.cycle.reading_done  # the client's close frame is awaited
    (close, *_) = pair.to_client()
    assert isinstance(close, CloseConnection)
    pair.from_client(close.response())
    assert pair.cycle.reading_done


@pytest.mark.parametrize(
    ("setup", "failed", "ending", "code"),
    [
        ("connecting", False, Ending.REFUSED, 500),
        ("connecting", True, Ending.REFUSED, 500),
        ("open", False, Ending.CLOSED, 1000),
        ("open", True, Ending.CLOSED, 1011),
        ("denying", False, Ending.ABORT, None),
        ("closed", False, Ending.NOTHING, None),
    ],
)
def test_what_happens_when_the_app_returns(
    setup: str, failed: bool, ending: Ending, code: int | None, make_pair: MakePair
) -> None:
    pair = make_pair()
    if setup == "open":
        pair.accept()
    elif setup == "denying":
        pair.cycle.send(VALID[RESPONSE_START])
    elif setup == "closed":
        pair.accept()
        pair.cycle.send({"type": CLOSE})
    pair.to_client()
    assert pair.cycle.app_returned(failed=failed) is ending
    events = pair.to_client() if ending is not Ending.ABORT else []
    if ending is Ending.REFUSED:
        assert isinstance(events[0], RejectConnection)
        assert events[0].status_code == code
    elif ending is Ending.CLOSED:
        (close,) = events
        assert isinstance(close, CloseConnection)
        assert close.code == code
    else:
        assert events == []


# -- upgrade detection and scope -------------------------------------------


@pytest.mark.parametrize(
    ("method", "version", "headers", "upgrade"),
    [
        ("GET", "1.1", [("upgrade", "websocket"), ("connection", "Upgrade")], True),
        ("GET", "1.1", [("upgrade", "WebSocket"), ("connection", "a, upgrade")], True),
        ("GET", "1.1", [("upgrade", "h2c"), ("connection", "upgrade")], False),
        ("GET", "1.1", [("upgrade", "websocket")], False),
        ("POST", "1.1", [("upgrade", "websocket"), ("connection", "upgrade")], False),
        ("GET", "1.0", [("upgrade", "websocket"), ("connection", "upgrade")], False),
    ],
)
def test_what_counts_as_a_websocket_upgrade(
    method: str, version: str, headers: list[tuple[str, str]], upgrade: bool
) -> None:
    request = h11.Request(
        method=method,
        target="/",
        headers=[("host", "x"), *headers],
        http_version=version,
    )
    assert is_websocket_upgrade(request) is upgrade


def test_the_websocket_scope() -> None:
    request = upgrade_request(
        (b"sec-websocket-protocol", b"chat, superchat"),
        (b"sec-websocket-protocol", b"v3"),
    )
    request = h11.Request(
        method="GET", target="/caf%C3%A9?x=1", headers=list(request.headers)
    )
    info = ConnectionInfo(client=("1.2.3.4", 5), server=("h", 443), scheme="https")
    state = {"db": 1}
    scope = build_websocket_scope(request, info, root_path="/app", state=state)
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["scheme"] == "wss"
    assert scope["path"] == "/app/café"
    assert scope["raw_path"] == b"/app/caf%C3%A9"
    assert scope["query_string"] == b"x=1"
    assert scope["root_path"] == "/app"
    assert scope["subprotocols"] == ["chat", "superchat", "v3"]
    assert scope["client"] == ("1.2.3.4", 5)
    assert scope["server"] == ("h", 443)
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert scope["state"] == state
    assert scope["state"] is not state
    assert (b"upgrade", b"websocket") in scope["headers"]
    plain = build_websocket_scope(request, ConnectionInfo())
    assert plain["scheme"] == "ws"


def test_offered_subprotocols_skip_empty_tokens() -> None:
    assert offered_subprotocols([(b"sec-websocket-protocol", b" a,,b ,")]) == [
        "a",
        "b",
    ]


def test_the_docs_state_diagram_matches_the_table() -> None:
    text = DOCS_PAGE.read_text(encoding="utf-8")
    diagram = text.split("```mermaid\nstateDiagram-v2", 1)[1].split("```", 1)[0]
    edges = set(re.findall(r"(\w+) --> \w+: ([\w.]+)", diagram))
    table = {(phase.name, message) for phase, message in TRANSITIONS}
    assert edges == table
