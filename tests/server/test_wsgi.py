"""WSGI applications (PEP 3333) in worker threads, through the real server."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from examples import wsgi_flask
from trasgi import Config
from trasgi._server.wsgi import WSGI_THREADS, thread_limiter
from trasgi.testing import WebSocketDenied, open_client, open_connection, open_websocket

from ..helpers import HANG, RawClient

StartResponse = Callable[..., Callable[[bytes], None]]
Environ = dict[str, Any]


def untyped(app: object) -> Any:
    """A WSGI app where the helpers' signatures name an ASGI 3 one (for mypy)."""
    return app


def environ_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Answers with the CGI variables and the scheme, one per line."""
    keys = sorted(key for key in environ if key.isupper())
    lines = [f"{key}={environ[key]}" for key in keys]
    lines.append(f"wsgi.url_scheme={environ['wsgi.url_scheme']}")
    body = "\n".join(lines).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body]


def variables(response: httpx.Response) -> dict[str, str]:
    return dict(line.split("=", 1) for line in response.text.splitlines())


async def test_flask_example_serves_json_uploads_and_streams() -> None:
    async with open_client(
        untyped(wsgi_flask.app), config=Config(interface="wsgi")
    ) as client:
        hello = await client.get("/")
        counted = await client.post("/count", content=b"x" * 300_000)
        async with client.stream("GET", "/countdown") as streamed:
            lines = [line async for line in streamed.aiter_lines()]
    assert hello.json() == {"hello": "world", "scheme": "http", "client": "testclient"}
    assert counted.json() == {"bytes": 300_000}
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert lines == ["3", "2", "1", "liftoff"]


async def test_flask_reads_a_chunked_upload_to_its_end() -> None:
    async def pieces() -> Any:
        for _ in range(10):
            yield b"y" * 10_000

    async with open_client(untyped(wsgi_flask.app)) as client:  # auto: Flask is WSGI
        response = await client.post("/count", content=pieces())
    assert response.json() == {"bytes": 100_000}


async def test_environ_has_the_pep_3333_variables() -> None:
    config = Config(root_path="/api")
    async with open_client(untyped(environ_app), config=config) as client:
        response = await client.post(
            "/caf%C3%A9/x?q=%C3%A9&b=1",
            content=b"hello",
            headers=[
                ("Content-Type", "text/plain"),
                ("Accept", "text/html"),
                ("Accept", "application/json"),
                ("Cookie", "a=1"),
                ("X-Real_Ip", "6.6.6.6"),
            ],
        )
    found = variables(response)
    assert found["REQUEST_METHOD"] == "POST"
    assert found["SCRIPT_NAME"] == "/api"
    # The bytes of the path, unquoted, as latin-1 (PEP 3333's native strings).
    assert found["PATH_INFO"] == "/caf\u00c3\u00a9/x"
    assert found["QUERY_STRING"] == "q=%C3%A9&b=1"
    assert found["CONTENT_TYPE"] == "text/plain"
    assert found["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in found
    assert found["HTTP_ACCEPT"] == "text/html, application/json"
    assert found["HTTP_COOKIE"] == "a=1"
    assert "HTTP_X_REAL_IP" not in found  # a name with "_" could pass as a proxy's
    assert found["HTTP_HOST"] == "testserver"
    assert (found["SERVER_NAME"], found["SERVER_PORT"]) == ("testserver", "80")
    assert (found["REMOTE_ADDR"], found["REMOTE_PORT"]) == ("testclient", "50000")
    assert found["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert found["wsgi.url_scheme"] == "http"


async def test_proxy_headers_reach_the_environ_and_the_access_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    config = Config(proxy_headers=True, forwarded_allow_ips="127.0.0.1")
    async with open_client(
        untyped(environ_app), config=config, client=("127.0.0.1", 4000)
    ) as client:
        response = await client.get(
            "/",
            headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        )
    found = variables(response)
    assert found["wsgi.url_scheme"] == "https"
    assert found["REMOTE_ADDR"] == "203.0.113.9"
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert len(lines) == 1
    assert '"GET / HTTP/1.1" 200 ' in lines[0]
    assert f" 200 {len(response.content)} " in lines[0]


async def test_https_scheme_and_port_from_the_url() -> None:
    async with open_client(
        untyped(environ_app), base_url="https://example.org"
    ) as client:
        found = variables(await client.get("/"))
    assert found["wsgi.url_scheme"] == "https"
    assert (found["SERVER_NAME"], found["SERVER_PORT"]) == ("example.org", "443")


def input_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Reads its body with each of wsgi.input's methods in turn."""
    body = environ["wsgi.input"]
    parts = [
        body.read(3),
        body.readline(),
        body.readline(2),
        body.readline(),
        *body.readlines(1),
        b"|".join(line for line in body if line != b"stop\n"),
        body.read(),
        body.read(10),
    ]
    start_response("200 OK", [])
    return [repr(parts).encode()]


