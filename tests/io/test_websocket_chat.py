"""examples/chat.py: the broadcast chat room, through the real server in memory."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from examples.chat import TOO_SLOW, ChatRoom
from trasgi.testing import WebSocketClosed, open_client, open_websocket

from ..helpers import HANG


async def test_every_member_hears_every_line() -> None:
    room = ChatRoom()
    with trio.fail_after(HANG):
        async with open_websocket(room, "/?name=ada") as ada:
            assert await ada.receive_text() == "* ada joined"
            async with open_websocket(room, "/?name=bob") as bob:
                assert await bob.receive_text() == "* bob joined"
                assert await ada.receive_text() == "* bob joined"
                await ada.send_text("hello")
                assert await ada.receive_text() == "ada: hello"
                assert await bob.receive_text() == "ada: hello"
            assert await ada.receive_text() == "* bob left"
            assert len(room.members) == 1
    assert room.members == set()


async def test_a_member_who_lags_is_dropped_with_1008() -> None:
    room = ChatRoom(backlog=2)
    with trio.fail_after(HANG):
        async with (
            open_websocket(
                room, "/?name=slow", stream_pair=trio.testing.lockstep_stream_pair
            ) as slow,
            open_websocket(room, "/?name=fast") as fast,
        ):
            assert await fast.receive_text() == "* fast joined"
            # slow reads nothing: the server's write of its first line waits,
            # and its two-line backlog overflows at the third line.
            for n in range(3):
                await fast.send_text(str(n))
                assert await fast.receive_text() == f"fast: {n}"
            received = [await slow.receive_text() for _ in range(3)]
            assert received == ["* slow joined", "* fast joined", "fast: 0"]
            with pytest.raises(WebSocketClosed) as closed:
                await slow.receive()
            assert (closed.value.code, closed.value.reason) == (TOO_SLOW, "too slow")
            assert await fast.receive_text() == "* slow left"


async def test_the_page_is_served_over_http() -> None:
    async with open_client(ChatRoom()) as client:
        page = await client.get("/")
        missing = await client.get("/nope")
    assert page.status_code == 200
    assert "new WebSocket" in page.text
    assert missing.status_code == 404
