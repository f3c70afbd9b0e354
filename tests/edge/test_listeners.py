"""Listeners: --bind forms, several at once, IPv6, Unix socket permissions."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from trasgi import Config
from trasgi._config.binds import Bind, parse_bind
from trasgi._server.serve import serve

from ..helpers import text_response


@pytest.mark.parametrize(
    ("text", "bind"),
    [
        ("127.0.0.1:8000", Bind("tcp", host="127.0.0.1", port=8000)),
        ("0.0.0.0:0", Bind("tcp", host="0.0.0.0", port=0)),
        ("[::1]:8443", Bind("tcp", host="::1", port=8443)),
        ("[::]:80", Bind("tcp", host="::", port=80)),
        ("localhost:65535", Bind("tcp", host="localhost", port=65535)),
        ("unix:/run/app.sock", Bind("unix", path="/run/app.sock")),
        ("fd://3", Bind("fd", fd=3)),
    ],
)
def test_parse_bind(text: str, bind: Bind) -> None:
    assert parse_bind(text) == bind


@pytest.mark.parametrize(
    "text",
    [
        "8000",
        ":8000",
        "host:",
        "host:port",
        "host:70000",
        "unix:",
        "fd://x",
        "::1:80",
        "[::1:80",
        "a]:80",
    ],
)
def test_bad_bind_is_refused_by_config(text: str) -> None:
    with pytest.raises(ValueError, match="bind must be HOST:PORT"):
        Config(bind=(text,))


def ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_several_listeners_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    binds = ["127.0.0.1:0", f"unix:{path}"]
    if ipv6_available():
        binds.append("[::1]:0")
    config = Config(bind=tuple(binds), uds_permissions=0o660, lifespan="off")
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            lambda task_status: serve(
                text_response(b"hi"), config, task_status=task_status
            )
        )
        assert len(listeners) == len(binds)
        names = [listener.socket.getsockname() for listener in listeners]
        tcp = [name for name in names if isinstance(name, tuple)]
        async with httpx.AsyncClient() as client:
            for host, port, *_ in tcp:
                shown = f"[{host}]" if ":" in host else host
                assert (await client.get(f"http://{shown}:{port}/")).text == "hi"
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=path)
        ) as client:
            assert (await client.get("http://localhost/")).text == "hi"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        nursery.cancel_scope.cancel()


async def test_a_failed_bind_closes_the_listeners_already_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = Config(bind=("127.0.0.1:0", f"127.0.0.1:{port}"), lifespan="off")
        before = len(os.listdir("/proc/self/fd"))
        with pytest.raises(OSError, match="in use"):
            await serve(text_response(), config)
        assert len(os.listdir("/proc/self/fd")) == before


def fd_listener(family: int, address: Any) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(address)
    sock.listen(8)
    return sock


async def test_inherited_unix_socket_descriptor(tmp_path: Path) -> None:
    path = str(tmp_path / "inherited.sock")
    sock = fd_listener(socket.AF_UNIX, path)
    try:
        config = Config(bind=(f"fd://{sock.fileno()}",), lifespan="off")
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: serve(
                    text_response(b"fd"), config, task_status=task_status
                )
            )
            async with httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=path)
            ) as client:
                assert (await client.get("http://localhost/")).text == "fd"
            nursery.cancel_scope.cancel()
    finally:
        sock.detach()  # the server adopted the descriptor and closed it
