"""h11 and httptools, side by side: the same decision and request for every input.

Each input is fed to both parsers in the same pieces, then read as the
HTTP/1.1 connection reads it: the head checked by the strict layer (and the
head size limit), the body and trailers to their end. The outcome is either
a refusal with its status, or what was parsed: method, target, version,
header fields, body, trailers, and what is left for the next request.
``TRASGI_FUZZ_EXAMPLES`` raises the generated examples' count for deeper runs
(``bench/fuzz_deep.py``).
"""

from __future__ import annotations

import os
from typing import Any

import h11
import hypothesis
import pytest
from hypothesis import strategies as st

from trasgi._errors import PeerError
from trasgi._protocol.h1_parsers import (
    H1Parser,
    HttptoolsParser,
    parser_factory,
)
from trasgi._protocol.strict import HeadLimits, check_head

MAX_HEAD = 4096
EXAMPLES = int(os.environ.get("TRASGI_FUZZ_EXAMPLES", "400"))
LIMITS = HeadLimits(max_target=256, max_fields=20, max_body=10_000)

Outcome = tuple[Any, ...]


def read_request(parser: H1Parser, pieces: list[bytes]) -> Outcome:
    """Feed ``pieces`` then the end of input; what the connection would make of it."""
    head: h11.Request | None = None
    expects_continue = False
    body = b""
    for piece in [*pieces, b""]:
        buffered = parser.trailing_data[0]
        parser.receive_data(piece)
        try:
            while True:
                before = parser.trailing_data[0]
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Request):
                    raw = before[: len(before) - len(parser.trailing_data[0])]
                    if len(raw) > MAX_HEAD:
                        return ("refused", 431)
                    check_head(event, raw, LIMITS)
                    head = event
                    expects_continue = parser.client_is_waiting_for_100_continue
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    assert head is not None
                    return (
                        "request",
                        head.method,
                        head.target,
                        head.http_version,
                        list(head.headers.raw_items()),
                        expects_continue,
                        body,
                        list(event.headers.raw_items()),
                        parser.trailing_data[0],
                    )
                else:
                    return ("closed", type(event).__name__)
        except h11.RemoteProtocolError as exc:
            return ("refused", exc.error_status_hint)
        except PeerError as exc:
            return ("refused", exc.status_code)
        del buffered
    return ("incomplete",)


def both(pieces: list[bytes]) -> tuple[Outcome, Outcome]:
    h11_parser = parser_factory("h11", MAX_HEAD)()
    fast = parser_factory("httptools", MAX_HEAD)()
    assert isinstance(fast, HttptoolsParser)
    return read_request(h11_parser, pieces), read_request(fast, pieces)


def head(*fields: bytes, line: bytes = b"POST / HTTP/1.1") -> bytes:
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


HOST = b"Host: example.com"
CHUNKED = b"Transfer-Encoding: chunked"

