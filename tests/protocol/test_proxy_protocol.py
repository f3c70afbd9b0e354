"""The PROXY protocol parser (``trasgi/_proxy_protocol.py``), as tables of bytes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trasgi import ConnectionInfo
from trasgi._protocol.proxy_header import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
    proxied_info,
)

V1 = frozenset({1})
V2 = frozenset({2})
ANY = frozenset({1, 2})

TCP4 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
TCP6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"
LONGHAND = b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 2001:DB8::0:2 0 65535\r\n"


def v2(
    command: int = 0x1,
    family: int = 0x11,
    addresses: bytes = b"",
    tlvs: bytes = b"",
    *,
    version: int = 2,
    length: int | None = None,
) -> bytes:
    """A version 2 header (HAProxy's spec, section 2.2)."""
    body = addresses + tlvs
    size = len(body) if length is None else length
    return (
        V2_SIGNATURE
        + bytes([version << 4 | command, family])
        + struct.pack("!H", size)
        + body
    )


def inet(source: str, destination: str, sport: int, dport: int) -> bytes:
    return (
        ipaddress.ip_address(source).packed
        + ipaddress.ip_address(destination).packed
        + struct.pack("!HH", sport, dport)
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


INET4 = inet("192.0.2.1", "198.51.100.2", 56324, 443)
INET6 = inet("2001:db8::1", "2001:db8::2", 56324, 443)
#: PP2_TYPE_SSL: client flags (PP2_CLIENT_SSL), verify result, sub-records.
SSL_TLV = tlv(0x20, b"\x01" + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3"))


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (
            TCP4,
            ProxyHeader(
                1, len(TCP4), True, ("192.0.2.1", 56324), ("198.51.100.2", 443)
            ),
        ),
        (
            TCP6,
            ProxyHeader(
                1, len(TCP6), True, ("2001:db8::1", 56324), ("2001:db8::2", 443)
            ),
        ),
        # Addresses come out in canonical form.
        (
            LONGHAND,
            ProxyHeader(
                1, len(LONGHAND), True, ("2001:db8::1", 0), ("2001:db8::2", 65535)
            ),
        ),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(1, 15, proxied=False)),
        # Section 2.1: whatever follows UNKNOWN is ignored.
        (
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
            ProxyHeader(1, 35, proxied=False),
        ),
    ],
)
def test_v1_headers(data: bytes, header: ProxyHeader) -> None:
    assert parse_proxy_header(data + b"GET / HTTP/1.1\r\n", ANY) == header
    assert parse_proxy_header(data, V1) == header


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "does not start with a v1 or v2 header"),
        (b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "does not start"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "CRLF"),  # bare LF, padded below
        (b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "4 fields"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n", "4 fields"),
        (b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "4 fields"),  # two spaces
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n", "4 fields"),
        (b"PROXY  TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "TCP4, TCP6 or UNKNOWN"),
        (b"PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n", "not IPv4Address"),
        (b"PROXY TCP6 1.2.3.4 2001:db8::1 1 2\r\n", "not IPv6Address"),
        (b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n", "not IPv4Address"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "not IPv6Address"),
        (b"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", "not IPv4Address"),
        (b"PROXY TCP4 host 1.2.3.4 1 2\r\n", "not IPv4Address"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "not 0-65535"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 080 2\r\n", "not 0-65535"),  # leading zero
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n", "not 0-65535"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 +2\r\n", "not 0-65535"),
        (b"PROXY TCP4 1.2.3.4 1.2.3.4 \xff 2\r\n", "not ASCII"),
        (b"PROXY " + b"A" * 101 + b"\r\n", "107 bytes"),  # 109 bytes
    ],
)
def test_malformed_v1_headers(data: bytes, reason: str) -> None:
    padded = data + b"x" * 120  # enough that "need more" is not an answer
    with pytest.raises(ProxyProtocolError, match=reason):
        parse_proxy_header(padded, ANY)


def test_the_longest_v1_line_is_107_bytes() -> None:
    longest = (
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
    )
    assert len(longest) == 104
    header = parse_proxy_header(longest, V1)
    assert header is not None
    assert header.length == 104
    unknown = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(unknown) == 107
    assert parse_proxy_header(unknown, V1) == ProxyHeader(1, 107, proxied=False)


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (
            v2(addresses=INET4),
            ProxyHeader(2, 28, True, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
        ),
        (
            v2(family=0x21, addresses=INET6),
            ProxyHeader(2, 52, True, ("2001:db8::1", 56324), ("2001:db8::2", 443)),
        ),
        # TLVs are walked; PP2_CLIENT_SSL makes the client's scheme https.
        (
            v2(addresses=INET4, tlvs=SSL_TLV),
            ProxyHeader(
                2,
                28 + len(SSL_TLV),
                True,
                ("192.0.2.1", 56324),
                ("198.51.100.2", 443),
                tls=True,
            ),
        ),
        (
            v2(
                addresses=INET4,
                tlvs=tlv(0x20, b"\x00\x00\x00\x00\x00") + tlv(0x04, b""),
            ),
            ProxyHeader(2, 39, True, ("192.0.2.1", 56324), ("198.51.100.2", 443)),
        ),
        # A Unix socket client has no address the scope can carry.
        (v2(family=0x31, addresses=b"\x00" * 216), ProxyHeader(2, 232, True)),
        # LOCAL: the proxy's own connection (a health check); any block is skipped.
        (v2(command=0x0, family=0x00), ProxyHeader(2, 16, proxied=False)),
        (
            v2(command=0x0, family=0x11, addresses=INET4),
            ProxyHeader(2, 28, proxied=False),
        ),
        (
            v2(command=0x0, family=0x77, addresses=b"junk"),
            ProxyHeader(2, 20, proxied=False),
        ),
        # PROXY with AF_UNSPEC: the real endpoints stand.
        (v2(family=0x00, addresses=b"whatever"), ProxyHeader(2, 24, proxied=False)),
    ],
)
def test_v2_headers(data: bytes, header: ProxyHeader) -> None:
    assert parse_proxy_header(data + b"GET / HTTP/1.1\r\n", ANY) == header
    assert parse_proxy_header(data, V2) == header


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (v2(version=1, addresses=INET4), "version 1"),
        (v2(version=3, addresses=INET4), "version 3"),
        (v2(command=0x2, addresses=INET4), "unknown command 0x2"),
        (v2(command=0xF, addresses=INET4), "unknown command 0xf"),
        (v2(family=0x12, addresses=INET4), "not a stream"),  # UDP over IPv4
        (v2(family=0x10, addresses=INET4), "not a stream"),
        (v2(family=0x41, addresses=INET4), "unknown address family 0x4"),
        (v2(addresses=INET4[:11]), "too short for its addresses"),
        (v2(family=0x21, addresses=INET4), "too short for its addresses"),
        (v2(addresses=INET4, tlvs=b"\x20\x00"), "truncated TLV"),
        (v2(addresses=INET4, tlvs=b"\x20\x00\x05abc"), "truncated TLV"),
        (v2(addresses=INET4, tlvs=tlv(0x04, b"") + b"\x01"), "truncated TLV"),
    ],
)
def test_malformed_v2_headers(data: bytes, reason: str) -> None:
    with pytest.raises(ProxyProtocolError, match=reason):
        parse_proxy_header(data, ANY)


