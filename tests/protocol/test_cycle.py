"""The pure response cycle: tables of message sequences, no I/O at all."""

from __future__ import annotations

from typing import Any

import h11
import pytest

from trasgi._errors import ASGIProtocolError
from trasgi._protocol.cycle import TRANSITIONS, H1Out, Phase, ResponseCycle, explain
from trasgi._protocol.extensions import FileRegion

START = {"type": "http.response.start", "status": 200, "headers": []}
START_CL5 = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"5")],
}
BODY = {"type": "http.response.body", "body": b"hello"}
MORE = {"type": "http.response.body", "body": b"hel", "more_body": True}


def cycle_for(
    method: bytes = b"GET", http_version: bytes = b"1.1", keep_alive: bool = True
) -> ResponseCycle:
    return ResponseCycle(
        method,
        http_version,
        keep_alive=keep_alive and http_version == b"1.1",
        extra_headers=[(b"server", b"trasgi")],
    )


def parse(data: bytes, method: bytes = b"GET") -> tuple[h11.Response, bytes]:
    """Parse response bytes with an h11 client: they must be well-formed."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    head = client.next_event()
    assert isinstance(head, h11.Response)
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.EndOfMessage):
            return head, body
        assert isinstance(event, h11.Data), event
        body += event.data


def joined(pieces: list[H1Out]) -> bytes:
    """The bytes of pieces that hold no file region."""
    assert all(isinstance(piece, (bytes, memoryview)) for piece in pieces)
    return b"".join(bytes(p) for p in pieces if not isinstance(p, FileRegion))


def run(cycle: ResponseCycle, *messages: dict[str, Any]) -> bytes:
    return b"".join(joined(cycle.send(dict(m))) for m in messages)


def test_head_is_held_until_the_first_body_message() -> None:
    cycle = cycle_for()
    assert cycle.send(dict(START)) == []
    assert (cycle.phase, cycle.wrote_anything) == (Phase.STARTED, False)
    data = joined(cycle.send(dict(BODY)))
    assert (cycle.phase, cycle.wrote_anything) == (Phase.COMPLETE, True)
    head, body = parse(data)
    assert head.status_code == 200
    assert head.reason == b"OK"
    assert body == b"hello"


@pytest.mark.parametrize(
    ("messages", "body", "framing"),
    [
        ((START_CL5, BODY), b"hello", (b"content-length", b"5")),
        # A body given whole gets a Content-Length rather than chunks.
        ((START, BODY), b"hello", (b"content-length", b"5")),
        (
            (START, MORE, {"type": "http.response.body", "body": b"lo"}),
            b"hello",
            (b"transfer-encoding", b"chunked"),
        ),
        (
            (START, MORE, MORE, {"type": "http.response.body"}),
            b"helhel",
            (b"transfer-encoding", b"chunked"),
        ),
        ((START, {"type": "http.response.body"}), b"", (b"content-length", b"0")),
        (
            ({**START, "headers": [(b"transfer-encoding", b"chunked")]}, BODY),
            b"hello",
            (b"transfer-encoding", b"chunked"),
        ),
    ],
)
def test_valid_sequences(
    messages: tuple[dict[str, Any], ...], body: bytes, framing: tuple[bytes, bytes]
) -> None:
    cycle = cycle_for()
    head, received = parse(run(cycle, *messages))
    assert received == body
    assert framing in head.headers
    assert cycle.body_bytes == len(body)


def test_http10_response_without_length_is_close_delimited() -> None:
    cycle = cycle_for(http_version=b"1.0")
    data = run(cycle, START, MORE, {"type": "http.response.body", "body": b"lo"})
    assert b"transfer-encoding" not in data.lower()
    assert data.endswith(b"\r\n\r\nhello")
    assert b"connection: close" in data.lower()
    assert cycle.must_close


def test_head_response_drops_the_body_but_keeps_the_length() -> None:
    cycle = cycle_for(b"HEAD")
    data = run(cycle, START_CL5, BODY)
    assert data.endswith(b"\r\n\r\n")
    assert b"content-length: 5" in data.lower()
    assert cycle.phase is Phase.COMPLETE


def test_server_headers_are_added_unless_the_app_set_them() -> None:
    cycle = cycle_for()
    head, _ = parse(run(cycle, START_CL5, BODY))
    assert (b"server", b"trasgi") in head.headers
    cycle = cycle_for()
    start = {**START_CL5, "headers": [(b"content-length", b"5"), (b"Server", b"mine")]}
    head, _ = parse(run(cycle, start, BODY))
    assert [v for n, v in head.headers if n == b"server"] == [b"mine"]


def test_close_after_adds_connection_close() -> None:
    cycle = cycle_for()
    cycle.close_after = True
    head, _ = parse(run(cycle, START_CL5, BODY))
    assert (b"connection", b"close") in head.headers
    assert cycle.must_close


def test_request_without_keep_alive_closes() -> None:
    cycle = cycle_for(keep_alive=False)
    head, _ = parse(run(cycle, START_CL5, BODY))
    assert (b"connection", b"close") in head.headers
    assert cycle.must_close


def test_apps_own_connection_close_is_kept_once() -> None:
    cycle = cycle_for()
    start = {
        **START_CL5,
        "headers": [(b"content-length", b"5"), (b"Connection", b"close")],
    }
    head, _ = parse(run(cycle, start, BODY))
    assert [v for n, v in head.headers if n == b"connection"] == [b"close"]
    assert cycle.must_close


def test_keep_alive_response_has_no_connection_header() -> None:
    cycle = cycle_for()
    head, _ = parse(run(cycle, START_CL5, BODY))
    assert b"connection" not in dict(head.headers)
    assert not cycle.must_close


def test_head_without_length_gets_no_framing_header() -> None:
    cycle = cycle_for(b"HEAD")
    data = run(
        cycle,
        START,
        {"type": "http.response.body", "body": b"x", "more_body": True},
        BODY,
    )
    assert b"transfer-encoding" not in data.lower()
    assert data.endswith(b"\r\n\r\n")


def test_large_body_is_handed_over_without_a_copy() -> None:
    body = b"x" * 1_000_000
    cycle = cycle_for()
    pieces = cycle.send(dict(START_CL5, headers=[(b"content-length", b"1000000")]))
    pieces = cycle.send({"type": "http.response.body", "body": body})
    assert any(piece is body for piece in pieces)


#: Out-of-order and unknown messages: (before, the bad one, words of the log line)
MISTAKES = [
    ((), BODY, "'http.response.body' before 'http.response.start'"),
    ((START,), START, "'http.response.start' twice"),
    ((START, MORE), START, "after the response body began"),
    ((START_CL5, BODY), BODY, "after the final body message"),
    ((START_CL5, BODY), START, "after the response was complete"),
    ((), {"type": "http.response.bogus"}, "unknown type 'http.response.bogus'"),
    ((), {"type": "websocket.send"}, "unknown type 'websocket.send'"),
    ((), {}, "unknown type None"),
    ((START,), {"type": "lifespan.startup.complete"}, "unknown type"),
]


@pytest.mark.parametrize(("before", "bad", "words"), MISTAKES)
def test_out_of_order_messages_name_the_mistake(
    before: tuple[dict[str, Any], ...], bad: dict[str, Any], words: str
) -> None:
    cycle = cycle_for()
    run(cycle, *before)
    with pytest.raises(
        ASGIProtocolError, match=words.replace("(", r"\(").replace(")", r"\)")
    ):
        cycle.send(dict(bad))
    assert cycle.phase is Phase.FAILED
    with pytest.raises(ASGIProtocolError, match="after an earlier ASGI mistake"):
        cycle.send(dict(BODY))


@pytest.mark.parametrize(
    ("start", "words"),
    [
        ({"type": "http.response.start", "status": 99}, "integer status 200-599"),
        ({"type": "http.response.start", "status": 600}, "integer status 200-599"),
        ({"type": "http.response.start", "status": 101}, "integer status 200-599"),
        ({"type": "http.response.start", "status": "200"}, "integer status"),
        ({"type": "http.response.start", "status": True}, "integer status"),
        ({"type": "http.response.start"}, "integer status"),
        (
            {"type": "http.response.start", "status": 200, "headers": [("a", "b")]},
            "pairs of bytes",
        ),
        (
            {"type": "http.response.start", "status": 200, "headers": [(b"a",)]},
            "pairs of bytes",
        ),
        (
            {"type": "http.response.start", "status": 200, "headers": 5},
            "iterable of pairs",
        ),
        (
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"a", b"x\r\nb: y")],
            },
            "invalid header",
        ),
        (
            {"type": "http.response.start", "status": 200, "headers": [(b"a b", b"x")]},
            "invalid header",
        ),
        (
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"a", b"x\x00")],
            },
            "invalid header",
        ),
    ],
)
def test_malformed_start(start: dict[str, Any], words: str) -> None:
    cycle = cycle_for()
    with pytest.raises(ASGIProtocolError, match=words):
        cycle.send(start)
    assert not cycle.wrote_anything


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        (
            (START_CL5, {"type": "http.response.body", "body": b"too long!"}),
            "more body bytes than its Content-Length",
        ),
        (
            (START_CL5, {"type": "http.response.body", "body": b"hi"}),
            "fewer body bytes",
        ),
        (({**START, "status": 204}, BODY), "body with a 204 response"),
        (({**START, "status": 304}, BODY), "body with a 304 response"),
        ((START, {"type": "http.response.body", "body": "text"}), "body must be bytes"),
        (
            (
                {
                    **START,
                    "headers": [
                        (b"content-length", b"5"),
                        (b"transfer-encoding", b"chunked"),
                    ],
                },
                BODY,
            ),
            "both Content-Length and Transfer-Encoding",
        ),
        (
            ({**START, "headers": [(b"content-length", b"5x")]}, BODY),
            "malformed Content-Length",
        ),
        (
            ({**START, "headers": [(b"content-length", b"-5")]}, BODY),
            "malformed Content-Length",
        ),
        (
            ({**START, "headers": [(b"transfer-encoding", b"gzip")]}, BODY),
            "only chunked is framed",
        ),
    ],
)
def test_framing_mistakes(messages: tuple[dict[str, Any], ...], words: str) -> None:
    cycle = cycle_for()
    with pytest.raises(ASGIProtocolError, match=words):
        run(cycle, *messages)
    # The bytes were never handed out: the server can still answer 500.
    assert not cycle.wrote_anything


def test_bytes_written_before_a_mistake_are_reported() -> None:
    cycle = cycle_for()
    run(
        cycle,
        START_CL5,
        {"type": "http.response.body", "body": b"hel", "more_body": True},
    )
    with pytest.raises(ASGIProtocolError):
        cycle.send({"type": "http.response.body", "body": b"lo!!"})
    assert cycle.wrote_anything  # so the connection must be aborted


def test_every_phase_message_pair_is_either_a_transition_or_explained() -> None:
    for phase in Phase:
        for kind in ("http.response.start", "http.response.body", "http.request", None):
            if (phase, kind) in TRANSITIONS:
                continue
            assert explain(phase, kind)
