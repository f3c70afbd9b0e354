"""Fuzzing the real connection handler with hypothesis.

Random bytes, mutated valid requests and random splits of valid ones are fed
to ``handle_connection`` over memory streams under trio's mock clock. For every input:
no exception escapes, everything written parses as a sequence of complete
HTTP/1.1 responses (or nothing), nothing hangs, and the server still answers
a valid request on a new connection afterwards.

``TRASGI_FUZZ_EXAMPLES`` raises the example count for deeper runs
(``python bench/fuzz_deep.py``).
"""

from __future__ import annotations

import os
from typing import Any

import h11
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared

from ..helpers import Receive, Send

EXAMPLES = int(os.environ.get("TRASGI_FUZZ_EXAMPLES", "150"))

VALID = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /a%20b?x=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"PUT /u HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"GET / HTTP/1.0\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
]


def mutate(data: bytes, edits: list[tuple[int, bytes, int]]) -> bytes:
    """Apply (position, insertion, deletion length) edits."""
    buffer = bytearray(data)
    for position, insertion, deletion in edits:
        at = position % (len(buffer) + 1)
        buffer[at : at + deletion] = insertion
    return bytes(buffer)


edits = st.lists(
    st.tuples(st.integers(0, 500), st.binary(max_size=4), st.integers(0, 3)),
    min_size=1,
    max_size=4,
)
inputs = st.one_of(
    st.binary(max_size=600),
    st.builds(mutate, st.sampled_from(VALID), edits),
    st.lists(st.sampled_from(VALID), min_size=1, max_size=4).map(b"".join),
)


async def fuzz_app(scope: Any, receive: Receive, send: Send) -> None:
    """Read the body; answer with an empty body, so GET and HEAD look alike."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    headers = [(b"content-length", b"0"), (b"x-size", str(size).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def parse_one(data: bytes, method: bytes) -> int | None:
    """Parse one response at the start of ``data``; return its length or None."""
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    try:
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.EndOfMessage):
                return len(data) - len(client.trailing_data[0])
    except h11.RemoteProtocolError:
        return None


def assert_well_formed(output: bytes) -> None:
    rest = output
    while rest:
        # A server-made error response to HEAD has no body: try both readings.
        length = parse_one(rest, b"GET") or parse_one(rest, b"HEAD")
        assert length, f"not a complete HTTP/1.1 response: {rest[:200]!r}"
        rest = rest[length:]


async def exchange(chunks: list[bytes], shared: ServerShared) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    output = b""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            handle_connection, server, fuzz_app, Config(), ConnectionInfo(), shared
        )
        try:
            for chunk in chunks:
                await client.send_all(chunk)
            await client.send_eof()
        except trio.BrokenResourceError:
            pass  # the server closed first: fine
        with trio.fail_after(120):  # virtual seconds: every server timeout fits
            while True:
                try:
                    data = await client.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
                output += data
        await client.aclose()
    return output


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    chunks, position = [], 0
    for size in sizes:
        if position >= len(data):
            break
        chunks.append(data[position : position + size])
        position += size
    if position < len(data):
        chunks.append(data[position:])
    return chunks


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=inputs, sizes=st.lists(st.integers(1, 64), max_size=20))
def test_fuzzed_input_never_breaks_the_server(data: bytes, sizes: list[int]) -> None:
    async def main() -> None:
        shared = ServerShared()
        assert_well_formed(await exchange(split(data, sizes), shared))
        # The server is still healthy: a valid request on a new connection.
        after = await exchange(
            [b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], shared
        )
        assert after.startswith(b"HTTP/1.1 200 OK\r\n")
        assert shared.in_flight == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
