"""Load a WebSocket echo route: many connections, each a send-receive loop.

Each of ``--connections`` connections opens ``ws://HOST:PORT/ws`` (no
compression, so the servers frame what they are sent), then sends a binary
message of ``--size`` bytes and waits for its echo, again and again. The
first ``--warmup`` seconds are not counted; over the next ``--seconds`` the
script counts the echoes received and times each round trip, then prints one
JSON line: ``{"messages_s": ..., "p50_ms": ..., "p99_ms": ..., "errors": N}``.

It runs on uvloop when installed, with the websockets library (its framing
and masking in C), so that one client CPU keeps up with the servers.

Run: ``python bench/ws_echo_client.py --port 8000 [--connections 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import statistics
import time
from typing import Any

from harness import raise_file_limit
from websockets.asyncio.client import connect


class Tally:
    """Echoes counted in the measured window, and their round trips."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.round_trips: list[float] = []
        self.errors = 0


async def echo_loop(url: str, payload: bytes, tally: Tally) -> None:
    """One connection: send, await the echo, until the window ends."""
    try:
        async with connect(
            url, compression=None, max_size=None, ping_interval=None
        ) as ws:
            while (now := time.monotonic()) < tally.end:
                await ws.send(payload)
                echo = await ws.recv()
                done = time.monotonic()
                if len(echo) != len(payload):
                    tally.errors += 1
                elif now >= tally.start:
                    tally.round_trips.append(done - now)
    except Exception:  # refused, reset or closed: counted, not fatal
        tally.errors += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = f"ws://{args.host}:{args.port}{args.path}"
    payload = b"x" * args.size
    start = time.monotonic() + args.warmup
    tally = Tally(start, start + args.seconds)
    await asyncio.gather(
        *(echo_loop(url, payload, tally) for _ in range(args.connections))
    )
    trips = sorted(tally.round_trips)
    if not trips:
        return {"error": f"no echo received ({tally.errors} errors)"}
    return {
        "messages": len(trips),
        "messages_s": len(trips) / args.seconds,
        "p50_ms": statistics.median(trips) * 1000,
        "p99_ms": trips[min(len(trips) - 1, int(len(trips) * 0.99))] * 1000,
        "errors": tally.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--path", default="/ws")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    raise_file_limit()
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        runner = importlib.import_module("uvloop").run
    print(json.dumps(runner(run(args))), flush=True)


if __name__ == "__main__":
    main()