#: Known smuggling vectors, and plain requests around them (name, input).
CORPUS: list[tuple[str, bytes]] = [
    ("plain GET", head(HOST, line=b"GET /a?b=c HTTP/1.1")),
    ("HTTP/1.0 without Host", head(line=b"GET / HTTP/1.0")),
    ("missing Host", head(line=b"GET / HTTP/1.1")),
    ("two Hosts", head(HOST, HOST)),
    ("unknown method", head(HOST, line=b"BREW /pot HTTP/1.1")),
    ("lower-case method", head(HOST, line=b"get / HTTP/1.1")),
    ("HTTP/1.2", head(HOST, line=b"GET / HTTP/1.2")),
    ("HTTP/2.0 line", head(HOST, line=b"GET / HTTP/2.0")),
    ("HTTP/0.9 line", b"GET /\r\n\r\n"),
    ("asterisk target", head(HOST, line=b"OPTIONS * HTTP/1.1")),
    ("absolute target", head(HOST, line=b"GET http://a/b?c#d HTTP/1.1")),
    ("authority target", head(HOST, line=b"CONNECT a:443 HTTP/1.1")),
    ("odd target bytes", head(HOST, line=b'GET /a{}|"^`\\ HTTP/1.1')),
    ("obs-text target", head(HOST, line=b"GET /\x80 HTTP/1.1")),
    ("two spaces in the line", head(HOST, line=b"GET  / HTTP/1.1")),
    ("tab in the line", head(HOST, line=b"GET\t/ HTTP/1.1")),
    ("leading CRLF", b"\r\n" + head(HOST, line=b"GET / HTTP/1.1")),
    ("body by length", head(HOST, b"Content-Length: 5") + b"hello"),
    ("zero length", head(HOST, b"Content-Length: 0")),
    ("length with 0x", head(HOST, b"Content-Length: 0x5") + b"hello"),
    ("length with _", head(HOST, b"Content-Length: 1_0") + b"0123456789"),
    ("length with +", head(HOST, b"Content-Length: +5") + b"hello"),
    ("length with -", head(HOST, b"Content-Length: -5") + b"hello"),
    ("length with spaces", head(HOST, b"Content-Length:  5 ") + b"hello"),
    ("length list, same", head(HOST, b"Content-Length: 5, 5") + b"hello"),
    ("length list, differing", head(HOST, b"Content-Length: 5, 6") + b"hello"),
    (
        "duplicate lengths, same",
        head(HOST, b"Content-Length: 5", b"Content-Length: 5") + b"hello",
    ),
    (
        "duplicate lengths, differing",
        head(HOST, b"Content-Length: 5", b"Content-Length: 6") + b"hello",
    ),
    ("length of 21 digits", head(HOST, b"Content-Length: " + b"1" * 21)),
    ("length over the limit", head(HOST, b"Content-Length: 10001")),
    ("CL and TE", head(HOST, b"Content-Length: 5", CHUNKED) + b"0\r\n\r\n"),
    ("TE and CL", head(HOST, CHUNKED, b"Content-Length: 5") + b"0\r\n\r\n"),
    ("TE ,chunked", head(HOST, b"Transfer-Encoding: ,chunked") + b"0\r\n\r\n"),
    ("TE chunked,", head(HOST, b"Transfer-Encoding: chunked,") + b"0\r\n\r\n"),
    ("TE gzip, chunked", head(HOST, b"Transfer-Encoding: gzip, chunked")),
    ("TE Chunked", head(HOST, b"Transfer-Encoding: Chunked") + b"0\r\n\r\n"),
    ("TE twice", head(HOST, CHUNKED, CHUNKED) + b"0\r\n\r\n"),
    ("TE on HTTP/1.0", head(CHUNKED, line=b"POST / HTTP/1.0") + b"0\r\n\r\n"),
    ("TE with \\x0b", head(HOST, b"Transfer-Encoding:\x0bchunked") + b"0\r\n\r\n"),
    ("chunked body", head(HOST, CHUNKED) + b"5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size 0x", head(HOST, CHUNKED) + b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size _", head(HOST, CHUNKED) + b"1_0\r\n0123456789abcdef\r\n0\r\n\r\n"),
    ("chunk size +", head(HOST, CHUNKED) + b"+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size -", head(HOST, CHUNKED) + b"-5\r\nhello\r\n0\r\n\r\n"),
    ("chunk size space", head(HOST, CHUNKED) + b"5 \r\nhello\r\n0\r\n\r\n"),
    (
        "chunk size 21 digits",
        head(HOST, CHUNKED) + b"0" * 20 + b"5\r\nhello\r\n0\r\n\r\n",
    ),
    ("oversized chunk", head(HOST, CHUNKED) + b"fffffffffff\r\nhello"),
    ("chunk extension", head(HOST, CHUNKED) + b"5;a=b\r\nhello\r\n0\r\n\r\n"),
    ("chunk extension LF", head(HOST, CHUNKED) + b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
    ("chunk extension CR", head(HOST, CHUNKED) + b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
    ("chunk size bare LF", head(HOST, CHUNKED) + b"5\nhello\r\n0\r\n\r\n"),
    ("chunk data bare LF", head(HOST, CHUNKED) + b"5\r\nhello\n0\r\n\r\n"),
    ("chunk data too long", head(HOST, CHUNKED) + b"5\r\nhelloX\r\n0\r\n\r\n"),
    ("last chunk bare LF", head(HOST, CHUNKED) + b"0\n\r\n"),
    ("trailers", head(HOST, CHUNKED) + b"0\r\nT: 1\r\nU: 2\r\n\r\n"),
    ("trailer bare LF", head(HOST, CHUNKED) + b"0\r\nT: 1\n\r\n"),
    ("trailer with NUL", head(HOST, CHUNKED) + b"0\r\nT: \x00\r\n\r\n"),
    (
        "oversized trailer",
        head(HOST, CHUNKED) + b"0\r\nT: " + b"x" * 5000 + b"\r\n\r\n",
    ),
    ("NUL in a value", head(HOST, b"X: a\x00b")),
    ("CR in a value", head(HOST, b"X: a\rb")),
    ("LF in a value", head(HOST, b"X: a\nb")),
    ("DEL in a value", head(HOST, b"X: a\x7fb")),
    ("\\x01 in a value", head(HOST, b"X: \x01")),
    ("\\xa0 around a value", head(HOST, b"X: \xa0a\xa0")),
    ("\\x85 around a value", head(HOST, b"X: \x85a\x85")),
    ("tab around a value", head(HOST, b"X:\ta \t")),
    ("empty value", head(HOST, b"X:")),
    ("empty name", head(HOST, b": x")),
    ("space before colon", head(HOST, b"X : x")),
    ("space in a name", head(HOST, b"X Y: x")),
    ("no colon", head(HOST, b"X")),
    ("obs-fold", head(HOST, b"X: a", b" b")),
    ("bare CR line end", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: a\n\n"),
    ("head over the limit", head(HOST, b"X: " + b"x" * 5000)),
    ("incomplete head over the limit", b"GET / HTTP/1.1\r\nX: " + b"x" * 5000),
    ("incomplete head", b"GET / HTTP/1.1\r\nHost: a\r\n"),
    ("incomplete body", head(HOST, b"Content-Length: 10") + b"hello"),
    ("incomplete chunked body", head(HOST, CHUNKED) + b"5\r\nhel"),
    ("too many fields", head(HOST, *[b"X-%d: y" % i for i in range(25)])),
    ("long target", head(HOST, line=b"GET /" + b"a" * 300 + b" HTTP/1.1")),
    (
        "expect 100-continue",
        head(HOST, b"Expect: 100-continue", b"Content-Length: 1") + b"x",
    ),
    ("upgrade", head(HOST, b"Connection: upgrade", b"Upgrade: websocket") + b"frames"),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
    ("pipelined", head(HOST, line=b"GET / HTTP/1.1") * 2),
    ("pipelined after a body", head(HOST, b"Content-Length: 1") + b"x" + head(HOST)),
    (
        "pipelined after chunks",
        head(HOST, CHUNKED) + b"1\r\nx\r\n0\r\n\r\n" + head(HOST),
    ),
    ("nothing", b""),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
]


def splits(data: bytes) -> list[list[bytes]]:
    """The input whole, byte by byte, and cut in the middle."""
    middle = len(data) // 2
    return [[data], [bytes([b]) for b in data], [data[:middle], data[middle:]]]


@pytest.mark.parametrize(("name", "data"), CORPUS, ids=[n for n, _ in CORPUS])
def test_known_vectors_get_the_same_answer(name: str, data: bytes) -> None:
    for pieces in splits(data):
        h11_outcome, fast_outcome = both(pieces)
        assert fast_outcome == h11_outcome, (name, len(pieces))


def test_the_corpus_has_both_answers() -> None:
    """The corpus is not all refusals, nor all requests: it tells them apart."""
    outcomes = {both([data])[0][0] for _, data in CORPUS}
    assert {"request", "refused", "closed"} <= outcomes


#: Inputs llhttp parses itself, and the ones it hands to h11 (name: whether
#: h11 takes over): the fast path is the common path, not a bystander.
HANDED_OVER = {
    "plain GET": False,
    "body by length": False,
    "expect 100-continue": False,
    "upgrade": False,
    "\\xa0 around a value": False,
    "unknown method": True,
    "HTTP/1.2": True,
    "h2 preface": False,
    "chunked body": True,
    "obs-fold": True,
    "CL and TE": True,
}


@pytest.mark.parametrize(("name", "handed_over"), HANDED_OVER.items())
def test_what_llhttp_parses_itself(name: str, handed_over: bool) -> None:
    parser = HttptoolsParser(MAX_HEAD)
    parser.receive_data(dict(CORPUS)[name])
    parser.next_event()
    assert parser.handed_to_h11 is handed_over


# -- generated requests ------------------------------------------------------

_NAMES = st.sampled_from(
    [
        b"Host",
        b"host",
        b"Content-Length",
        b"Transfer-Encoding",
        b"Expect",
        b"Connection",
        b"Upgrade",
        b"X-A",
        b"",
        b"X Y",
        b"X\x00",
        b"\xa0",
    ]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            b"example.com",
            b"chunked",
            b",chunked",
            b"gzip, chunked",
            b"5",
            b"0",
            b"0x5",
            b"+5",
            b"-5",
            b"1_0",
            b"5, 5",
            b"100-continue",
            b"close",
            b"\xa0",
            b"\x85x",
            b" padded\t",
            b"",
        ]
    ),
    st.binary(max_size=12),
)
_LINES = st.sampled_from(
    [
        b"GET / HTTP/1.1",
        b"POST /p?q HTTP/1.1",
        b"PUT * HTTP/1.0",
        b"PATCH http://h/x HTTP/1.1",
        b"BREW /pot HTTP/1.1",
        b"GET / HTTP/2.0",
        b"GET / HTTP/1.2",
        b"GET /\x7f HTTP/1.1",
        b"GET /a b HTTP/1.1",
    ]
)
_CHUNK_SIZES = st.sampled_from(
    [b"0", b"1", b"5", b"a", b"0x5", b"+5", b"-5", b"5 ", b"5;x", b"5;x\r", b"1_0"]
)
_LINE_ENDS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b" \r\n"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    line = draw(_LINES)
    fields = draw(st.lists(st.tuples(_NAMES, _VALUES), max_size=6))
    end = draw(_LINE_ENDS)
    data = line + b"\r\n"
    for name, value in fields:
        data += name + b":" + draw(st.sampled_from([b"", b" ", b"\t"])) + value + end
    data += b"\r\n"
    chunks = draw(st.lists(st.tuples(_CHUNK_SIZES, _LINE_ENDS), max_size=3))
    for size, chunk_end in chunks:
        data += size + chunk_end + draw(st.binary(max_size=12)) + b"\r\n"
    data += draw(st.sampled_from([b"", b"0\r\n\r\n", b"0\r\nT: 1\r\n\r\n"]))
    data += draw(st.binary(max_size=8))
    return data


@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
@hypothesis.given(data=requests(), cut=st.integers(min_value=0, max_value=200))
def test_generated_requests_get_the_same_answer(data: bytes, cut: int) -> None:
    for pieces in ([data], [data[:cut], data[cut:]]):
        h11_outcome, fast_outcome = both(pieces)
        assert fast_outcome == h11_outcome


@hypothesis.settings(max_examples=EXAMPLES, deadline=None)
@hypothesis.given(data=st.binary(max_size=200))
def test_random_bytes_get_the_same_answer(data: bytes) -> None:
    h11_outcome, fast_outcome = both([b"GET / HTTP/1.1\r\n" + data])
    assert fast_outcome == h11_outcome
