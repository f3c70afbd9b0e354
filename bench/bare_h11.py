"""Reference ceiling: a bare trio + h11 loop with no ASGI layer.

One task per connection; h11 parses each request and frames a fixed
response. It serves the same routes as ``bench_apps.app`` (``/``,
``/stream``, ``/upload``, ``/json``) with the same bodies, so the gap between
it and trasgi is what the ASGI layer, the per-connection tasks and trasgi's
own bookkeeping cost on top of trio and h11.

Run: ``python bench/bare_h11.py --port 8000`` (stops on SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import json

import h11
import trio
from harness import serve_bare

HELLO = b"Hello, world!"
JSON_BODY = json.dumps({"message": "Hello, world!"}).encode()
STREAM_CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 16
RECEIVE_BYTES = 64 * 1024


def _response(content_type: bytes, length: int | None) -> h11.Response:
    headers = [(b"content-type", content_type)]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return h11.Response(status_code=200, headers=headers)


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> h11.Event:
    """Return the next h11 event, reading from the stream as h11 needs."""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(RECEIVE_BYTES))
            continue
        assert not isinstance(event, type), "h11 paused: pipelining is not used"
        return event


async def _send(
    conn: h11.Connection, stream: trio.SocketStream, event: h11.Event
) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _respond(
    conn: h11.Connection, stream: trio.SocketStream, target: bytes, body_bytes: int
) -> None:
    """Frame and write the fixed response for one request target."""
    if target == b"/upload":
        body = str(body_bytes).encode()
        await _send(conn, stream, _response(b"text/plain; charset=utf-8", len(body)))
        await _send(conn, stream, h11.Data(data=body))
    elif target == b"/stream":
        await _send(conn, stream, _response(b"application/octet-stream", None))
        for _ in range(STREAM_CHUNKS):
            await _send(conn, stream, h11.Data(data=STREAM_CHUNK))
    else:
        body = JSON_BODY if target == b"/json" else HELLO
        kind = (
            b"application/json" if target == b"/json" else b"text/plain; charset=utf-8"
        )
        await _send(conn, stream, _response(kind, len(body)))
        await _send(conn, stream, h11.Data(data=body))
    await _send(conn, stream, h11.EndOfMessage())


async def _read_body(conn: h11.Connection, stream: trio.SocketStream) -> int:
    """Read the request body up to its end; return its length."""
    size = 0
    while True:
        event = await _next_event(conn, stream)
        if isinstance(event, h11.Data):
            size += len(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return size
        if isinstance(event, h11.ConnectionClosed):
            raise trio.BrokenResourceError("closed inside a request body")


async def handle(stream: trio.SocketStream) -> None:
    """Serve requests on one connection until either side closes it."""
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await _next_event(conn, stream)
            if not isinstance(event, h11.Request):
                return
            target = event.target
            body_bytes = await _read_body(conn, stream)
            await _respond(conn, stream, target, body_bytes)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
    except (h11.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


def main() -> None:
    serve_bare(handle, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