async def test_input_reads_lines_sizes_and_to_the_end() -> None:
    body = b"abcdef\nghij\nk\nl1\nl2\nm\nstop\nn\ntail"

    async def pieces() -> Any:  # split across messages, mid-line
        for start in range(0, len(body), 5):
            yield body[start : start + 5]

    async with open_client(untyped(input_app)) as client:
        response = await client.post("/", content=pieces())
    assert response.text == repr(
        [b"abc", b"def\n", b"gh", b"ij\n", b"k\n", b"l1\n|l2\n|m\n|n\n|tail", b"", b""]
    )


async def test_a_slow_reader_keeps_the_upload_in_the_client() -> None:
    """Backpressure: the body crosses only as fast as the application reads."""
    first_read = trio.Event()
    gate = threading.Event()
    total = 10 * 1024 * 1024

    def slow_reader(environ: Environ, start_response: StartResponse) -> list[bytes]:
        body = environ["wsgi.input"]
        count = len(body.read(65536))
        trio.from_thread.run_sync(first_read.set)
        gate.wait(HANG)
        while piece := body.read(65536):
            count += len(piece)
        start_response("200 OK", [("Connection", "close")])
        return [b"%d" % count]

    client_end, server_end = trio.testing.lockstep_stream_pair()
    sent = 0
    async with open_connection(
        untyped(slow_reader), stream_pair=lambda: (client_end, server_end)
    ) as stream:

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
            with trio.fail_after(HANG):
                await first_read.wait()
            await trio.testing.wait_all_tasks_blocked()
            # Read: 64 KiB; in flight: a piece or two. Not the 10 MiB.
            assert sent <= 4 * 65536
            gate.set()
        raw = await RawClient(stream).response()
    assert raw[0].status_code == 200
    assert raw[1] == b"%d" % total


async def test_the_response_leaves_chunk_by_chunk() -> None:
    step = threading.Event()

    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"first"
        step.wait(HANG)  # the second chunk only once the first arrived
        yield b"second"

    parts: list[bytes] = []
    async with (
        open_client(untyped(app)) as client,
        client.stream("GET", "/") as response,
    ):
        async for part in response.aiter_raw():
            parts.append(part)
            step.set()
    assert parts == [b"first", b"second"]


