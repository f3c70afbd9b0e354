"""Open many idle keep-alive connections to a server and hold them.

Each connection sends one ``GET /`` and reads the whole response, so the
server has served a request on it and now keeps it alive, idle. With
``--http2`` each connection instead opens HTTP/2 with prior knowledge (h2c):
it sends the connection preface and an empty SETTINGS frame, reads the
server's SETTINGS and the acknowledgement of its own, acknowledges the
server's, and sends nothing more. When all are open the script prints one
JSON line (``{"open": N, "failed": M}``) and holds them until a line (or end
of file) arrives on standard input, or until ``--hold`` seconds pass, then
closes them all and exits.

Run: ``python bench/idle_client.py --port 8000 --count 10000 [--http2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from harness import raise_file_limit

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
#: The HTTP/2 client connection preface (RFC 9113 section 3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#: Frame headers: length 0, type SETTINGS (4), flags none or ACK (1), stream 0.
SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_ACK = bytes([0, 0, 0, 4, 1, 0, 0, 0, 0])
FRAME_HEADER_BYTES = 9
TYPE_SETTINGS, TYPE_GOAWAY, FLAG_ACK = 4, 7, 1
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_one(
    host: str, port: int, timeout: float, *, http2: bool = False
) -> Connection | None:
    """Open one connection and make it idle (see the module); None on failure."""
    opening = _settings_exchange(host, port) if http2 else _request(host, port)
    try:
        return await asyncio.wait_for(opening, timeout)
    except (
        OSError,
        asyncio.IncompleteReadError,
        asyncio.LimitOverrunError,
        asyncio.TimeoutError,
        ValueError,
    ):
        return None


async def _request(host: str, port: int) -> Connection:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    await reader.readexactly(_content_length(head))
    return reader, writer


async def _settings_exchange(host: str, port: int) -> Connection:
    """Open HTTP/2 with prior knowledge and complete the SETTINGS exchange."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(PREFACE + SETTINGS)
    theirs = acked = False
    while not (theirs and acked):
        header = await reader.readexactly(FRAME_HEADER_BYTES)
        await reader.readexactly(int.from_bytes(header[:3], "big"))
        kind, flags = header[3], header[4]
        if kind == TYPE_GOAWAY:
            raise ValueError("the server sent GOAWAY")
        if kind == TYPE_SETTINGS and flags & FLAG_ACK:
            acked = True
        elif kind == TYPE_SETTINGS:
            theirs = True
            writer.write(SETTINGS_ACK)
    await writer.drain()
    return reader, writer


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return int(value)
    raise ValueError("no content-length")


async def open_all(args: argparse.Namespace) -> list[Connection]:
    """Open ``args.count`` connections, ``args.batch`` at a time."""
    opened: list[Connection] = []
    for start in range(0, args.count, args.batch):
        size = min(args.batch, args.count - start)
        batch = [
            open_one(args.host, args.port, args.timeout, http2=args.http2)
            for _ in range(size)
        ]
        opened += [c for c in await asyncio.gather(*batch) if c is not None]
    return opened


async def wait_for_release(hold: float) -> None:
    """Return when standard input has a line or ends, or after ``hold`` seconds."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readline(), hold)
    finally:
        transport.close()


async def run(args: argparse.Namespace) -> None:
    connections = await open_all(args)
    report = {"open": len(connections), "failed": args.count - len(connections)}
    print(json.dumps(report), flush=True)
    try:
        await wait_for_release(args.hold)
    finally:
        for _reader, writer in connections:
            writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--hold", type=float, default=120.0)
    parser.add_argument(
        "--http2", action="store_true", help="idle HTTP/2 (h2c) connections"
    )
    args = parser.parse_args()
    raise_file_limit()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
