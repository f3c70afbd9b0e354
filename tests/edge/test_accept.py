"""The accept loop: a burst of connections is taken in one wake-up."""

from __future__ import annotations

import socket

import trio

from trasgi._edge.accept import MAX_BATCH, accept_loop

BURST = 300


class _IOWaits(trio.abc.Instrument):
    """Counts the scheduler's waits for I/O: one between every two batches."""

    def __init__(self) -> None:
        self.count = 0

    def after_io_wait(self, timeout: float) -> None:
        self.count += 1


async def test_a_queued_burst_is_taken_at_once() -> None:
    # A thousand clients connecting together must not wait one scheduler
    # batch per few dozen connections before their first byte is read.
    assert BURST <= MAX_BATCH
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1", backlog=1024)
    port = listeners[0].socket.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(BURST)]
    waits = _IOWaits()
    started_at: list[int] = []
    all_started = trio.Event()

    async def handler(stream: trio.abc.Stream) -> None:
        started_at.append(waits.count)
        if len(started_at) == BURST:
            all_started.set()
        await stream.aclose()

    trio.lowlevel.add_instrument(waits)
    try:
        async with trio.open_nursery() as handlers:
            handlers.start_soon(accept_loop, listeners[0], handler, handlers)
            with trio.fail_after(10):
                await all_started.wait()
            handlers.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(waits)
        for client in clients:
            client.close()
    # Every handler started in the batch right after one wake-up.
    assert max(started_at) - min(started_at) == 0
