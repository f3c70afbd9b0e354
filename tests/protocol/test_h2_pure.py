"""The pure HTTP/2 cores, by tables of cases: request heads, response cycle, adaptor."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import pytest

from trasgi._errors import ASGIProtocolError, PeerError
from trasgi._protocol.cycle import Phase
from trasgi._protocol.h2_adaptor import (
    BodyData,
    BodyEnd,
    ConnectionEnded,
    ErrorCode,
    FloodLimits,
    H2Adaptor,
    PeerReset,
    RequestHead,
)
from trasgi._protocol.h2_cycle import H2ResponseCycle, ResponseData, ResponseHead
from trasgi._protocol.h2_request import (
    MalformedRequest,
    malformed_trailers,
    parse_h2_request,
)
from trasgi._protocol.h2c import asks_h2c, settings_payload
from trasgi._protocol.strict import HeadLimits

LIMITS = HeadLimits(max_target=64, max_fields=4, max_body=100)
GET = [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/a?b=1")]
HOST = [(b":authority", b"example.org")]


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ([(b":method", b"CONNECT"), (b":authority", b"x:1")], 405),
        ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"a"), *HOST], 400),
        ([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"*"), *HOST], 400),
        ([(b":method", b"G T"), (b":scheme", b"http"), (b":path", b"/"), *HOST], 400),
        ([*GET[:2], (b":path", b"/" + b"a" * 64), *HOST], 414),
        ([*GET, *HOST, *[(b"x-%d" % i, b"v") for i in range(5)]], 431),
        ([*GET, *HOST, (b"content-length", b"101")], 413),
        ([*GET, *HOST, (b"content-length", b"1e3")], 400),
        ([*GET, *HOST, (b"x", b"a\x01b")], 400),
        ([*GET, *HOST, (b"x(y", b"v")], 400),
    ],
)
def test_refused_request_heads(fields: list[tuple[bytes, bytes]], status: int) -> None:
    with pytest.raises(PeerError) as caught:
        parse_h2_request(fields, LIMITS)
    assert caught.value.status_code == status


@pytest.mark.parametrize(
    "fields",
    [
        # RFC 9113 section 8.2.1: forbidden characters.
        [*GET, *HOST, (b"X-Upper", b"v")],
        [*GET, *HOST, (b"x y", b"v")],
        [*GET, *HOST, (b"x:y", b"v")],
        [*GET, *HOST, (b"", b"v")],
        [*GET, *HOST, (b"x\xe9", b"v")],
        [*GET, *HOST, (b"x", b" padded")],
        [*GET, *HOST, (b"x", b"padded\t")],
        [*GET, *HOST, (b"x", b"a\x00b")],
        [*GET, *HOST, (b"x", b"a\rb")],
        [*GET, *HOST, (b"x", b"a\nb")],
        # Section 8.2.2: connection-specific fields; te other than trailers.
        *[[*GET, *HOST, (name, b"x")] for name in (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")],
        [*GET, *HOST, (b"te", b"gzip")],
        # Section 8.3: pseudo-header fields unknown, repeated, late, missing.
        [*GET, *HOST, (b":status", b"200")],
        [*GET, *HOST, (b":custom", b"x")],
        [*GET, *HOST, (b":path", b"/again")],
        [*GET[:2], (b"x", b"1"), GET[2], *HOST],
        [GET[0], GET[2], *HOST],
        [GET[1], GET[2], *HOST],
        [GET[0], GET[1], *HOST],
        [GET[0], GET[1], (b":path", b""), *HOST],
        [*GET, *HOST, (b":protocol", b"websocket")],
        # Section 8.3.1: no authority, two hosts, a host naming another.
        GET,
        [*GET, (b"host", b"a"), (b"host", b"a")],
        [*GET, *HOST, (b"host", b"other.org")],
    ],
)  # fmt: skip
def test_malformed_request_heads(fields: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(MalformedRequest):
        parse_h2_request(fields, LIMITS)


def test_te_trailers_and_a_host_field_alone_are_accepted() -> None:
    request = parse_h2_request(
        [*GET, (b"te", b"trailers"), (b"host", b"example.org")], LIMITS
    )
    assert request.header(b"host") == b"example.org"


@pytest.mark.parametrize(
    ("fields", "malformed"),
    [
        ([(b"x-checksum", b"abc")], False),
        ([], False),
        ([(b":path", b"/")], True),
        ([(b"X-Upper", b"v")], True),
        ([(b"x", b"a\nb")], True),
    ],
)
def test_malformed_trailers(fields: list[tuple[bytes, bytes]], malformed: bool) -> None:
    assert (malformed_trailers(fields) is not None) is malformed


def test_authority_is_host_first_and_cookies_are_joined() -> None:
    request = parse_h2_request(
        [
            *GET,
            (b":authority", b"example.org"),
            (b"cookie", b"a=1"),
            (b"host", b"example.org"),
            (b"cookie", b"b=2"),
        ],
        LIMITS,
    )
    assert request.method == b"GET"
    assert request.target == b"/a?b=1"
    assert list(request.headers) == [
        (b"host", b"example.org"),
        (b"cookie", b"a=1; b=2"),
    ]
    assert request.http_version == b"2.0"


def test_options_star_and_extended_connect_are_accepted() -> None:
    star = [(b":method", b"OPTIONS"), (b":scheme", b"http"), (b":path", b"*"), *HOST]
    assert parse_h2_request(star, LIMITS).target == b"*"
    connect = [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"http"),
        (b":path", b"/chat"),
        *HOST,
    ]
    assert parse_h2_request(connect, LIMITS).protocol == b"websocket"


START = {"type": "http.response.start", "status": 200, "headers": []}


def body(data: bytes = b"", more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


@pytest.mark.parametrize(
    ("method", "start", "bodies", "expected"),
    [
        # A whole body: its length is declared.
        ("GET", START, [body(b"hi")], [ResponseHead(200, [(b"content-length", b"2")], False), ResponseData(b"hi", True)]),
        # Streamed: no length, the last piece ends the stream.
        ("GET", START, [body(b"a", True), body(b"", True), body(b"b")], [ResponseHead(200, [], False), ResponseData(b"a", False), ResponseData(b"b", True)]),
        # Empty: the head ends the stream.
        ("GET", START, [body()], [ResponseHead(200, [(b"content-length", b"0")], True)]),
        # HEAD: no body, whatever the application sends.
        ("HEAD", START, [body(b"ignored")], [ResponseHead(200, [], True)]),
        # 204: no body.
        ("GET", {**START, "status": 204}, [body()], [ResponseHead(204, [], True)]),
        # Connection-specific fields are dropped, names lowered.
        ("GET", {**START, "headers": [(b"Connection", b"close"), (b"TE", b"x"), (b"X-A", b"1")]}, [body()], [ResponseHead(200, [(b"x-a", b"1"), (b"content-length", b"0")], True)]),
    ],
)  # fmt: skip
def test_response_framing(
    method: str,
    start: dict[str, Any],
    bodies: list[dict[str, Any]],
    expected: list[Any],
) -> None:
    cycle = H2ResponseCycle(method.encode())
    out: list[Any] = cycle.send(start)
    for message in bodies:
        out += cycle.send(message)
    assert out == expected
    assert cycle.phase is Phase.COMPLETE


@pytest.mark.parametrize(
    ("headers", "bodies", "mistake"),
    [
        ([(b"content-length", b"3")], [body(b"ab")], "fewer body bytes"),
        ([(b"content-length", b"1")], [body(b"ab")], "more body bytes"),
        (
            [(b"content-length", b"3")],
            [body(b"a", True), body(b"b")],
            "fewer body bytes",
        ),
        ([(b"content-length", b"x")], [body()], "malformed Content-Length"),
    ],
)
def test_response_mistakes(
    headers: list[tuple[bytes, bytes]], bodies: list[dict[str, Any]], mistake: str
) -> None:
    cycle = H2ResponseCycle(b"GET")
    cycle.send({**START, "headers": headers})
    for message in bodies[:-1]:
        cycle.send(message)
    with pytest.raises(ASGIProtocolError, match=mistake):
        cycle.send(bodies[-1])
    assert cycle.phase is Phase.FAILED


def client() -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    return conn


def test_adaptor_turns_frames_into_neutral_events() -> None:
    adaptor = H2Adaptor()
    adaptor.start()
    peer = client()
    peer.send_headers(1, [*GET, (b":authority", b"x")])
    peer.send_data(1, b"body", end_stream=True)
    peer.send_headers(3, [*GET, (b":authority", b"x")], end_stream=True)
    peer.reset_stream(3)
    events = adaptor.receive(peer.data_to_send(), now=0.0)
    # The client's SETTINGS open every window first (WindowOpened).
    kinds = [type(event) for event in events[1:]]
    assert kinds == [RequestHead, BodyData, BodyEnd, RequestHead, BodyEnd, PeerReset]
    head = events[1]
    assert isinstance(head, RequestHead)
    assert not head.end_stream
    assert events[2] == BodyData(1, b"body", 4)
    assert adaptor.data_to_send()  # SETTINGS and its ACK


@pytest.mark.parametrize("limits", ["resets", "control_frames", "empty_frames"])
def test_floods_end_the_connection_calmly(limits: str) -> None:
    adaptor = H2Adaptor(floods=FloodLimits(**{limits: 3}))
    adaptor.start()
    peer = client()
    for stream_id in range(1, 13, 2):
        if limits == "resets":
            peer.send_headers(stream_id, [*GET, (b":authority", b"x")])
            peer.reset_stream(stream_id)
        elif limits == "control_frames":
            peer.ping(b"%08d" % stream_id)
        else:
            if stream_id == 1:
                peer.send_headers(1, [*GET, (b":authority", b"x")])
            peer.send_data(1, b"")
    events = adaptor.receive(peer.data_to_send(), now=5.5)
    ended = events[-1]
    assert isinstance(ended, ConnectionEnded)
    assert ended.error_code == ErrorCode.ENHANCE_YOUR_CALM


def test_the_budget_is_per_second() -> None:
    adaptor = H2Adaptor(floods=FloodLimits(control_frames=2))
    adaptor.start()
    peer = client()
    adaptor.receive(peer.data_to_send(), now=0.0)
    for second in range(5):
        peer.ping(b"12345678")
        events = adaptor.receive(peer.data_to_send(), now=second + 0.5)
        assert not any(isinstance(event, ConnectionEnded) for event in events)


@pytest.mark.parametrize(
    ("headers", "asks"),
    [
        ([(b"upgrade", b"h2c"), (b"connection", b"Upgrade, HTTP2-Settings")], True),
        (
            [
                (b"upgrade", b"websocket, h2c"),
                (b"connection", b"upgrade,http2-settings"),
            ],
            True,
        ),
        ([(b"upgrade", b"h2c"), (b"connection", b"Upgrade")], False),
        ([(b"upgrade", b"h2"), (b"connection", b"Upgrade, HTTP2-Settings")], False),
        ([(b"connection", b"Upgrade, HTTP2-Settings")], False),
    ],
)
def test_asks_h2c(headers: list[tuple[bytes, bytes]], asks: bool) -> None:
    assert asks_h2c(headers) is asks


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"AAMAAABkAAQAAP__"], b"AAMAAABkAAQAAP__"),  # two settings, unpadded
        ([b""], b""),  # no settings at all is valid
        ([b"AAMAAABk"], b"AAMAAABk"),  # one setting
        ([b"AAMA"], None),  # 3 bytes: not a whole setting
        ([b"not base64!"], None),
        ([b"AAMAAABkAAQAAP__", b"AAMAAABkAAQAAP__"], None),  # two fields
        ([], None),
    ],
)
def test_settings_payload(values: list[bytes], expected: bytes | None) -> None:
    headers = [(b"http2-settings", value) for value in values]
    assert settings_payload(headers) == expected
