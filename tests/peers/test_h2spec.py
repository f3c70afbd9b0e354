"""HTTP/2 against real peers: h2spec's conformance cases, curl and h2load.

h2spec (summerwind/h2spec 2.0.0) is built at ``../shared/tools/h2spec``
beside the repository; ``.ci/run`` installs curl and h2load (Debian's
``nghttp2-client``). Each peer drives a server on a loopback port, over h2c
(prior knowledge) and over TLS (ALPN), and every case must pass.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from trasgi import Config
from trasgi._server.serve import serve

from ..helpers import Receive, Send, require_tool

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
H2SPEC = ROOT.parent / "shared" / "tools" / "h2spec"
#: h2spec's summary line: "146 tests, 146 passed, 0 skipped, 0 failed".
SUMMARY = re.compile(rb"(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed")
#: The whole run of one peer; h2spec takes about a second.
PEER_DEADLINE = 120.0


def h2spec() -> str:
    """The h2spec binary; a missing one fails under CI and skips elsewhere."""
    if H2SPEC.exists():
        return str(H2SPEC)
    installed = shutil.which("h2spec")
    if installed is not None:
        return installed
    message = (
        f"h2spec is missing at {H2SPEC}: build summerwind/h2spec 2.0.0 there "
        "(the shared tools folder beside the repository)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    directory = tmp_path_factory.mktemp("h2tls")
    server = trustme.CA().issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = directory / "server.pem", directory / "server.key"
    server.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    server.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


async def hello(scope: Any, receive: Receive, send: Send) -> None:
    """Read the body, answer with the protocol version: what h2spec needs."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = f"hello over HTTP/{scope['http_version']}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[int]:
    """Serve :func:`hello` on a free loopback port; yield the port."""
    config = Config(lifespan="off", host="127.0.0.1", port=0, **options)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve, hello, config, shutdown_trigger=stop.wait)
        )
        listener = listeners[0]
        if isinstance(listener, trio.SSLListener):
            listener = listener.transport_listener
        assert isinstance(listener, trio.SocketListener)
        yield listener.socket.getsockname()[1]
        stop.set()


async def run_peer(command: list[str]) -> bytes:
    with trio.fail_after(PEER_DEADLINE):
        result = await trio.run_process(command, capture_stdout=True, check=False)
    return bytes(result.stdout)


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
async def test_h2spec_passes_every_case(
    tls: bool, strict: bool, tls_files: tuple[str, str]
) -> None:
    binary = h2spec()
    options = {}
    if tls:
        options = {"ssl_certfile": tls_files[0], "ssl_keyfile": tls_files[1]}
    async with serving(**options) as port:
        command = [binary, "-h", "127.0.0.1", "-p", str(port)]
        command += ["-t", "-k"] if tls else []
        command += ["-S"] if strict else []
        output = await run_peer(command)
    summary = SUMMARY.search(output)
    assert summary is not None, output[-2000:]
    total, passed, _, failed = map(int, summary.groups())
    # 146 cases by default, 147 with the strict ones (RFC 9113 section 8.1.2.6).
    assert (total, passed, failed) == ((147, 147, 0) if strict else (146, 146, 0))


async def test_curl_with_prior_knowledge_and_http11_share_a_port() -> None:
    curl = require_tool("curl", "curl")
    async with serving() as port:
        url = f"http://127.0.0.1:{port}/"
        h2 = await run_peer([curl, "-s", "--http2-prior-knowledge", url])
        h1 = await run_peer([curl, "-s", "--http1.1", url])
        version = await run_peer(
            [
                curl,
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}",
                "--http2-prior-knowledge",
                url,
            ]
        )
    assert h2 == b"hello over HTTP/2"
    assert h1 == b"hello over HTTP/1.1"
    assert version == b"2"


async def test_curl_upgrades_to_h2c_with_and_without_a_body() -> None:
    curl = require_tool("curl", "curl")
    async with serving() as port:
        url = f"http://127.0.0.1:{port}/"
        get = await run_peer([curl, "-s", "--http2", url])
        post = await run_peer([curl, "-s", "--http2", "-d", "a body", url])
    assert get == b"hello over HTTP/2"
    # curl upgrades only body-less requests; one with a body stays HTTP/1.1,
    # which the server must serve as well.
    assert post in (b"hello over HTTP/2", b"hello over HTTP/1.1")


async def test_curl_negotiates_h2_by_alpn_and_http11_still_works(
    tls_files: tuple[str, str],
) -> None:
    curl = require_tool("curl", "curl")
    certfile, keyfile = tls_files
    async with serving(ssl_certfile=certfile, ssl_keyfile=keyfile) as port:
        url = f"https://127.0.0.1:{port}/"
        h2 = await run_peer([curl, "-sk", "--http2", url])
        h1 = await run_peer([curl, "-sk", "--http1.1", url])
    assert h2 == b"hello over HTTP/2"
    assert h1 == b"hello over HTTP/1.1"


async def test_no_http2_offers_only_http11(tls_files: tuple[str, str]) -> None:
    certfile, keyfile = tls_files
    async with serving(ssl_certfile=certfile, ssl_keyfile=keyfile, http2=False) as port:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2", "http/1.1"])
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", port, ssl_context=context
        )
        async with stream:
            await stream.do_handshake()
            assert stream.selected_alpn_protocol() == "http/1.1"


async def test_h2load_gets_every_request_answered() -> None:
    h2load = require_tool("h2load", "nghttp2-client")
    async with serving() as port:
        output = await run_peer(
            [h2load, "-n", "400", "-c", "4", "-m", "10", f"http://127.0.0.1:{port}/"]
        )
    assert b"400 succeeded, 0 failed, 0 errored" in output, output[-1500:]
