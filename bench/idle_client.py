"""Open many idle keep-alive connections to a server and hold them.

Each connection sends one ``GET /`` and reads the whole response, so the
server has served a request on it and now keeps it alive, idle. When all are
open the script prints one JSON line (``{"open": N, "failed": M}``) and holds
them until a line (or end of file) arrives on standard input, or until
``--hold`` seconds pass, then closes them all and exits.

Run: ``python bench/idle_client.py --port 8000 --count 10000``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys

from harness import raise_file_limit

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_one(host: str, port: int, timeout: float) -> Connection | None:
    """Open one connection and complete one request on it; None on failure."""
    try:
        return await asyncio.wait_for(_request(host, port), timeout)
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
        batch = [open_one(args.host, args.port, args.timeout) for _ in range(size)]
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
    args = parser.parse_args()
    raise_file_limit()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
