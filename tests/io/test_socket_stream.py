"""DirectSocketStream: trio's stream contract, over real connected sockets."""

from __future__ import annotations

import socket
import ssl

import pytest
import trio
import trio.testing
import trustme

from trasgi import ConnectionInfo
from trasgi._edge.accept import accept_loop
from trasgi._edge.listeners import connection_info
from trasgi._edge.tls import wrap_listeners
from trasgi._io.inbox import Inbox
from trasgi._io.socket_stream import DirectSocketStream, SendStalled


def _pair() -> tuple[DirectSocketStream, DirectSocketStream]:
    left, right = socket.socketpair()
    return DirectSocketStream(left), DirectSocketStream(right)


async def _stream_pair() -> tuple[DirectSocketStream, DirectSocketStream]:
    return _pair()


async def _clogged_pair() -> tuple[DirectSocketStream, DirectSocketStream]:
    """A pair whose send_all blocks both ways: every buffer is full."""
    left, right = _pair()
    for sender in (left, right):
        while True:
            try:
                sender.socket.send(b"x" * 65536)
            except BlockingIOError:
                break
    return left, right


async def test_passes_trios_half_closeable_stream_checks() -> None:
    # trio's own conformance suite: checkpoints, cancellation, closing,
    # concurrent misuse, send_eof, wait_send_all_might_not_block.
    await trio.testing.check_half_closeable_stream(_stream_pair, _clogged_pair)


async def test_large_write_waits_for_the_reader_and_arrives_whole() -> None:
    sender, receiver = _pair()
    payload = bytes(range(256)) * 16384  # 4 MiB: far more than the buffers
    received = bytearray()

    async def read_all() -> None:
        while len(received) < len(payload):
            received.extend(await receiver.receive_some())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await sender.send_all(payload)
    assert received == payload
    await sender.aclose()
    await receiver.aclose()


async def test_a_closed_peer_is_a_broken_resource() -> None:
    mine, theirs = _pair()
    await theirs.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await mine.send_all(b"x")
    await mine.aclose()


async def test_a_peer_that_stops_reading_stalls_the_send(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = socket.socketpair()
    sender = DirectSocketStream(left, send_timeout=5.0)
    start = trio.current_time()
    with pytest.raises(SendStalled):
        await sender.send_all(b"x" * (16 * 1024 * 1024))  # nobody reads
    assert trio.current_time() - start == pytest.approx(5.0)
    await sender.aclose()
    right.close()


async def test_a_write_the_kernel_takes_at_once_needs_no_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Even with a zero timeout: the deadline applies only to waiting.
    left, right = socket.socketpair()
    sender = DirectSocketStream(left, send_timeout=0.0)
    await sender.send_all(b"hello")
    assert right.recv(16) == b"hello"
    await sender.aclose()
    right.close()


async def test_close_wakes_a_waiting_reader() -> None:
    mine, theirs = _pair()

    async def close_soon() -> None:
        await trio.testing.wait_all_tasks_blocked()
        await mine.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(close_soon)
        with pytest.raises(trio.ClosedResourceError):
            await mine.receive_some()
    await theirs.aclose()


@pytest.mark.parametrize("bind", ["127.0.0.1", "0.0.0.0"])
async def test_accept_loop_serves_tcp_connections_through_direct_streams(
    bind: str,
) -> None:
    # Bound to a wildcard, the server address is the one the client reached.
    listeners = await trio.open_tcp_listeners(0, host=bind)
    port = listeners[0].socket.getsockname()[1]
    seen: list[tuple[type[object], ConnectionInfo, bytes | bytearray]] = []
    nodelay: list[int] = []

    async def handler(stream: trio.abc.Stream) -> None:
        info = connection_info(stream)
        if isinstance(stream, DirectSocketStream):
            nodelay.append(
                stream.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            )
        data = await stream.receive_some()
        await stream.send_all(data.upper())
        seen.append((type(stream), info, data))
        await stream.aclose()

    async with trio.open_nursery() as handlers:
        handlers.start_soon(accept_loop, listeners[0], handler, handlers)
        for _ in range(3):
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await client.send_all(b"ping")
            assert await client.receive_some() == b"PING"
            assert await client.receive_some() == b""
            await client.aclose()
        handlers.cancel_scope.cancel()
    assert [kind for kind, _, _ in seen] == [DirectSocketStream] * 3
    info = seen[0][1]
    assert info.server == ("127.0.0.1", port)
    assert info.client is not None
    assert info.client[0] == "127.0.0.1"
    # Nagle is off, as with trio's socket streams: responses are written whole.
    assert nodelay == [1, 1, 1]


async def test_inbox_takes_what_already_arrived_without_waiting() -> None:
    mine, theirs = _pair()
    got: list[bytes] = []
    inbox = Inbox(mine, got.append)
    assert not inbox.fill_nowait()  # nothing sent yet: the caller must wait
    theirs.socket.send(b"GET / HTTP/1.1\r\n")
    assert inbox.fill_nowait()
    assert got == [b"GET / HTTP/1.1\r\n"]
    await theirs.aclose()
    assert inbox.fill_nowait()
    assert inbox.eof
    assert got[-1] == b""
    await mine.aclose()


async def test_inbox_over_other_streams_always_waits() -> None:
    left, right = trio.testing.memory_stream_pair()
    got: list[bytes] = []
    inbox = Inbox(left, got.append)
    await right.send_all(b"data")
    assert not inbox.fill_nowait()
    await inbox.fill()
    assert got == [b"data"]


async def test_pieces_arrive_in_order_as_if_joined() -> None:
    sender, receiver = _pair()
    await sender.send_all_pieces(
        [b"HTTP/1.1 200 OK\r\n\r\n", b"4\r\n", b"body", b"\r\n"]
    )
    assert await receiver.receive_some() == b"HTTP/1.1 200 OK\r\n\r\n4\r\nbody\r\n"
    await sender.aclose()
    await receiver.aclose()


async def test_pieces_larger_than_the_buffers_wait_for_the_reader() -> None:
    sender, receiver = _pair()
    pieces = [bytes([n]) * 700_000 for n in range(1, 7)]  # 4.2 MB in six
    received = bytearray()

    async def read_all() -> None:
        while len(received) < 4_200_000:
            received.extend(await receiver.receive_some())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read_all)
        await sender.send_all_pieces(pieces)
    assert received == b"".join(pieces)
    await sender.aclose()
    await receiver.aclose()


async def test_tls_listeners_made_by_trasgi_are_accepted_from_directly() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    plain = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listeners = wrap_listeners(plain, server_context)
    port = plain[0].socket.getsockname()[1]
    layers: list[tuple[type[object], type[object]]] = []

    async def handler(stream: trio.abc.Stream) -> None:
        assert isinstance(stream, trio.SSLStream)
        layers.append((type(stream), type(stream.transport_stream)))
        data = await stream.receive_some()
        await stream.send_all(data.upper())
        await stream.aclose()

    async with trio.open_nursery() as handlers:
        handlers.start_soon(accept_loop, listeners[0], handler, handlers)
        client = await trio.open_ssl_over_tcp_stream(
            "localhost", port, ssl_context=client_context
        )
        await client.send_all(b"ping")
        assert await client.receive_some() == b"PING"
        await client.aclose()
        handlers.cancel_scope.cancel()
    assert layers == [(trio.SSLStream, DirectSocketStream)]
