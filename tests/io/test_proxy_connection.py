"""Proxy headers and the PROXY protocol through the real connection handler.

In-memory streams stand in for sockets; the connection info says which peer
the server believes it is talking to.
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trasgi import Config, ConnectionInfo
from trasgi._io.connection import handle_connection
from trasgi._io.shared import ServerShared
from trasgi._protocol.proxy_header import V2_SIGNATURE
from trasgi.testing import open_connection, open_websocket

from ..helpers import HANG, RawClient, Receive, Send, read_until_closed, status_of
from ..ops.test_cli import assert_one_line_error, run_cli

PROXY = ConnectionInfo(client=("127.0.0.1", 40000), server=("127.0.0.1", 8000))
STRANGER = ConnectionInfo(client=("203.0.113.9", 40000), server=("127.0.0.1", 8000))
HEADERS_ON = Config(proxy_headers=True)
V1_ON = Config(proxy_protocol="v1")
GET = b"GET /where HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
GET_AND_CLOSE = GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")


def seen(scope: Any) -> dict[str, Any]:
    host = dict(scope["headers"]).get(b"host", b"").decode()
    client = scope["client"]
    server = scope["server"]
    return {
        "client": list(client) if client else None,
        "server": list(server) if server else None,
        "scheme": scope["scheme"],
        "host": host,
    }


async def report(scope: Any, receive: Receive, send: Send) -> None:
    """Answer with what the scope says about the client, as JSON."""
    body = json.dumps(seen(scope)).encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def response_to_raw(client: RawClient) -> tuple[h11.Response, bytes]:
    """Read a response to a request that was sent as raw bytes."""
    # The client's h11 must believe it sent the request to read the answer.
    client.h11.send(h11.Request(method="GET", target="/", headers=[("host", "a")]))
    client.h11.send(h11.EndOfMessage())
    return await client.response()


async def ask(
    raw: bytes,
    *,
    config: Config,
    info: ConnectionInfo = PROXY,
    requests: int = 1,
) -> list[dict[str, Any]]:
    """Send raw bytes; read ``requests`` responses, each a JSON report."""
    async with open_connection(report, config=config, info=info) as stream:
        await stream.send_all(raw)
        client = RawClient(stream)
        answers = []
        for _ in range(requests):
            head, body = await response_to_raw(client)
            assert head.status_code == 200
            answers.append(json.loads(body))
            client.next_cycle()
        return answers


# -- proxy headers -------------------------------------------------------------


async def test_a_trusted_proxys_headers_set_client_scheme_and_host() -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n"
        b"X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\r\n"
    )
    [answer] = await ask(request, config=HEADERS_ON)
    assert answer == {
        "client": ["203.0.113.7", 0],
        "server": ["127.0.0.1", 8000],
        "scheme": "https",
        "host": "example.com",
    }


async def test_an_untrusted_peer_cannot_spoof() -> None:
    request = (
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
        b"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        b"Forwarded: for=10.0.0.1;proto=https\r\n\r\n"
    )
    [answer] = await ask(request, config=HEADERS_ON, info=STRANGER)
    assert answer["client"] == ["203.0.113.9", 40000]
    assert answer["scheme"] == "http"


async def test_each_request_on_a_kept_alive_connection_is_read_afresh() -> None:
    # A proxy reuses its upstream connections for requests of different clients.
    first = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.1\r\n\r\n"
    second = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    third = b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 203.0.113.3\r\n\r\n"
    answers = await ask(first + second + third, config=HEADERS_ON, requests=3)
    assert [answer["client"] for answer in answers] == [
        ["203.0.113.1", 0],
        ["127.0.0.1", 40000],
        ["203.0.113.3", 0],
    ]


async def test_a_websocket_scope_is_rewritten_too() -> None:
    async def app(scope: Any, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(seen(scope))})
        await send({"type": "websocket.close"})

    forwarded = [
        (b"forwarded", b'for="[2001:db8::7]:4711";proto=https;host=chat.example'),
    ]
    config = Config(proxy_headers=True, forwarded_header="forwarded")
    async with open_websocket(
        app, headers=forwarded, config=config, client=("127.0.0.1", 40000)
    ) as ws:
        answer = json.loads(await ws.receive_text())
    assert answer["client"] == ["2001:db8::7", 4711]
    assert answer["scheme"] == "wss"
    assert answer["host"] == "chat.example"


# -- the PROXY protocol --------------------------------------------------------

V1_HEADER = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"


def v2_header(tls: bool) -> bytes:
    addresses = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack("!HH", 56324, 443)
    records = b""
    if tls:
        ssl = b"\x01" + b"\x00" * 4  # PP2_CLIENT_SSL, verified
        records = b"\x20" + struct.pack("!H", len(ssl)) + ssl
    block = addresses + records
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(block)) + block


async def test_a_v1_header_names_the_client_and_server() -> None:
    [answer] = await ask(V1_HEADER + GET, config=V1_ON)
    assert answer["client"] == ["192.0.2.1", 56324]
    assert answer["server"] == ["198.51.100.2", 443]
    assert answer["scheme"] == "http"


@pytest.mark.parametrize(("tls", "scheme"), [(False, "http"), (True, "https")])
async def test_a_v2_header_names_the_client_and_its_tls(tls: bool, scheme: str) -> None:
    config = Config(proxy_protocol="v2")
    [answer] = await ask(v2_header(tls) + GET, config=config)
    assert answer["client"] == ["192.0.2.1", 56324]
    assert answer["scheme"] == scheme


async def test_the_header_holds_for_every_request_of_the_connection() -> None:
    config = Config(proxy_protocol="any")
    answers = await ask(V1_HEADER + GET + GET, config=config, requests=2)
    assert [answer["client"] for answer in answers] == [["192.0.2.1", 56324]] * 2


async def test_a_header_arriving_byte_by_byte_is_assembled() -> None:
    async with open_connection(report, config=V1_ON, info=PROXY) as stream:
        for byte in V1_HEADER + GET:
            await stream.send_all(bytes([byte]))
            await trio.testing.wait_all_tasks_blocked()
        _, body = await response_to_raw(RawClient(stream))
    assert json.loads(body)["client"] == ["192.0.2.1", 56324]


async def test_local_and_unknown_keep_the_connections_addresses() -> None:
    local = V2_SIGNATURE + b"\x20\x00\x00\x00"
    [answer] = await ask(local + GET, config=Config(proxy_protocol="v2"))
    assert answer["client"] == ["127.0.0.1", 40000]
    [answer] = await ask(b"PROXY UNKNOWN\r\n" + GET, config=V1_ON)
    assert answer["client"] == ["127.0.0.1", 40000]


async def test_the_protocol_and_headers_chain() -> None:
    # The PROXY header's client is the next hop to judge: an outside address
    # cannot speak for anyone, a trusted one can.
    config = Config(proxy_protocol="v1", proxy_headers=True)
    spoof = GET.replace(b"\r\n\r\n", b"\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n")
    [answer] = await ask(V1_HEADER + spoof, config=config)
    assert answer["client"] == ["192.0.2.1", 56324]
    inner = b"PROXY TCP4 127.0.0.1 127.0.0.1 5000 8000\r\n"
    [answer] = await ask(inner + spoof, config=config)
    assert answer["client"] == ["10.9.9.9", 0]


async def refused(
    raw: bytes, config: Config = V1_ON, info: ConnectionInfo = PROXY
) -> bytes:
    """What the server writes back before closing (nothing, we expect)."""
    async with open_connection(report, config=config, info=info) as stream:
        await stream.send_all(raw)
        return await read_until_closed(stream)


@pytest.mark.parametrize(
    "raw",
    [
        GET,  # no header: the peer is not speaking the protocol
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 99999\r\n" + GET,
        b"PROXY TCP4 192.0.2.1\r\n" + GET,
        v2_header(tls=False) + GET,  # v2 when v1 is configured
    ],
)
async def test_a_missing_or_malformed_header_closes_without_a_word(
    raw: bytes, errors: pytest.LogCaptureFixture
) -> None:
    assert await refused(raw) == b""
    [record] = [r for r in errors.records if "PROXY protocol" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.getMessage().startswith(
        "closing connection from 127.0.0.1:40000: no valid PROXY protocol header: "
    )


async def test_an_untrusted_peer_is_closed_unread(
    errors: pytest.LogCaptureFixture,
) -> None:
    assert await refused(V1_HEADER + GET, info=STRANGER) == b""
    [record] = [r for r in errors.records if "PROXY protocol" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "203.0.113.9:40000" in record.getMessage()
    assert "--forwarded-allow-ips" in record.getMessage()


async def test_a_header_cut_short_by_the_close_is_refused(
    errors: pytest.LogCaptureFixture,
) -> None:
    async with open_connection(report, config=V1_ON, info=PROXY) as stream:
        await stream.send_all(V1_HEADER[:20])
        assert isinstance(stream, trio.abc.HalfCloseableStream)
        await stream.send_eof()
        assert await read_until_closed(stream) == b""
    assert "closed before the header" in errors.text


async def test_a_header_then_nothing_closes_quietly() -> None:
    async with open_connection(report, config=V1_ON, info=PROXY) as stream:
        await stream.send_all(V1_HEADER)
        assert isinstance(stream, trio.abc.HalfCloseableStream)
        await stream.send_eof()
        assert await read_until_closed(stream) == b""


async def test_the_header_is_bounded_by_the_header_read_deadline(
    autojump_clock: trio.testing.MockClock, errors: pytest.LogCaptureFixture
) -> None:
    config = Config(proxy_protocol="v1", timeout_header_read=3)
    async with open_connection(report, config=config, info=PROXY) as stream:
        start = trio.current_time()
        await stream.send_all(V1_HEADER[:10])
        assert await read_until_closed(stream) == b""
        assert 3 <= trio.current_time() - start < 4
    assert "no complete header within 3s" in errors.text


async def test_off_reads_a_proxy_line_as_a_bad_request() -> None:
    # HTTP/1.1 alone: with HTTP/2 on, a PROXY line is an invalid HTTP/2
    # preface and the connection closes unanswered (tests/hostile).
    config = Config(http2=False)
    async with open_connection(report, info=PROXY, config=config) as stream:
        await stream.send_all(V1_HEADER + GET)
        assert status_of(await read_until_closed(stream)) == 400


async def test_the_per_client_limit_counts_the_real_clients() -> None:
    release = trio.Event()

    async def slow(scope: Any, receive: Receive, send: Send) -> None:
        await release.wait()
        await report(scope, receive, send)

    shared = ServerShared()
    config = Config(proxy_protocol="v1", limit_per_client=1)
    clients = ["192.0.2.1", "192.0.2.2", "192.0.2.1"]
    pairs = [trio.testing.memory_stream_pair() for _ in clients]
    with trio.fail_after(HANG):
        async with trio.open_nursery() as nursery:
            for (client_end, server_end), address in zip(pairs, clients, strict=True):
                nursery.start_soon(
                    handle_connection, server_end, slow, config, PROXY, shared
                )
                header = f"PROXY TCP4 {address} 127.0.0.1 5000 8000\r\n".encode()
                await client_end.send_all(header + GET_AND_CLOSE)
                await trio.testing.wait_all_tasks_blocked()
            assert shared.per_client == {"192.0.2.1": 2, "192.0.2.2": 1}
            assert status_of(await read_until_closed(pairs[2][0])) == 503
            release.set()
            for client_end, _ in pairs[:2]:
                assert status_of(await read_until_closed(client_end)) == 200
                await client_end.aclose()
            nursery.cancel_scope.cancel()
    assert shared.per_client == {}


# -- configuration ---------------------------------------------------------------


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--forwarded-allow-ips", "127.0.0.1,localhost"],
            "--forwarded-allow-ips entry 'localhost' is not an IP address",
        ),
        (["--proxy-protocol", "v3"], "invalid choice: 'v3'"),
        (["--forwarded-header", "x-real-ip"], "invalid choice: 'x-real-ip'"),
    ],
)
def test_bad_proxy_options_get_one_line(args: list[str], words: str) -> None:
    result = run_cli("examples.hello:app", *args)
    assert_one_line_error(result, 2, words)


def test_the_options_come_from_every_source() -> None:
    from trasgi._config.sources import from_environ

    values, _ = from_environ(
        {
            "TRASGI_PROXY_HEADERS": "on",
            "TRASGI_FORWARDED_ALLOW_IPS": "10.0.0.0/8,unix",
            "TRASGI_PROXY_PROTOCOL": "any",
        }
    )
    config = Config(**values)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == "10.0.0.0/8,unix"
    assert config.proxy_protocol == "any"
