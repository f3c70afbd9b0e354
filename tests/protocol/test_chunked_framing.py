"""The strict reading of chunked framing, beside h11: what it refuses and what it takes."""

from __future__ import annotations

import h11
import hypothesis
import pytest
from hypothesis import strategies as st

from trasgi._protocol.strict import ChunkedFraming

REFUSED = [
    ("whitespace after the size", b"5 \r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("bare CR in an extension", b"5;a\rb\r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("bare LF after the size", b"5\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("0x size", b"0x5\r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("signed size", b"+5\r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("underscore in the size", b"1_0\r\n", "chunk size line"),
    ("21 digits", b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("NUL in an extension", b"5;a=\x00\r\nhello\r\n0\r\n\r\n", "chunk size line"),
    ("data longer than its size", b"2\r\nhello\r\n0\r\n\r\n", "not followed by CRLF"),
    ("data ended by a bare LF", b"5\r\nhello\n0\r\n\r\n", "not followed by CRLF"),
    ("trailer ended by a bare LF", b"0\r\nT: 1\n\r\n", "trailer line"),
    ("folded trailer", b"0\r\nT: 1\r\n 2\r\n\r\n", "trailer line"),
    ("trailer without a colon", b"0\r\nT\r\n\r\n", "trailer line"),
    ("empty trailer name", b"0\r\n: x\r\n\r\n", "trailer line"),
    ("control character in a trailer", b"0\r\nT: a\x01b\r\n\r\n", "trailer line"),
    ("bare CR in a trailer", b"0\r\nT: a\rb\r\n\r\n", "trailer line"),
    ("last chunk ended by a bare LF", b"0\n\r\n", "chunk size line"),
    ("a size line that never ends", b"5" * 100, "size line too long"),
    ("a trailer that never ends", b"0\r\nT: " + b"x" * 100, "trailer section too long"),
]

TAKEN = [
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n"),
    ("no chunk", b"0\r\n\r\n"),
    ("several chunks", b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n"),
    ("upper and lower hex", b"a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n"),
    ("an extension", b"5;name=value\r\nhello\r\n0;last\r\n\r\n"),
    ("a quoted extension", b'5;a="b c"\r\nhello\r\n0\r\n\r\n'),
    # RFC 9112 allows BWS before ";" (h11 itself refuses it, with 400).
    ("whitespace before an extension", b"5 ;a\r\nhello\r\n0\r\n\r\n"),
    ("trailers", b"5\r\nhello\r\n0\r\nT: 1\r\nU:\t\xa0two words \r\n\r\n"),
    ("data holding CR and LF", b"4\r\n\r\n\r\n\r\n0\r\n\r\n"),
]


def feed(body: bytes, *, byte_by_byte: bool, max_line: int = 64) -> ChunkedFraming:
    framing = ChunkedFraming(max_line)
    pieces = [body[i : i + 1] for i in range(len(body))] if byte_by_byte else [body]
    for piece in pieces:
        framing.feed(piece)
    return framing


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize(
    ("name", "body", "reason"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_refused(name: str, body: bytes, reason: str, byte_by_byte: bool) -> None:
    framing = feed(body, byte_by_byte=byte_by_byte)
    assert framing.fault is not None
    assert reason in framing.fault
    assert not framing.finished


@pytest.mark.parametrize("byte_by_byte", [False, True])
@pytest.mark.parametrize(("name", "body"), TAKEN, ids=[c[0] for c in TAKEN])
def test_taken_to_its_end_and_no_further(
    name: str, body: bytes, byte_by_byte: bool
) -> None:
    # What follows the body (a pipelined request, or garbage) is not its concern.
    framing = feed(body + b"\x00 not a chunk\n", byte_by_byte=byte_by_byte)
    assert framing.fault is None
    assert framing.finished


def test_an_incomplete_body_is_neither_refused_nor_finished() -> None:
    framing = feed(b"5\r\nhel", byte_by_byte=False)
    assert framing.fault is None
    assert not framing.finished
    framing.feed(b"")  # the end of input: the parser reports it
    assert framing.fault is None


def h11_decodes(body: bytes) -> tuple[bytes, bytes] | None:
    """h11's reading of a chunked body: the data and what follows, or None."""
    parser = h11.Connection(h11.SERVER)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    parser.receive_data(head + body)
    data = b""
    try:
        while True:
            event = parser.next_event()
            if isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage):
                return data, parser.trailing_data[0]
            elif event is h11.NEED_DATA:
                return None
    except h11.RemoteProtocolError:
        return None


_EXTENSIONS = st.sampled_from([b"", b";a", b";a=b", b';a="x y"', b";\xa0"])
_TRAILERS = st.lists(
    st.sampled_from([b"T: 1\r\n", b"U:\r\n", b"V: a b\r\n"]), max_size=3
)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> bytes:
    body = b""
    for data in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        body += b"%x" % len(data) + draw(_EXTENSIONS) + b"\r\n" + data + b"\r\n"
    return (
        body + b"0" + draw(_EXTENSIONS) + b"\r\n" + b"".join(draw(_TRAILERS)) + b"\r\n"
    )


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    body=chunked_bodies(), after=st.binary(max_size=10), cut=st.integers(0, 100)
)
def test_a_valid_body_ends_where_h11_ends_it(
    body: bytes, after: bytes, cut: int
) -> None:
    decoded = h11_decodes(body + after)
    assert decoded is not None
    assert decoded[1] == after
    framing = ChunkedFraming(1024)
    framing.feed(body[:cut])
    framing.feed(body[cut:] + after)
    assert framing.fault is None
    assert framing.finished
