"""Reference ceiling for HTTP/2: a bare trio + h2 loop with no ASGI layer.

One task per connection, and no task per stream: every request that arrives
is answered at once with a fixed hello response, inside the read loop, and
all the frames one read produced leave in one write. That is the least work
h2 allows per request: the gap between it and trasgi is what the ASGI layer,
a task per stream, flow control as backpressure and trasgi's checks cost on
top of trio and h2; the gap between it and hypercorn bounds what any server
built on h2 can gain.

Run: ``python bench/bare_h2.py --port 8000`` (stops on SIGTERM or Ctrl-C).
"""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import trio
from harness import serve_bare

HELLO = b"Hello, world!"
HEADERS = [
    (b":status", b"200"),
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(HELLO)).encode()),
]
RECEIVE_BYTES = 64 * 1024


def _answer(conn: h2.connection.H2Connection, events: list[h2.events.Event]) -> None:
    for event in events:
        if isinstance(event, h2.events.RequestReceived):
            conn.send_headers(event.stream_id, HEADERS)
            conn.send_data(event.stream_id, HELLO, end_stream=True)
        elif isinstance(event, h2.events.DataReceived):
            conn.acknowledge_received_data(
                event.flow_controlled_length, event.stream_id
            )


async def handle(stream: trio.SocketStream) -> None:
    """Serve one HTTP/2 connection (prior knowledge) until the peer leaves."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    conn.initiate_connection()
    try:
        await stream.send_all(conn.data_to_send())
        while True:
            data = await stream.receive_some(RECEIVE_BYTES)
            if not data:
                return
            _answer(conn, conn.receive_data(data))
            out = conn.data_to_send()
            if out:
                await stream.send_all(out)
    except (h2.exceptions.ProtocolError, trio.BrokenResourceError):
        return
    finally:
        await stream.aclose()


def main() -> None:
    serve_bare(handle, (__doc__ or "").splitlines()[0])


if __name__ == "__main__":
    main()
