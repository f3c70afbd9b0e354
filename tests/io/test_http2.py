"""HTTP/2 end to end: the real connection handler against a frame-level client.

Most tests speak HTTP/2 frames with the ``h2`` library in client mode over an
in-memory connection served by ``handle_connection`` (:class:`H2Client`), so
that they can see and send what a well-behaved HTTP client hides: stream
resets, GOAWAY, windows, floods. Where a real client suffices, httpx speaks
HTTP/2 through ``open_client(http2=True)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import httpx
import pytest
import trio
import trio.testing

from trasgi import Config
from trasgi.testing import open_client, open_connection

from ..helpers import HANG, Message, Receive, Send, echo_app, read_until_closed
from .h2_client import (
    CANCEL,
    ENHANCE_YOUR_CALM,
    INTERNAL_ERROR,
    NO_ERROR,
    PREFACE,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    Fields,
    H2Client,
    open_h2,
    serving,
)

# -- applications ----------------------------------------------------------------


def start(status: int = 200, headers: Fields = ()) -> Message:
    return {"type": "http.response.start", "status": status, "headers": list(headers)}


def body(data: bytes = b"", *, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def read_body(receive: Receive) -> bytes:
    data = b""
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        chunk: bytes = message.get("body", b"")
        data += chunk
        if not message.get("more_body"):
            return data


async def ok_app(scope: Any, receive: Receive, send: Send) -> None:
    await send(start(200))
    await send(body(b"ok"))


async def scope_app(scope: Any, receive: Receive, send: Send) -> None:
    """Answer with the scope's facts as JSON, and the body it read."""
    received = await read_body(receive)
    facts = {
        "type": scope["type"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [
            [n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]
        ],
        "client": list(scope["client"]),
        "body": received.decode("latin-1"),
    }
    await send(start(200, [(b"content-type", b"application/json")]))
    await send(body(json.dumps(facts).encode()))


def pattern(size: int) -> bytes:
    """``size`` bytes that are not all alike, to catch reordering."""
    unit = bytes(range(251))
    return (unit * (size // len(unit) + 1))[:size]


async def digest_app(scope: Any, receive: Receive, send: Send) -> None:
    """Read the body; answer its size and digest, then ``?size=N`` bytes."""
    received = await read_body(receive)
    query = dict(
        part.split("=") for part in scope["query_string"].decode().split("&") if part
    )
    size = int(query.get("size", "0"))
    await send(
        start(
            200,
            [
                (b"x-received", str(len(received)).encode()),
                (b"x-sha256", hashlib.sha256(received).hexdigest().encode()),
            ],
        )
    )
    data = pattern(size)
    for offset in range(0, size, 65536):
        await send(body(data[offset : offset + 65536], more=True))
    await send(body())


def gated(gates: dict[str, trio.Event]) -> Any:
    """An app whose requests to a path in ``gates`` wait for that event."""

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        gate = gates.get(scope["path"])
        if gate is not None:
            await gate.wait()
        await send(start(200))
        await send(body(scope["path"].encode()))

    return app


# -- 1. the scope and bodies -------------------------------------------------------


async def test_scope_over_http2() -> None:
    async with open_h2(scope_app) as client:
        response = await client.fetch(
            b"POST",
            b"/a%20b/c?x=1&y=2",
            [
                (b"cookie", b"a=1"),
                (b"user-agent", b"frames/1"),
                (b"cookie", b"b=2"),
                (b"cookie", b"c=3"),
            ],
            body=b"payload",
        )
    assert response.status == 200
    facts = json.loads(response.body)
    assert facts["type"] == "http"
    assert facts["http_version"] == "2"
    assert facts["method"] == "POST"
    assert facts["scheme"] == "http"
    assert facts["path"] == "/a b/c"
    assert facts["raw_path"] == "/a%20b/c"
    assert facts["query_string"] == "x=1&y=2"
    headers = [tuple(pair) for pair in facts["headers"]]
    # The ASGI spec: ":authority" becomes "host", and comes first.
    assert headers[0] == ("host", "testserver")
    assert [name for name, _ in headers].count("host") == 1
    assert not [name for name, _ in headers if name.startswith(":")]
    # RFC 9113 section 8.2.3: the cookie crumbs are one field again.
    assert [value for name, value in headers if name == "cookie"] == ["a=1; b=2; c=3"]
    assert ("user-agent", "frames/1") in headers
    assert facts["body"] == "payload"


async def test_a_host_field_beside_authority_is_not_doubled() -> None:
    async with open_h2(scope_app) as client:
        stream_id = await client.open(
            pseudo=[
                (b":method", b"GET"),
                (b":scheme", b"http"),
                (b":authority", b"example.com:8080"),
                (b":path", b"/"),
            ],
            headers=[(b"accept", b"*/*"), (b"host", b"example.com:8080")],
        )
        response = await client.response(stream_id)
    assert response.status == 200
    headers = [tuple(pair) for pair in json.loads(response.body)["headers"]]
    assert headers == [("host", "example.com:8080"), ("accept", "*/*")]


@pytest.mark.parametrize(
    ("base_url", "scheme"),
    [("http://testserver", "http"), ("https://testserver", "https")],
)
async def test_scheme_is_the_connections_scheme(base_url: str, scheme: str) -> None:
    async with open_client(scope_app, http2=True, base_url=base_url) as client:
        response = await client.get("/")
    assert response.http_version == "HTTP/2"
    assert response.json()["scheme"] == scheme
    assert response.json()["http_version"] == "2"


async def test_post_body_is_echoed() -> None:
    async with open_client(echo_app, http2=True) as client:
        response = await client.post("/echo", content=b"hello, frames")
    assert response.http_version == "HTTP/2"
    assert response.status_code == 200
    assert response.content == b"hello, frames"
    assert response.headers["x-path"] == "/echo"


@pytest.mark.parametrize(
    ("upload", "download"),
    [
        pytest.param(3 * 1024 * 1024, 0, id="3 MiB up"),
        pytest.param(0, 1024 * 1024, id="1 MiB down"),
        pytest.param(3 * 1024 * 1024, 1024 * 1024, id="both"),
    ],
)
async def test_large_bodies_flow_both_ways(upload: int, download: int) -> None:
    """Larger than every default window: each side must open them again."""
    sent = pattern(upload)
    async with open_h2(digest_app) as client:
        response = await client.fetch(b"POST", b"/?size=%d" % download, body=sent)
    assert response.status == 200
    assert response.reset is None
    assert response.header(b"x-received") == str(upload).encode()
    assert response.header(b"x-sha256") == hashlib.sha256(sent).hexdigest().encode()
    assert response.body == pattern(download)


async def test_large_bodies_through_httpx() -> None:
    sent = pattern(3 * 1024 * 1024)
    async with open_client(digest_app, http2=True) as client:
        response = await client.post("/?size=1048576", content=sent)
    assert response.http_version == "HTTP/2"
    assert response.headers["x-received"] == str(len(sent))
    assert response.content == pattern(1024 * 1024)


# -- 2. multiplexing ----------------------------------------------------------------


def barrier_app(count: int, arrived: list[str]) -> Any:
    """Every request waits until ``count`` requests have arrived."""
    everyone = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        arrived.append(scope["path"])
        if len(arrived) == count:
            everyone.set()
        await everyone.wait()
        client = scope["client"]
        await send(start(200, [(b"x-client", f"{client[0]}:{client[1]}".encode())]))
        await send(body(scope["path"].encode()))

    return app


async def test_streams_of_one_connection_run_concurrently() -> None:
    count = 6
    arrived: list[str] = []
    async with open_h2(barrier_app(count, arrived)) as client:
        streams = [await client.request(path=b"/%d" % i) for i in range(count)]
        responses = [await client.response(stream) for stream in streams]
    assert len(set(streams)) == count
    assert sorted(arrived) == [f"/{i}" for i in range(count)]
    assert [(r.status, r.body) for r in responses] == [
        (200, b"/%d" % i) for i in range(count)
    ]


async def test_httpx_multiplexes_concurrent_requests_on_one_connection() -> None:
    count = 5
    arrived: list[str] = []
    results: dict[int, httpx.Response] = {}
    async with open_client(barrier_app(count, arrived), http2=True) as client:

        async def get(i: int) -> None:
            results[i] = await client.get(f"/{i}")

        with trio.fail_after(HANG):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(get, i)
    assert [results[i].text for i in range(count)] == [f"/{i}" for i in range(count)]
    assert {r.http_version for r in results.values()} == {"HTTP/2"}
    # One client port: one connection carried them all.
    assert len({r.headers["x-client"] for r in results.values()}) == 1


# -- 3. errors stay on their stream ----------------------------------------------------


async def test_app_error_before_start_is_a_500_on_that_stream_only() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await ok_app(scope, receive, send)

    async with open_h2(app) as client:
        bad = await client.request(path=b"/boom")
        good = await client.request(path=b"/fine")
        failed = await client.response(bad)
        fine = await client.response(good)
        again = await client.fetch(path=b"/again")
    assert (failed.status, failed.reset) == (500, None)
    assert failed.body == b"Internal Server Error\n"
    assert (fine.status, fine.body) == (200, b"ok")
    assert (again.status, again.body) == (200, b"ok")
    assert not client.goaways()


async def test_app_error_after_start_resets_only_its_stream() -> None:
    failing = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/boom":
            await send(start(200))
            await send(body(b"partial", more=True))
            failing.set()
            raise RuntimeError("boom")
        if scope["path"] == "/sibling":
            await failing.wait()  # in flight while its sibling fails
        await ok_app(scope, receive, send)

    async with open_h2(app) as client:
        bad = await client.request(path=b"/boom")
        sibling = await client.request(path=b"/sibling")
        cut = await client.response(bad)
        fine = await client.response(sibling)
        third = await client.fetch(path=b"/third")
    assert cut.status == 200
    assert cut.body == b"partial"
    assert cut.reset == INTERNAL_ERROR
    assert not cut.ended
    assert (fine.status, fine.body, fine.reset) == (200, b"ok", None)
    assert (third.status, third.body) == (200, b"ok")
    assert not client.goaways()


@pytest.mark.parametrize(
    ("messages", "status", "sent", "reset"),
    [
        pytest.param(
            [body(b"abc", more=True), body()],
            200,
            b"abc",
            INTERNAL_ERROR,
            id="ended short",
        ),
        pytest.param(
            [body(b"abc", more=True)],
            200,
            b"abc",
            INTERNAL_ERROR,
            id="returned short",
        ),
        # Nothing was sent when the mistake shows: the server's own 500.
        pytest.param([body(b"abc")], 500, None, None, id="whole body short"),
        pytest.param([body(b"a" * 11)], 500, None, None, id="whole body long"),
    ],
)
async def test_a_body_that_breaks_its_content_length(
    messages: list[Message], status: int, sent: bytes | None, reset: int | None
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/ok":
            await ok_app(scope, receive, send)
            return
        await send(start(200, [(b"content-length", b"10")]))
        for message in messages:
            await send(message)

    async with open_h2(app) as client:
        response = await client.fetch(path=b"/short")
        after = await client.fetch(path=b"/ok")
    assert response.status == status
    assert response.reset == reset
    if sent is not None:
        assert response.body == sent
    assert (after.status, after.body) == (200, b"ok")


# -- 4. the client resets a stream ------------------------------------------------------


async def test_client_reset_is_a_disconnect_for_the_app() -> None:
    waiting = trio.Event()
    done = trio.Event()
    seen: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/ok":
            await ok_app(scope, receive, send)
            return
        seen.append(await read_body(receive))
        waiting.set()
        seen.append(await receive())  # the body is complete: this waits
        try:
            await send(start(200))
        except OSError as exc:
            seen.append(exc)
        done.set()

    async with open_h2(app) as client:
        stream_id = await client.request(b"POST", b"/wait", body=b"data")
        with trio.fail_after(HANG):
            await waiting.wait()
        await trio.testing.wait_all_tasks_blocked()
        await client.reset(stream_id, CANCEL)
        with trio.fail_after(HANG):
            await done.wait()
        after = await client.fetch(path=b"/ok")
    assert seen[0] == b"data"
    assert seen[1] == {"type": "http.disconnect"}
    assert isinstance(seen[2], OSError)
    assert client.received(stream_id).status is None
    assert (after.status, after.body) == (200, b"ok")


# -- 5. flow control is backpressure, per stream ----------------------------------------


async def test_an_unread_body_holds_its_stream_window_only() -> None:
    window = 100_000
    config = Config(limit_h2_stream_window=window, limit_h2_connection_window=400_000)
    release = trio.Event()
    pulled: list[int] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/stuck":
            await release.wait()  # never reads its body
        else:
            data = await read_body(receive)
            pulled.append(len(data))
        await send(start(200))
        await send(body(b"done"))

    async with open_h2(app, config) as client:
        stuck = await client.open(b"POST", b"/stuck", end_stream=False)
        # The server announced its stream window: the client may send that much.
        assert await client.send_available(stuck, pattern(4 * window)) == window
        await client.settle()
        assert client.conn.local_flow_control_window(stuck) == 0
        assert await client.send_available(stuck, b"more") == 0
        # Nothing read, nothing acknowledged for that stream.
        assert not [
            event
            for event in client.log
            if isinstance(event, h2.events.WindowUpdated) and event.stream_id == stuck
        ]

        # A sibling uploads many windows' worth meanwhile and is answered.
        upload = await client.fetch(b"POST", b"/upload", body=pattern(2 * 1024 * 1024))
        assert (upload.status, upload.body) == (200, b"done")
        assert pulled == [2 * 1024 * 1024]
        assert client.conn.local_flow_control_window(stuck) == 0

        release.set()
        answered = await client.response(stuck)
    assert (answered.status, answered.body) == (200, b"done")
    # Answered before its body was sent: the server stops the upload.
    assert answered.reset in (None, NO_ERROR)


# -- 6. the concurrency limit -------------------------------------------------------------


async def test_streams_over_the_limit_are_refused() -> None:
    """RFC 9113 section 5.1.2: a stream error; the streams in flight carry on."""
    gates = {path: trio.Event() for path in ("/1", "/2")}
    async with open_h2(gated(gates), Config(limit_h2_concurrent_streams=2)) as client:
        client.ignore_stream_limit()
        first = await client.request(path=b"/1")
        second = await client.request(path=b"/2")
        third = await client.request(path=b"/3")
        refused = await client.response(third)
        gates["/1"].set()
        gates["/2"].set()
        answered = [await client.response(s) for s in (first, second)]
    assert refused.reset == REFUSED_STREAM
    assert refused.status is None
    assert [(r.status, r.body) for r in answered] == [(200, b"/1"), (200, b"/2")]
    assert not client.goaways()


async def test_a_finished_stream_frees_its_slot() -> None:
    gates = {path: trio.Event() for path in ("/1", "/2", "/3")}
    async with open_h2(gated(gates), Config(limit_h2_concurrent_streams=2)) as client:
        assert client.conn.remote_settings.max_concurrent_streams == 2
        first = await client.request(path=b"/1")
        second = await client.request(path=b"/2")
        await client.settle()
        gates["/1"].set()
        done = await client.response(first)
        assert (done.status, done.body) == (200, b"/1")
        await trio.testing.wait_all_tasks_blocked()  # its task has ended
        third = await client.request(path=b"/3")
        await client.settle()
        assert client.received(third).reset is None  # accepted, waiting
        gates["/3"].set()
        gates["/2"].set()
        later = [await client.response(s) for s in (second, third)]
    assert [(r.status, r.body) for r in later] == [(200, b"/2"), (200, b"/3")]
    assert not client.goaways()


async def test_a_reset_stream_counts_until_its_app_returns() -> None:
    """Rapid reset (CVE-2023-44487): a reset does not free the stream's slot."""
    release = trio.Event()
    outcome: list[object] = []

    async def stubborn(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/stubborn":
            await release.wait()  # ignores the disconnect for a while
            try:
                await send(start(200))
            except OSError as exc:
                outcome.append(exc)
            return
        await ok_app(scope, receive, send)

    async with open_h2(stubborn, Config(limit_h2_concurrent_streams=1)) as client:
        first = await client.request(path=b"/stubborn")
        await client.settle()
        await client.reset(first)
        second = await client.request(path=b"/next")
        refused = await client.response(second)
        assert refused.reset == REFUSED_STREAM

        release.set()
        await trio.testing.wait_all_tasks_blocked()
        third = await client.fetch(path=b"/next")
    assert (third.status, third.body) == (200, b"ok")
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)


# -- 7. floods -----------------------------------------------------------------------------

LIMIT = 5
#: Over the budget whatever second boundary the frames straddle.
FLOOD = 3 * LIMIT + 1


async def _rapid_reset(client: H2Client) -> None:
    for _ in range(FLOOD):
        stream_id = client.conn.get_next_available_stream_id()
        client.conn.send_headers(
            stream_id,
            [
                (b":method", b"POST"),
                (b":scheme", b"http"),
                (b":authority", b"testserver"),
                (b":path", b"/"),
            ],
        )
        client.conn.reset_stream(stream_id, error_code=CANCEL)
    await client.flush()


async def _malformed_flood(client: H2Client) -> None:
    """MadeYouReset: requests the server must reset are a flood too."""
    client.conn.config.validate_outbound_headers = False
    client.conn.config.normalize_outbound_headers = False
    for _ in range(FLOOD):
        await client.open(headers=[(b"connection", b"close")])


async def _ping_flood(client: H2Client) -> None:
    for i in range(FLOOD):
        client.conn.ping(b"%08d" % i)
    await client.flush()


async def _empty_data_flood(client: H2Client) -> None:
    stream_id = await client.open(b"POST", b"/", end_stream=False)
    for _ in range(FLOOD):
        client.conn.send_data(stream_id, b"")
    await client.flush()


@pytest.mark.parametrize(
    ("config", "flood"),
    [
        pytest.param(
            Config(limit_h2_resets_per_second=LIMIT), _rapid_reset, id="rapid reset"
        ),
        pytest.param(
            Config(limit_h2_resets_per_second=LIMIT),
            _malformed_flood,
            id="malformed requests",
        ),
        pytest.param(
            Config(limit_h2_control_frames_per_second=LIMIT), _ping_flood, id="PING"
        ),
        pytest.param(
            Config(limit_h2_empty_frames_per_second=LIMIT),
            _empty_data_flood,
            id="empty DATA",
        ),
    ],
)
async def test_a_flood_ends_the_connection_with_enhance_your_calm(
    config: Config, flood: Callable[[H2Client], Awaitable[None]]
) -> None:
    async with serving(echo_app, config) as server:
        client = await server.h2()
        await flood(client)
        goaway = await client.goaway()
        assert goaway.error_code == ENHANCE_YOUR_CALM
        await client.read_until_closed()
        # The server serves the next connection as ever.
        fresh = await server.h2()
        response = await fresh.fetch(b"POST", b"/after", body=b"calm")
    assert (response.status, response.body) == (200, b"calm")


async def test_traffic_under_the_budgets_is_served() -> None:
    config = Config(
        limit_h2_resets_per_second=LIMIT,
        limit_h2_control_frames_per_second=LIMIT,
        limit_h2_empty_frames_per_second=LIMIT,
    )
    async with open_h2(echo_app, config) as client:
        stream_id = await client.open(b"POST", b"/", end_stream=False)
        client.conn.send_data(stream_id, b"")
        client.conn.ping(b"12345678")
        await client.flush()
        await client.send_body(stream_id, b"fine")
        response = await client.response(stream_id)
        await client.wait_for(h2.events.PingAckReceived)
    assert (response.status, response.body) == (200, b"fine")
    assert not client.goaways()


# -- 8. graceful shutdown ------------------------------------------------------------------


async def test_graceful_shutdown_lets_streams_in_flight_finish() -> None:
    gates = {"/slow": trio.Event()}
    async with serving(gated(gates)) as server:
        client = await server.h2()
        slow = await client.request(path=b"/slow")
        await client.settle()
        server.shared.begin_shutdown()
        goaway = await client.goaway()
        assert goaway.error_code == NO_ERROR
        assert goaway.last_stream_id == slow
        assert not client.eof

        late = await client.request(path=b"/late")
        await client.settle()
        assert client.received(late).status is None
        assert client.received(late).reset == REFUSED_STREAM

        gates["/slow"].set()
        finished = await client.response(slow)
        assert (finished.status, finished.body) == (200, b"/slow")
        await client.read_until_closed()
    assert client.received(late).status is None
    assert {g.error_code for g in client.goaways()} == {NO_ERROR}


async def test_a_later_goaway_never_raises_the_last_stream_id() -> None:
    """RFC 9113 section 6.8: the last stream identifier MUST NOT increase."""
    gates = {"/slow": trio.Event()}
    async with serving(gated(gates)) as server:
        client = await server.h2()
        slow = await client.request(path=b"/slow")
        await client.settle()
        server.shared.begin_shutdown()
        await client.goaway()
        await client.request(path=b"/late")  # refused: never processed
        await client.settle()
        gates["/slow"].set()
        await client.response(slow)
        await client.read_until_closed()
    assert [g.last_stream_id for g in client.goaways()] == [slow, slow]


async def test_shutdown_closes_an_idle_http2_connection_at_once() -> None:
    async with serving(ok_app) as server:
        client = await server.h2()
        response = await client.fetch()
        assert response.status == 200
        server.shared.begin_shutdown()
        goaway = await client.goaway()
        await client.read_until_closed()
    assert goaway.error_code == NO_ERROR
    assert goaway.last_stream_id == 1


# -- 9. idle timeout -----------------------------------------------------------------------


@pytest.mark.parametrize("requests", [0, 1])
async def test_an_idle_connection_closes_after_the_keep_alive_timeout(
    autojump_clock: trio.testing.MockClock, requests: int
) -> None:
    async with open_h2(ok_app, Config(timeout_keep_alive=3)) as client:
        for _ in range(requests):
            assert (await client.fetch()).status == 200
        idle_since = trio.current_time()
        goaway = await client.goaway()
        waited = trio.current_time() - idle_since
        await client.read_until_closed()
    assert goaway.error_code == NO_ERROR
    assert 3 <= waited < 3.5


async def test_a_stream_in_flight_keeps_the_connection_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow(scope: Any, receive: Receive, send: Send) -> None:
        await trio.sleep(10)  # longer than the keep-alive timeout
        await ok_app(scope, receive, send)

    async with open_h2(slow, Config(timeout_keep_alive=3)) as client:
        response = await client.fetch()
        assert (response.status, response.body) == (200, b"ok")
        assert not client.goaways()
        answered = trio.current_time()
        # Then idle time counts from the stream's end.
        await client.goaway()
        assert 3 <= trio.current_time() - answered < 3.5
        await client.read_until_closed()


# -- 10. a client that stops opening windows -------------------------------------------------


async def test_a_stalled_stream_is_reset_after_the_write_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    raised: list[OSError] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["path"] == "/small":
            await ok_app(scope, receive, send)
            return
        await send(start(200))
        try:
            await send(body(b"x" * 100))
        except OSError as exc:
            raised.append(exc)

    config = Config(timeout_write=5)
    async with open_h2(app, config, auto_ack=False, initial_window=0) as client:
        began = trio.current_time()
        stalled = await client.request(path=b"/stalled")
        small = await client.request(path=b"/small")
        # Only the sibling's window is opened, by just its body's size.
        client.conn.increment_flow_control_window(2, stream_id=small)
        await client.flush()
        fine = await client.response(small)
        assert (fine.status, fine.body) == (200, b"ok")
        assert trio.current_time() - began < 5
        cut = await client.response(stalled)
        waited = trio.current_time() - began
    assert cut.status == 200
    assert cut.body == b""
    assert cut.reset == CANCEL
    assert 5 <= waited < 6
    assert len(raised) == 1
    assert not client.goaways()


# -- 11. request checks ----------------------------------------------------------------------

CHECKS = Config(limit_request_line=64, limit_request_fields=8, limit_request_body=1000)
REQUEST = [
    (b":method", b"GET"),
    (b":scheme", b"http"),
    (b":authority", b"testserver"),
    (b":path", b"/"),
]


@pytest.mark.parametrize(
    ("pseudo", "headers", "end_stream", "status"),
    [
        pytest.param(
            [(b":method", b"CONNECT"), (b":authority", b"example.com:443")],
            [],
            True,
            405,
            id="plain CONNECT",
        ),
        pytest.param(
            [*REQUEST[:3], (b":path", b"/" + b"a" * 100)],
            [],
            True,
            414,
            id="long path",
        ),
        pytest.param(
            REQUEST,
            [(b"x-field-%d" % i, b"v") for i in range(9)],
            True,
            431,
            id="too many fields",
        ),
        pytest.param(
            [(b":method", b"POST"), *REQUEST[1:]],
            [(b"content-length", b"5000")],
            False,
            413,
            id="declared body too large",
        ),
        pytest.param(
            REQUEST, [(b"x-bad", b"a\x01b")], True, 400, id="control character"
        ),
        pytest.param(
            [(b":method", b"G(E)T"), *REQUEST[1:]], [], True, 400, id="bad method"
        ),
        pytest.param(
            [*REQUEST[:3], (b":path", b"no-slash")], [], True, 400, id="bad path"
        ),
    ],
)
async def test_a_refused_request_gets_its_status_on_its_stream(
    pseudo: Fields, headers: Fields, end_stream: bool, status: int
) -> None:
    async with open_h2(ok_app, CHECKS, validate=False) as client:
        stream_id = await client.open(
            pseudo=pseudo, headers=headers, end_stream=end_stream
        )
        refused = await client.response(stream_id)
        after = await client.fetch()
    assert refused.status == status
    assert refused.header(b"content-type") == b"text/plain; charset=utf-8"
    assert refused.body.endswith(b"\n")
    assert (after.status, after.body) == (200, b"ok")
    assert not client.goaways()


async def test_an_undeclared_body_over_the_limit_gets_413() -> None:
    async with open_h2(echo_app, Config(limit_request_body=1000)) as client:
        stream_id = await client.open(b"POST", b"/", end_stream=False)
        await client.send_available(stream_id, b"x" * 5000)
        refused = await client.response(stream_id)
        after = await client.fetch(b"POST", b"/after", body=b"small")
    assert (refused.status, refused.body) == (413, b"request body too large\n")
    assert (after.status, after.body) == (200, b"small")


async def test_a_body_that_stops_coming_gets_408(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_h2(echo_app, Config(timeout_body_read=2)) as client:
        began = trio.current_time()
        stream_id = await client.open(b"POST", b"/", end_stream=False)
        await client.send_body(stream_id, b"partial", end_stream=False)
        stalled = await client.response(stream_id)
        waited = trio.current_time() - began
        after = await client.fetch(b"POST", b"/after", body=b"whole")
    assert stalled.status == 408
    assert 2 <= waited < 2.5
    assert (after.status, after.body) == (200, b"whole")


@pytest.mark.parametrize(
    ("pseudo", "headers"),
    [
        pytest.param(REQUEST, [(b"x-bad", b"a\x00b")], id="NUL"),
        pytest.param(REQUEST, [(b"x-bad", b"a\rb")], id="CR"),
        pytest.param(REQUEST, [(b"x-bad", b"a\nb")], id="LF"),
        pytest.param(REQUEST, [(b"X-Upper", b"v")], id="upper-case name"),
        pytest.param(REQUEST, [(b"x bad", b"v")], id="space in a name"),
        pytest.param(REQUEST, [(b"connection", b"close")], id="connection"),
        pytest.param(REQUEST, [(b"te", b"gzip")], id="te"),
        pytest.param([*REQUEST, (b":status", b"200")], [], id=":status"),
        pytest.param([*REQUEST, (b":path", b"/b")], [], id="repeated :path"),
        pytest.param(REQUEST[1:], [], id="no :method"),
        pytest.param([*REQUEST[:3], (b":path", b"")], [], id="empty :path"),
        pytest.param([*REQUEST, (b":protocol", b"websocket")], [], id=":protocol"),
        pytest.param(REQUEST, [(b"host", b"elsewhere")], id="host differs"),
    ],
)
async def test_a_malformed_request_is_a_stream_error(
    pseudo: Fields, headers: Fields
) -> None:
    """RFC 9113 section 8.1.1: RST_STREAM (PROTOCOL_ERROR); the connection lives."""
    async with open_h2(ok_app, validate=False) as client:
        stream_id = await client.open(pseudo=pseudo, headers=headers)
        refused = await client.response(stream_id)
        after = await client.fetch()
    assert (refused.status, refused.reset) == (None, PROTOCOL_ERROR)
    assert (after.status, after.body) == (200, b"ok")
    assert not client.goaways()


@pytest.mark.parametrize(
    ("trailers", "reset"),
    [
        pytest.param([(b"x-checksum", b"abc")], None, id="valid"),
        pytest.param([(b":path", b"/")], PROTOCOL_ERROR, id="pseudo-header"),
        pytest.param([(b"X-Upper", b"v")], PROTOCOL_ERROR, id="upper-case name"),
    ],
)
async def test_request_trailers_are_checked(
    trailers: Fields, reset: int | None
) -> None:
    async with open_h2(echo_app, validate=False) as client:
        stream_id = await client.open(b"POST", b"/", end_stream=False)
        await client.send_body(stream_id, b"body", end_stream=False)
        client.conn.send_headers(stream_id, trailers, end_stream=True)
        await client.flush()
        response = await client.response(stream_id)
        after = await client.fetch(b"POST", b"/after", body=b"ok")
    assert response.reset == reset
    if reset is None:
        assert (response.status, response.body) == (200, b"body")
    assert (after.status, after.body) == (200, b"ok")


# -- 12. response rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"connection", b"keep-alive"),
        (b"transfer-encoding", b"chunked"),
        (b"keep-alive", b"timeout=5"),
        (b"upgrade", b"h2c"),
        (b"proxy-connection", b"keep-alive"),
        # RFC 9113 section 8.2.2: TE is allowed in a request only.
        (b"te", b"gzip"),
    ],
)
async def test_connection_specific_fields_are_not_sent(
    name: bytes, value: bytes
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        # A field before the dropped one enters the HPACK dynamic table, and
        # the next response refers to it: a desynchronised table shows there.
        await send(start(200, [(b"x-kept", b"yes"), (name, value)]))
        await send(body(b"ok"))

    async with open_h2(app) as client:
        stream_id = await client.request()
        await client.settle()
        response = client.received(stream_id)
        assert response.ended, response
        after = await client.fetch(path=b"/after")
    assert response.status == 200
    assert response.header(name) is None
    assert response.header(b"x-kept") == b"yes"
    assert response.body == b"ok"
    assert (after.status, after.header(b"x-kept")) == (200, b"yes")


@pytest.mark.parametrize(
    ("method", "status", "messages", "length", "sent"),
    [
        pytest.param(b"GET", 200, [body(b"hello")], b"5", b"hello", id="whole body"),
        pytest.param(
            b"GET",
            200,
            [body(b"hel", more=True), body(b"lo")],
            None,
            b"hello",
            id="streamed body",
        ),
        pytest.param(b"GET", 200, [body(b"")], b"0", b"", id="empty body"),
        # As over HTTP/1.1: a HEAD response declares no length it did not get.
        pytest.param(b"HEAD", 200, [body(b"hello")], None, b"", id="HEAD"),
        pytest.param(b"GET", 204, [body(b"")], None, b"", id="204"),
        pytest.param(b"GET", 304, [body(b"")], None, b"", id="304"),
    ],
)
async def test_response_framing(
    method: bytes,
    status: int,
    messages: list[Message],
    length: bytes | None,
    sent: bytes,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start(status))
        for message in messages:
            await send(message)

    async with open_h2(app) as client:
        response = await client.fetch(method)
    assert response.status == status
    assert response.header(b"content-length") == length
    assert response.body == sent
    assert response.ended
    assert response.reset is None
    if not sent:
        assert response.data_frames == 0  # the HEADERS frame ended the stream


async def test_head_keeps_the_apps_content_length() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start(200, [(b"content-length", b"5")]))
        await send(body(b"hello"))

    async with open_h2(app) as client:
        response = await client.fetch(b"HEAD")
    assert response.header(b"content-length") == b"5"
    assert response.body == b""
    assert response.data_frames == 0


@pytest.mark.parametrize(
    ("config", "present"),
    [
        (Config(), True),
        (Config(date_header=False, server_header=False), False),
    ],
)
async def test_date_and_server_fields(config: Config, present: bool) -> None:
    async with open_h2(ok_app, config) as client:
        response = await client.fetch()
    date = response.header(b"date")
    if present:
        assert response.header(b"server") == b"trasgi"
        assert date is not None
        assert parsedate_to_datetime(date.decode()).tzinfo is not None
    else:
        assert response.header(b"server") is None
        assert date is None


async def test_an_apps_own_server_field_wins() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start(200, [(b"Server", b"mine")]))
        await send(body())

    async with open_h2(app) as client:
        response = await client.fetch()
    # Lower-cased, as HTTP/2 requires (RFC 9113 section 8.2.1), and not doubled.
    assert response.values(b"server") == [b"mine"]


# -- 13. Expect: 100-continue ------------------------------------------------------------------


async def test_100_continue_is_sent_when_the_app_reads() -> None:
    reading = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await reading.wait()
        await echo_app(scope, receive, send)

    async with open_h2(app) as client:
        stream_id = await client.open(
            b"POST",
            b"/",
            [(b"expect", b"100-continue"), (b"content-length", b"5")],
            end_stream=False,
        )
        await client.settle()
        assert client.received(stream_id).informational == []
        reading.set()
        await client.wait_for(h2.events.InformationalResponseReceived, stream_id)
        assert client.received(stream_id).informational == [100]
        await client.send_body(stream_id, b"hello")
        response = await client.response(stream_id)
    assert (response.status, response.body) == (200, b"hello")


async def test_no_100_continue_when_the_app_answers_without_reading() -> None:
    async with open_h2(ok_app) as client:
        stream_id = await client.open(
            b"POST", b"/", [(b"expect", b"100-continue")], end_stream=False
        )
        response = await client.response(stream_id)
    assert response.informational == []
    assert (response.status, response.body) == (200, b"ok")
    # The client may stop sending the body it was never asked for.
    assert response.reset in (None, NO_ERROR)


# -- 14. HTTP/2 off -----------------------------------------------------------------------------


async def test_the_preface_gets_505_when_http2_is_off() -> None:
    async with open_connection(ok_app, config=Config(http2=False)) as stream:
        await stream.send_all(PREFACE)
        data = await read_until_closed(stream)
    assert data.startswith(b"HTTP/1.1 505 ")


async def test_the_preface_switches_to_http2_when_on() -> None:
    async with open_connection(ok_app) as stream:
        await stream.send_all(PREFACE)
        with trio.fail_after(HANG):
            data = bytes(await stream.receive_some(65536))
    # The server's connection preface: a SETTINGS frame (type 0x4) on stream 0.
    assert data[3] == 0x4
    assert int.from_bytes(data[5:9], "big") == 0


# -- 15. the access log -------------------------------------------------------------------------


async def test_the_access_record_says_http_2(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    config = Config(access_log_format="{request_line} {http_version} {status} {bytes}")
    async with open_client(echo_app, config=config, http2=True) as client:
        response = await client.post("/logged?q=1", content=b"abc")
    assert response.http_version == "HTTP/2"
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert lines == ["POST /logged?q=1 HTTP/2.0 2.0 200 3"]


async def test_a_busy_sibling_does_not_keep_a_stalled_stream_alive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The write timeout counts from when the stream's window closed.

    A sibling whose window keeps opening must not restart the stalled
    stream's timeout: otherwise one moving stream would let a client hold
    every other stream's task for ever.
    """
    raised: list[OSError] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(start(200))
        try:
            await send(body(b"x" * 100))
        except OSError as exc:
            raised.append(exc)

    config = Config(timeout_write=5)
    async with open_h2(app, config, auto_ack=False, initial_window=0) as client:
        began = trio.current_time()
        stalled = await client.request(path=b"/stalled")
        busy = await client.request(path=b"/busy")
        # The sibling's window opens a byte a second: each WINDOW_UPDATE
        # wakes senders, none of which may reset the stalled one's clock.
        for _ in range(8):
            await trio.sleep(1)
            client.conn.increment_flow_control_window(1, stream_id=busy)
            await client.flush()
        cut = await client.response(stalled)
        waited = trio.current_time() - began
    assert cut.reset == CANCEL
    assert 5 <= waited < 9
    assert raised


async def test_the_concurrency_limit_answers_503_on_the_stream() -> None:
    """``--limit-concurrency`` admits HTTP/2 requests as it does HTTP/1.1 ones."""
    gates = {"/busy": trio.Event()}
    async with open_h2(gated(gates), Config(limit_concurrency=1)) as client:
        busy = await client.request(path=b"/busy")
        await trio.testing.wait_all_tasks_blocked()
        refused = await client.fetch(path=b"/second")
        gates["/busy"].set()
        fine = await client.response(busy)
    assert refused.status == 503
    assert dict(refused.headers)[b"retry-after"] == b"1"
    assert (fine.status, fine.body) == (200, b"/busy")
