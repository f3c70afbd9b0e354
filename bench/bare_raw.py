"""Reference ceiling: a bare trio loop with no HTTP parsing at all.

One task per connection reads until it sees ``\\r\\n\\r\\n`` and writes fixed,
prebuilt response bytes. It looks at the request head only to pick the
response (``GET /stream`` gets 1 MiB in 64 KiB chunks, anything else the
hello) and to honour ``Connection: close``. It cannot read request bodies, so
it takes no part in the upload scenario. The gap between it and trasgi is
everything HTTP costs in Python on top of trio's socket I/O.

Run: ``python bench/bare_raw.py --port 8000`` (stops on SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import trio
from harness import serve_bare

HELLO = b"Hello, world!"
STREAM_CHUNK = b"x" * (64 * 1024)
STREAM_CHUNKS = 16
RECEIVE_BYTES = 64 * 1024
END_OF_HEAD = b"\r\n\r\n"


def _fixed(body: bytes, *, close: bool) -> bytes:
    connection = b"connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\n"
        + connection
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


HELLO_KEEP = _fixed(HELLO, close=False)
HELLO_CLOSE = _fixed(HELLO, close=True)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
STREAM_FRAME = f"{len(STREAM_CHUNK):x}\r\n".encode() + STREAM_CHUNK + b"\r\n"
STREAM_END = b"0\r\n\r\n"


async def _respond(stream: trio.SocketStream, head: bytes) -> bool:
    """Write the fixed response for one request head; False if it asked to close."""
    close = b"connection: close" in head.lower()
    if head.startswith(b"GET /stream "):
        await stream.send_all(STREAM_HEAD)
        for _ in range(STREAM_CHUNKS):
            await stream.send_all(STREAM_FRAME)
        await stream.send_all(STREAM_END)
    else:
        await stream.send_all(HELLO_CLOSE if close else HELLO_KEEP)
    return not close


async def handle(stream: trio.SocketStream) -> None:
    """Answer every request head on one connection until either side closes."""
    buffer = b""
    try:
        while True:
            data = await stream.receive_some(RECEIVE_BYTES)
            if not data:
                return
            buffer += data
            while END_OF_HEAD in buffer:
                head, _, buffer = buffer.partition(END_OF_HEAD)
                if not await _respond(stream, head):
                    return
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
    finally:
        await stream.aclose()


def main() -> None:
    serve_bare(handle, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
