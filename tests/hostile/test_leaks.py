"""A torture run over loopback leaves no file descriptor or task behind."""

from __future__ import annotations

import os
from typing import Any

import httpx
import trio

import trasgi
from trasgi import Config

from ..helpers import Receive, Send, echo_app


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def count_tasks(task: trio.lowlevel.Task | None = None) -> int:
    task = task or trio.lowlevel.current_root_task()
    assert task is not None
    return 1 + sum(
        count_tasks(child)
        for nursery in task.child_nurseries
        for child in nursery.child_tasks
    )


async def streaming_app(scope: Any, receive: Receive, send: Send) -> None:
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(50):
            await send(
                {"type": "http.response.body", "body": b"x" * 4096, "more_body": True}
            )
            await trio.sleep(0.001)
        await send({"type": "http.response.body"})
        return
    await echo_app(scope, receive, send)


async def raw(port: int, data: bytes, read: bool = True) -> None:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        await stream.send_all(data)
        if read:
            with trio.move_on_after(5):
                while await stream.receive_some(65536):
                    pass
    except trio.BrokenResourceError:
        pass
    finally:
        await stream.aclose()


async def torture(port: int) -> None:
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for i in range(30):  # keep-alive
            assert (await client.post(f"{url}/k", content=b"a" * i)).status_code == 200
    pipelined = (
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 10
        + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(raw, port, pipelined)
            nursery.start_soon(
                raw,
                port,
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial",
                False,
            )
            nursery.start_soon(raw, port, b"\x00garbage\r\n\r\n")
            nursery.start_soon(
                raw, port, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n", False
            )  # leaves mid-response
            nursery.start_soon(
                raw,
                port,
                b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
            )


async def test_no_leaks_after_a_torture_run() -> None:
    config = Config(
        timeout_keep_alive=0.2,
        timeout_header_read=0.5,
        timeout_body_read=0.5,
        lifespan="off",
    )
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: trasgi.serve_tcp(
                streaming_app,
                0,
                host="127.0.0.1",
                config=config,
                task_status=task_status,
            )
        )
        port = listeners[0].socket.getsockname()[1]
        await raw(
            port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )  # warm up
        await trio.sleep(0.1)
        fds, tasks = open_fds(), count_tasks()
        for _ in range(3):
            await torture(port)
        # Every server-side connection ends within its timeouts.
        with trio.fail_after(15):
            while (open_fds(), count_tasks()) != (fds, tasks):  # noqa: ASYNC110
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
