"""The containers how-to: its image's command, run as a container's PID 1.

No Docker engine runs here, so the image is not built. What the image would
run is run instead: the page's ``ENTRYPOINT`` and ``CMD``, with the page's
application, as the first process of a new PID namespace (``unshare``, from
util-linux; tini from Debian's ``tini`` package, which ``.ci/run``
installs).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
import trio

from ..helpers import require_tool
from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "how-to" / "containers-and-kubernetes.md"
#: Long enough for a Python process to start; short enough that a hang fails.
DEADLINE = 20.0
#: How long the in-flight request of the shutdown test takes.
SLOW_SECONDS = 1.0


def block(info: str) -> str:
    (code,) = [b.code for b in fenced_blocks(PAGE) if b.info == info]
    return code


def instruction(name: str) -> list[str]:
    """A Dockerfile instruction's arguments, which must be in exec form."""
    (line,) = [
        line for line in block("dockerfile").splitlines() if line.startswith(name)
    ]
    words = json.loads(line[len(name) :])  # the shell form would not parse
    assert isinstance(words, list)
    return words


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def yaml_number(key: str) -> int:
    found = re.search(rf"^[\s-]*{key}: (\d+)$", block("yaml"), re.MULTILINE)
    assert found is not None, key
    return int(found[1])


def test_the_grace_period_holds_the_pause_and_the_graceful_shutdown() -> None:
    manifest = block("yaml")
    command = instruction("CMD")
    pause = re.search(r'command: \["sleep", "(\d+)"\]', manifest)
    assert pause is not None
    graceful = float(option(command, "--timeout-graceful-shutdown"))
    lifespan_shutdown = 5  # what the page sets aside for it
    assert yaml_number("terminationGracePeriodSeconds") >= (
        int(pause[1]) + graceful + lifespan_shutdown
    )


def test_the_probe_asks_what_the_container_serves() -> None:
    manifest = block("yaml")
    port = int(option(instruction("CMD"), "--port"))
    assert yaml_number("containerPort") == port
    probe = manifest.partition("readinessProbe:")[2].partition("lifecycle:")[0]
    assert re.search(rf"^\s*port: {port}$", probe, re.MULTILINE)
    assert "path: /healthz" in probe
    assert '@app.get("/healthz")' in block("python")
    assert option(instruction("CMD"), "--host") == "0.0.0.0"  # reachable


#: The page's application gets a slow route, for a request in flight at
#: SIGTERM, and reports its process ids.
EXTRA_ROUTES = textwrap.dedent(
    f"""

    import os
    import sys
    import trio


    @app.get("/slow")
    async def slow() -> str:
        print("slow request started", file=sys.stderr, flush=True)
        await trio.sleep({SLOW_SECONDS})
        return "finished"


    @app.get("/pids")
    async def pids() -> dict[str, int]:
        return {{"pid": os.getpid(), "parent": os.getppid()}}
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def container_command(with_init: bool, port: int) -> list[str]:
    """The image's ENTRYPOINT and CMD, with this interpreter and a free port."""
    command = instruction("CMD")
    command[0] = sys.executable if command[0] == "python" else command[0]
    command[command.index("--port") + 1] = str(port)
    entrypoint = instruction("ENTRYPOINT")
    if not with_init:
        return command
    assert entrypoint == ["tini", "--"]
    tini = require_tool("tini", "tini")
    return [tini, "--", *command]


async def refused(port: int) -> bool:
    try:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        return True
    await stream.aclose()
    return False


def namespace_init(unshare_pid: int) -> int:
    """The host's id of the process ``unshare --fork`` started: its PID 1."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
    (child,) = children.read_text().split()
    return int(child)


@pytest.mark.process
@pytest.mark.parametrize("with_init", [True, False], ids=["tini", "trasgi-alone"])
async def test_the_image_command_as_pid_1_stops_gracefully_on_sigterm(
    tmp_path: Path, with_init: bool
) -> None:
    (tmp_path / "myapp.py").write_text(block("python") + EXTRA_ROUTES)
    port = free_port()
    unshare = require_tool("unshare", "util-linux")
    process = await trio.lowlevel.open_process(
        [
            unshare,
            "--pid",
            "--fork",
            "--kill-child",
            *container_command(with_init, port),
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    log = bytearray()
    try:
        await read_until(process, rb"listening on http://0\.0\.0\.0:\d+", log)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=DEADLINE) as client:
            assert (await client.get(f"{base}/healthz")).text == "ok"
            pids = (await client.get(f"{base}/pids")).json()
            # Under tini trasgi is its child; alone, trasgi is PID 1 itself.
            assert (pids["parent"] if with_init else pids["pid"]) == 1
            async with trio.open_nursery() as nursery:
                slow: list[httpx.Response] = []

                async def in_flight() -> None:
                    slow.append(await client.get(f"{base}/slow"))

                nursery.start_soon(in_flight)
                await read_until(process, rb"slow request started", log)
                # From outside the namespace, as the container runtime does.
                os.kill(namespace_init(process.pid), signal.SIGTERM)
                with trio.fail_after(SLOW_SECONDS / 2):
                    while True:  # until the probe's connection is refused
                        if await refused(port):
                            break
                        await trio.sleep(0.01)
                assert not slow  # while the request in flight goes on
        assert slow[0].text == "finished"
        with trio.fail_after(DEADLINE):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def read_until(process: trio.Process, pattern: bytes, seen: bytearray) -> None:
    assert process.stderr is not None
    with trio.fail_after(DEADLINE):
        while not re.search(pattern, bytes(seen)):
            chunk = await process.stderr.receive_some()
            assert chunk, f"ended before {pattern!r}: {bytes(seen)!r}"
            seen += chunk