class Tracked:
    """A response iterable that records its close() in the trio run."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = iter(chunks)
        self.closed = trio.Event()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self.chunks)

    def close(self) -> None:
        trio.from_thread.run_sync(self.closed.set)


def serving(
    iterable: Iterable[bytes],
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])
        return iterable

    return app


async def test_close_is_called_at_the_end() -> None:
    tracked = Tracked([b"a", b"b"])
    async with open_client(untyped(serving(tracked))) as client:
        assert (await client.get("/")).text == "ab"
    assert tracked.closed.is_set()


async def test_close_is_called_when_the_iterable_fails() -> None:
    def failing() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("broken iterable")

    tracked = Tracked(failing())
    async with open_client(untyped(serving(tracked))) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")  # the response is cut short
    assert tracked.closed.is_set()


async def test_close_is_called_when_the_client_leaves() -> None:
    def endless() -> Iterator[bytes]:
        for _ in range(100_000):
            yield b"z" * 1024

    tracked = Tracked(endless())
    async with open_connection(untyped(serving(tracked))) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await stream.receive_some(100)
        await stream.aclose()
        with trio.fail_after(HANG):
            await tracked.closed.wait()


async def test_close_is_called_when_the_request_is_cancelled() -> None:
    gate = threading.Event()

    def waiting() -> Iterator[bytes]:
        yield b"first"
        gate.wait(HANG)
        yield b"never sent"

    tracked = Tracked(waiting())
    async with open_connection(untyped(serving(tracked))) as stream:
        await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await stream.receive_some(100)
    # Leaving open_connection cancelled the server: the thread, abandoned,
    # stops at its next write and closes the iterable.
    assert not tracked.closed.is_set()
    gate.set()
    with trio.fail_after(HANG):
        await tracked.closed.wait()


async def test_write_and_the_iterable_are_both_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        write(b"b")
        return [b"", b"c"]

    async with open_client(untyped(app)) as client:
        assert (await client.get("/")).text == "abc"


def render() -> None:
    raise ValueError("while rendering")


async def test_exc_info_replaces_a_response_not_yet_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            render()
        except ValueError:
            start_response("503 Unavailable", [("X-Second", "1")], sys.exc_info())
        return [b"sorry"]

    async with open_client(untyped(app)) as client:
        response = await client.get("/")
    assert (response.status_code, response.text) == (503, "sorry")
    assert "x-first" not in response.headers
    assert response.headers["x-second"] == "1"


async def test_exc_info_after_the_head_was_sent_cuts_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            render()
        except ValueError:
            start_response("500 Error", [], sys.exc_info())  # re-raises
        return [b"unreachable"]

    async with open_client(untyped(app)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
    logged = [r for r in caplog.records if r.exc_info]
    assert logged
    assert "while rendering" in str(logged[0].exc_info[1])  # type: ignore[index]


async def test_a_second_start_response_without_exc_info_is_a_500() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("201 Created", [])
        return [b""]

    async with open_client(untyped(app)) as client:
        assert (await client.get("/")).status_code == 500


async def test_wsgi_errors_go_to_the_error_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        errors = environ["wsgi.errors"]
        errors.write("first part, ")
        errors.write("same line\n")
        errors.writelines(["two\n", "lines\n"])
        errors.write("flushed")
        errors.flush()
        start_response("200 OK", [])
        return []

    async with open_client(untyped(app)) as client:
        assert (await client.get("/")).status_code == 200
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name == "trasgi.error" and r.levelno == logging.ERROR
    ]
    assert logged == ["first part, same line", "two", "lines", "flushed"]


async def test_lifespan_is_answered_and_websockets_refused() -> None:
    async with open_client(
        untyped(environ_app), config=Config(lifespan="on")
    ) as client:
        assert (await client.get("/")).status_code == 200
    with pytest.raises(WebSocketDenied) as denied:
        async with open_websocket(untyped(environ_app), "/"):
            pass
    assert denied.value.status_code == 403


async def test_threads_are_limited_per_run() -> None:
    limiter = thread_limiter()
    assert limiter is thread_limiter()
    assert limiter.total_tokens == WSGI_THREADS


async def test_head_and_http2_requests() -> None:
    async with open_client(untyped(environ_app), http2=True) as client:
        head = await client.head("/")
        got = await client.get("/")
    assert (head.status_code, head.content) == (200, b"")
    assert got.http_version == "HTTP/2"
    assert variables(got)["SERVER_PROTOCOL"] == "HTTP/2"


async def test_a_client_leaving_mid_upload_ends_the_read() -> None:
    raised: list[BaseException] = []
    done = trio.Event()

    def reader(environ: Environ, start_response: StartResponse) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            raised.append(exc)
            raise
        finally:
            trio.from_thread.run_sync(done.set)
        return []

    async with open_connection(untyped(reader)) as stream:
        await stream.send_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial"
        )
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
        with trio.fail_after(HANG):
            await done.wait()
    assert [type(exc).__name__ for exc in raised] == ["ClientDisconnected"]


def str_body(environ: Environ, start_response: StartResponse) -> list[Any]:
    start_response("200 OK", [])
    return ["text, not bytes"]


def no_start_response(environ: Environ, start_response: StartResponse) -> list[bytes]:
    return [b"body"]


def bad_status(environ: Environ, start_response: StartResponse) -> list[bytes]:
    start_response("OK", [])
    return [b"body"]


@pytest.mark.parametrize(
    ("app", "says"),
    [
        (str_body, "a WSGI body must be bytes, got str"),
        (no_start_response, "returned a body before calling start_response()"),
        (bad_status, "a WSGI status must look like '200 OK', got 'OK'"),
    ],
)
async def test_wsgi_mistakes_are_500s_that_say_what_went_wrong(
    app: Any, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_client(untyped(app)) as client:
        assert (await client.get("/")).status_code == 500
    (logged,) = [r for r in caplog.records if r.exc_info]
    assert says in str(logged.exc_info[1])  # type: ignore[index]
