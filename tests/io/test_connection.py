"""The real connection handler over in-memory streams."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi.testing import open_client, open_connection

from ..helpers import (
    RawClient,
    Receive,
    Send,
    echo_app,
    header_of,
    read_until_closed,
    status_of,
    text_response,
)


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with open_connection(text_response(b"hi")) as stream:
        client = RawClient(stream)
        for _ in range(3):
            await client.request()
            head, body = await client.response()
            assert head.status_code == 200
            assert body == b"hi"
            client.next_cycle()


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with open_connection(echo_app) as stream:
        raw = b"".join(
            b"POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
            for i in range(5)
        )
        await stream.send_all(
            raw + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert data.count(b"HTTP/1.1 200 OK") == 6
    paths = [
        line.split(b": ")[1]
        for line in data.split(b"\r\n")
        if line.startswith(b"x-path")
    ]
    assert paths == [b"/0", b"/1", b"/2", b"/3", b"/4", b"/last"]


async def test_chunked_request_body_is_delivered() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        client = RawClient(stream)
        client.h11.send(
            h11.Request(
                method="POST",
                target="/",
                headers=[("Host", "x"), ("Transfer-Encoding", "chunked")],
            )
        )
        client.h11.send(h11.EndOfMessage())
        _, body = await client.response()
    assert body == b"hello world"


async def test_streamed_response_without_length_is_chunked() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})

    async with open_connection(app) as stream:
        client = RawClient(stream)
        await client.request()
        head, body = await client.response()
    assert (b"transfer-encoding", b"chunked") in head.headers
    assert body == b"abc"


async def test_request_body_is_read_only_as_the_app_asks() -> None:
    """Backpressure: an app that does not read leaves the body in the client."""
    reading = trio.Event()
    pulled: list[int] = []

    async def slow_reader(scope: Any, receive: Receive, send: Send) -> None:
        await reading.wait()
        message = await receive()
        pulled.append(len(message["body"]))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"connection", b"close")],
            }
        )
        await send({"type": "http.response.body", "body": b"done"})

    client_end, server_end = trio.testing.lockstep_stream_pair()
    sent = 0

    async with open_connection(
        slow_reader, stream_pair=lambda: (client_end, server_end)
    ) as stream:
        total = 10 * 1024 * 1024

        async def upload() -> None:
            nonlocal sent
            await stream.send_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total
            )
            chunk = b"x" * 65536
            while sent < total:
                await stream.send_all(chunk)
                sent += len(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(upload)
            await trio.testing.wait_all_tasks_blocked()
            # The server has read at most a chunk or two, not the 10 MiB.
            assert sent <= 2 * 65536
            nursery.cancel_scope.cancel()
    assert not pulled


async def test_100_continue_is_sent_when_the_app_reads_the_body() -> None:
    async with open_connection(echo_app) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        with trio.fail_after(5):
            first = await stream.receive_some(1000)
        assert first.startswith(b"HTTP/1.1 100 ")
        await stream.send_all(b"hello")
        rest = bytes(await stream.receive_some(1000))
    assert status_of(rest) == 200
    assert rest.endswith(b"hello")


async def test_100_continue_is_not_sent_when_the_app_answers_without_reading() -> None:
    async with open_connection(text_response(b"no thanks")) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        data = await read_until_closed(stream)
    assert b" 100 " not in data
    assert status_of(data) == 200
    assert data.endswith(b"no thanks")  # and then the connection closed


async def test_head_gets_headers_and_no_body() -> None:
    async with open_connection(text_response(b"hello")) as stream:
        client = RawClient(stream)
        await client.request("HEAD")
        head, body = await client.response()
        assert body == b""
        assert (b"content-length", b"5") in head.headers
        client.next_cycle()
        await client.request("GET")
        head, body = await client.response()
        assert body == b"hello"


async def test_head_with_a_streamed_response_sends_no_chunks() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    async with open_connection(app) as stream:
        await stream.send_all(
            b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(stream)
    first, second = data.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"\r\n\r\n")  # the HEAD answer ends with its head
    assert second.endswith(b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n")


async def test_client_disconnect_is_reported_to_a_waiting_app() -> None:
    seen: list[str] = []
    done = trio.Event()

    async def long_poll(scope: Any, receive: Receive, send: Send) -> None:
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])  # blocks until the client leaves
        done.set()

    async with open_connection(long_poll) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
        with trio.fail_after(5):
            await done.wait()
    assert seen == ["http.request", "http.disconnect"]


async def test_receive_reports_disconnect_once_the_response_is_complete() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body"})
        seen.append(await receive())

    async with open_connection(app) as stream:
        client = RawClient(stream)
        await client.request()
        await client.response()
    assert seen == [{"type": "http.disconnect"}]


async def test_send_after_the_client_left_raises_oserror(
    errors: pytest.LogCaptureFixture,
) -> None:
    raised: list[BaseException] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await left.wait()
        try:
            await send({"type": "http.response.body", "body": b"y", "more_body": True})
        except OSError as exc:
            raised.append(exc)
            done.set()
            raise

    left = trio.Event()
    done = trio.Event()
    async with open_connection(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await stream.receive_some(1000)
        await stream.aclose()
        left.set()
        with trio.fail_after(5):
            await done.wait()
    assert isinstance(raised[0], OSError)
    # The app let it propagate: expected, so no error (or traceback) is logged.
    assert not [r for r in errors.records if r.levelno >= logging.ERROR]
    assert any("client left during" in r.getMessage() for r in errors.records)


async def test_exception_before_start_gives_500(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        raise ValueError("boom")

    async with open_connection(app) as stream:
        await stream.send_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 500
    assert data.endswith(b"Internal Server Error\n")
    assert b"boom" not in data  # nothing leaks to the client
    record = next(
        r for r in errors.records if "exception in ASGI application" in r.message
    )
    assert record.exc_info is not None
    assert '"GET /x"' in record.getMessage()


async def test_exception_after_start_aborts_the_connection(
    errors: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"10")],
            }
        )
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        raise ValueError("boom")

    async with open_connection(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"12345")  # truncated: the client knows it is incomplete
    assert any("exception in ASGI application" in r.message for r in errors.records)


async def test_no_response_gives_500(errors: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        return None

    async with open_connection(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 500
    assert any(
        "returned without sending a response" in r.message for r in errors.records
    )


async def test_start_without_body_gives_500(errors: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async with open_connection(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    # The head was held back, so the response can still be replaced.
    assert status_of(data) == 500


async def test_partial_response_is_aborted(errors: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})

    async with open_connection(app) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert not data.endswith(b"0\r\n\r\n")  # no final chunk: visibly truncated
    assert any(
        "returned before completing the response" in r.message for r in errors.records
    )


def send_sequence(*messages: dict[str, Any], catch: bool = False) -> Any:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        for message in messages:
            if catch:
                try:
                    await send(dict(message))
                except RuntimeError:
                    return
            else:
                await send(dict(message))

    return app


START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-length", b"2")],
}
BODY = {"type": "http.response.body", "body": b"ok"}
MORE = {"type": "http.response.body", "body": b"o", "more_body": True}


@pytest.mark.parametrize(
    ("messages", "status", "words"),
    [
        ((BODY,), 500, "'http.response.body' before 'http.response.start'"),
        ((START, START), 500, "'http.response.start' twice"),
        ((START, MORE, START), 200, "after the response body began"),
        (({"type": "http.response.bogus"},), 500, "unknown type 'http.response.bogus'"),
        (
            (START, {"type": "http.response.body", "body": b"toolong"}),
            500,
            "more body bytes than",
        ),
        (({**START, "headers": [(b"x", b"a\nb")]}, BODY), 500, "invalid header"),
        (({**START, "status": 204, "headers": []}, BODY), 500, "body with a 204"),
    ],
)
@pytest.mark.parametrize("app_catches", [False, True])
async def test_asgi_mistakes_are_logged_and_answered(
    errors: pytest.LogCaptureFixture,
    messages: tuple[dict[str, Any], ...],
    status: int,
    words: str,
    app_catches: bool,
) -> None:
    async with open_connection(send_sequence(*messages, catch=app_catches)) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == status
    mistakes = [
        r.getMessage() for r in errors.records if "ASGI protocol error" in r.message
    ]
    assert len(mistakes) == 1
    assert words in mistakes[0]
    # A propagated mistake is not logged a second time as a traceback.
    assert not any("exception in ASGI application" in r.message for r in errors.records)


async def test_message_after_the_final_body_closes_the_connection(
    errors: pytest.LogCaptureFixture,
) -> None:
    async with open_connection(send_sequence(START, BODY, BODY, catch=True)) as stream:
        client = RawClient(stream)
        await client.request()
        _, body = await client.response()
        assert body == b"ok"  # the complete response is delivered
        assert await read_until_closed(stream) == b""
    assert any("after the final body message" in r.getMessage() for r in errors.records)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # no Host (RFC 9112 section 3.2)
        (b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
        (b"GET /%FF HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
)
async def test_peer_errors_get_4xx_and_close(raw: bytes, status: int) -> None:
    # HTTP/1.1 alone: with HTTP/2 on, GARBAGE is an invalid HTTP/2 preface.
    async with open_connection(echo_app, config=Config(http2=False)) as stream:
        await stream.send_all(raw)
        data = await read_until_closed(stream)
    assert status_of(data) == status
    assert header_of(data, b"connection") == b"close"
    assert header_of(data, b"content-type") == b"text/plain; charset=utf-8"


async def test_malformed_chunked_body_gives_400() -> None:
    got: list[str] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        got.append((await receive())["type"])

    async with open_connection(app) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
        )
        data = await read_until_closed(stream)
    assert got == ["http.disconnect"]
    assert status_of(data) == 400


async def test_unread_small_body_is_drained_and_the_connection_kept() -> None:
    async with open_connection(text_response(b"ok")) as stream:
        client = RawClient(stream)
        await client.request("POST", body=b"x" * 1000)
        await client.response()
        client.next_cycle()
        await client.request()
        _, body = await client.response()
    assert body == b"ok"


async def test_unread_large_body_closes_the_connection() -> None:
    config = Config(max_drain_bytes=1024)
    async with open_connection(text_response(b"ok"), config=config) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
            + b"x" * 100000
        )
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"ok")


async def test_keep_alive_timeout_closes_an_idle_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = Config(timeout_keep_alive=5)
    async with open_connection(text_response(), config=config) as stream:
        client = RawClient(stream)
        await client.request()
        await client.response()
        start = trio.current_time()
        assert await read_until_closed(stream) == b""
        assert 5 <= trio.current_time() - start < 6


async def test_a_new_connection_that_sends_nothing_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = Config(timeout_header_read=3)
    async with open_connection(text_response(), config=config) as stream:
        start = trio.current_time()
        assert await read_until_closed(stream) == b""  # silently
        assert 3 <= trio.current_time() - start < 4


async def test_a_trickled_head_gets_408(autojump_clock: trio.testing.MockClock) -> None:
    config = Config(timeout_header_read=3, timeout_keep_alive=1)
    async with open_connection(text_response(), config=config) as stream:
        start = trio.current_time()

        async def trickle() -> None:
            for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: yes":
                await stream.send_all(bytes([byte]))
                await trio.sleep(0.5)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle)
            data = await read_until_closed(stream)
            nursery.cancel_scope.cancel()
    assert status_of(data) == 408
    assert 3 <= trio.current_time() - start < 4


async def test_header_deadline_restarts_after_each_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = Config(timeout_header_read=3, timeout_keep_alive=10)
    async with open_connection(text_response(), config=config) as stream:
        client = RawClient(stream)
        for _ in range(3):
            await trio.sleep(2)  # under the deadline each time
            await client.request()
            head, _ = await client.response()
            assert head.status_code == 200
            client.next_cycle()


async def test_limit_concurrency_answers_503() -> None:
    release = trio.Event()

    async def slow(scope: Any, receive: Receive, send: Send) -> None:
        await release.wait()
        await text_response()(scope, receive, send)

    shared = ServerShared()
    config = Config(limit_concurrency=1)
    pairs = [trio.testing.memory_stream_pair() for _ in range(2)]
    async with trio.open_nursery() as nursery:
        for _, server in pairs:
            nursery.start_soon(
                handle_connection, server, slow, config, ConnectionInfo(), shared
            )
        await pairs[0][0].send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        await pairs[1][0].send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = await read_until_closed(pairs[1][0])
        assert status_of(data) == 503
        assert header_of(data, b"retry-after") == b"1"
        release.set()
        first = RawClient(pairs[0][0])
        first.h11.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        first.h11.send(h11.EndOfMessage())
        head, _ = await first.response()
        assert head.status_code == 200
        nursery.cancel_scope.cancel()


async def test_server_and_date_headers_can_be_turned_off() -> None:
    config = Config(server_header=False, date_header=False)
    async with open_connection(text_response(), config=config) as stream:
        client = RawClient(stream)
        await client.request()
        head, _ = await client.response()
    names = [name for name, _ in head.headers]
    assert b"server" not in names
    assert b"date" not in names


async def test_default_headers_present() -> None:
    async with open_connection(text_response()) as stream:
        client = RawClient(stream)
        await client.request()
        head, _ = await client.response()
    headers = dict(head.headers)
    assert headers[b"server"] == b"trasgi"
    assert headers[b"date"].endswith(b" GMT")


async def test_http10_request_closes_after_the_response() -> None:
    async with open_connection(text_response(b"old")) as stream:
        await stream.send_all(b"GET / HTTP/1.0\r\n\r\n")
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"old")


async def test_access_log_line_escapes_control_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    info = ConnectionInfo(client=("10.1.2.3", 4444))
    async with open_connection(text_response(b"hey"), info=info) as stream:
        await stream.send_all(
            b'GET /a%1B"b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
        )
        await read_until_closed(stream)
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert len(lines) == 1
    assert lines[0].startswith('10.1.2.3:4444 - "GET /a%1B\\"b HTTP/1.1" 200 3 ')
    assert lines[0].endswith("ms")


async def test_graceful_shutdown_lets_the_request_finish_then_closes() -> None:

    arrived = trio.Event()
    release = trio.Event()

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        arrived.set()
        await release.wait()
        await text_response(b"finished")(scope, receive, send)

    shared = ServerShared()
    client_end, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            handle_connection, server_end, app, Config(), ConnectionInfo(), shared
        )
        await client_end.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await arrived.wait()
        shared.begin_shutdown()
        release.set()
        data = await read_until_closed(client_end)
    assert status_of(data) == 200
    assert data.endswith(b"finished")
    assert header_of(data, b"connection") == b"close"


async def test_shutdown_closes_idle_kept_alive_connections() -> None:

    shared = ServerShared()
    client_end, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            handle_connection,
            server_end,
            text_response(),
            Config(),
            ConnectionInfo(),
            shared,
        )
        client = RawClient(client_end)
        await client.request()
        await client.response()
        await trio.testing.wait_all_tasks_blocked()
        shared.begin_shutdown()
        assert await read_until_closed(client_end) == b""


async def test_state_reaches_the_scope_as_a_copy() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        seen.append(dict(scope["state"]))
        scope["state"]["mine"] = True
        await text_response()(scope, receive, send)

    state = {"db": "pool"}
    async with open_connection(app, state=state) as stream:
        client = RawClient(stream)
        for _ in range(2):
            await client.request()
            await client.response()
            client.next_cycle()
    assert seen == [{"db": "pool"}, {"db": "pool"}]
    assert state == {"db": "pool"}


async def test_bytes_split_one_at_a_time_still_parse() -> None:
    async with open_connection(echo_app) as stream:
        raw = b"POST /split HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
        for i in range(len(raw)):
            await stream.send_all(raw[i : i + 1])
        data = await read_until_closed(stream)
    assert status_of(data) == 200
    assert data.endswith(b"abc")


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]


async def test_keep_alive_survives_an_app_that_watches_for_disconnect() -> None:
    """A receive() waiting when the response completes must not lose the next request.

    The app listens for a disconnect in a task beside its response (as
    frameworks do), then keeps working after the final send; the next
    request on the kept-alive connection must still be served.
    """

    async def watching(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                await receive()
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(lambda: None)
            await trio.lowlevel.checkpoint()
            nursery.cancel_scope.cancel()

    async with open_client(watching, timeout=5) as client:
        for _ in range(200):
            assert (await client.get("/")).text == "ok"


async def test_a_body_less_request_with_connection_close_is_closed_at_once() -> None:
    # Its input ends with its head (the app never called receive()): no
    # unread byte can turn the close into a reset, so the server closes
    # without lingering (RFC 9112 section 9.6).
    async with open_connection(text_response(b"hi")) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await read_until_closed(stream)).startswith(b"HTTP/1.1 200 ")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BrokenResourceError):
            await stream.send_all(b"late bytes")  # nobody reads them any more


async def test_a_request_whose_body_was_not_read_lingers_before_closing() -> None:
    async def ignores_body(scope: Any, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    async with open_connection(ignores_body) as stream:
        head = b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        await stream.send_all(head + b"Content-Length: 10\r\n\r\n12345")
        assert (await read_until_closed(stream)).startswith(b"HTTP/1.1 200 ")
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_all(b"67890")  # still read (and dropped): no reset


async def test_pipelined_requests_whose_bodies_are_not_read_are_answered_in_order() -> (
    None
):
    # Body-less requests end with their heads; an unread body is drained.
    async def path_only(scope: Any, receive: Receive, send: Send) -> None:
        headers = [(b"x-path", scope["path"].encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async with open_connection(path_only) as stream:
        await stream.send_all(
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"DELETE /c HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /d HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
            b"GET /e HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(stream)
    paths = [line[8:] for line in data.split(b"\r\n") if line.startswith(b"x-path: ")]
    assert paths == [b"/a", b"/b", b"/c", b"/d", b"/e"]
