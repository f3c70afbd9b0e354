"""HTTP/2's counters in the metrics: streams, resets both ways, GOAWAYs."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.events
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._server.metrics import ServerMetrics

from ..helpers import HANG, Receive, Send


async def ok(scope: Any, receive: Receive, send: Send) -> None:
    if scope["path"] == "/wait":
        await receive()  # the body
        await receive()  # http.disconnect, once the client resets
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def request(conn: h2.connection.H2Connection, stream_id: int, path: bytes) -> None:
    conn.send_headers(
        stream_id,
        [
            (b":method", b"GET"),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"t"),
        ],
        end_stream=True,
    )


async def test_streams_resets_and_goaways_are_counted() -> None:
    shared = ServerShared()
    metrics = ServerMetrics(shared)
    client_end, server_end = trio.testing.memory_stream_pair()
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    request(conn, 1, b"/")
    request(conn, 3, b"/wait")
    conn.reset_stream(3)
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                handle_connection, server_end, ok, Config(), ConnectionInfo(), shared
            )
            await client_end.send_all(conn.data_to_send())
            ended = False
            while not ended:
                data = await client_end.receive_some()
                for event in conn.receive_data(data):
                    ended = ended or isinstance(event, h2.events.StreamEnded)
            conn.close_connection()
            await client_end.send_all(conn.data_to_send())
            await client_end.aclose()
    text = metrics.exposition().decode()
    assert "trasgi_http2_streams_total 2.0" in text
    assert "trasgi_http2_resets_received_total 1.0" in text
    assert "trasgi_http2_goaways_received_total 1.0" in text
    assert shared.h2.resets_sent == 0