def test_a_bad_v2_family_is_refused_before_its_block_arrives() -> None:
    # The length promises 65535 bytes; no need to wait for them to say no.
    with pytest.raises(ProxyProtocolError, match="not a stream"):
        parse_proxy_header(v2(family=0x12, length=0xFFFF), ANY)


@pytest.mark.parametrize(
    "data",
    [
        TCP4,
        TCP6,
        b"PROXY UNKNOWN\r\n",
        v2(addresses=INET4, tlvs=SSL_TLV),
        v2(command=0x0, family=0x00),
    ],
)
def test_every_prefix_asks_for_more(data: bytes) -> None:
    for end in range(len(data)):
        assert parse_proxy_header(data[:end], ANY) is None, data[:end]
    header = parse_proxy_header(bytearray(data), ANY)
    assert header is not None
    assert header.length == len(data)


@pytest.mark.parametrize(
    ("data", "versions", "reason"),
    [
        (TCP4, V2, "does not start with a v2 header"),
        (v2(addresses=INET4), V1, "does not start with a v1 header"),
        (b"GET / HTTP/1.1\r\n", V1, "does not start with a v1 header"),
        (b"\r\n\r\n\x00\r\nQUIX", V2, "does not start with a v2 header"),
    ],
)
def test_only_the_configured_versions_are_accepted(
    data: bytes, versions: frozenset[int], reason: str
) -> None:
    with pytest.raises(ProxyProtocolError, match=reason):
        parse_proxy_header(data, versions)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        header = parse_proxy_header(data, ANY)
    except ProxyProtocolError:
        return
    if header is not None:
        assert 0 < header.length <= len(data)


@given(st.binary(max_size=200))
def test_arbitrary_v2_blocks_parse_or_fail_cleanly(block: bytes) -> None:
    data = V2_SIGNATURE + block
    try:
        header = parse_proxy_header(data, ANY)
    except ProxyProtocolError:
        return
    if header is not None:
        assert header.length <= len(data)


def test_the_header_replaces_the_connections_addresses() -> None:
    info = ConnectionInfo(client=("127.0.0.1", 40000), server=("127.0.0.1", 8000))
    proxied = ProxyHeader(1, 10, True, ("192.0.2.1", 5), ("198.51.100.2", 443))
    assert proxied_info(info, proxied) == ConnectionInfo(
        client=("192.0.2.1", 5), server=("198.51.100.2", 443), scheme="http"
    )
    tls = ProxyHeader(2, 10, True, ("192.0.2.1", 5), ("198.51.100.2", 443), tls=True)
    assert proxied_info(info, tls).scheme == "https"
    unix_client = ProxyHeader(2, 10, True)
    assert proxied_info(info, unix_client) == ConnectionInfo(
        client=None, server=("127.0.0.1", 8000)
    )
    assert proxied_info(info, ProxyHeader(2, 16, proxied=False)) is info
