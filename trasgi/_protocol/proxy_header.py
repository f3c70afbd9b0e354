r"""The PROXY protocol: the real client's address, sent ahead of the HTTP bytes.

A proxy that forwards TCP without reading HTTP (HAProxy in TCP mode, nginx's
``stream`` module, cloud load balancers) cannot add headers, so it opens each
connection with one header of its own, defined by HAProxy's "The PROXY
protocol" (versions 1 and 2, ``doc/proxy-protocol.txt`` in HAProxy's
sources):

* version 1 is one line of text, at most 107 bytes with its CRLF
  (section 2.1): ``PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n``,
  ``TCP6`` likewise, or ``PROXY UNKNOWN ...\r\n``;
* version 2 is binary (section 2.2): a 12-byte signature, a version and
  command byte, an address family and transport byte, a 16-bit length, the
  addresses, then optional type-length-value records.

:func:`parse_proxy_header` is pure: it takes the bytes received so far and
returns the header with its length, or ``None`` while more bytes are needed.
``_io/proxy_protocol.py`` runs it at the start of a connection, reading
through the connection's inbox.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from trasgi._protocol.forwarded import Address
from trasgi._protocol.scope import ConnectionInfo

#: The header versions each ``--proxy-protocol`` mode accepts.
VERSIONS: dict[str, frozenset[int]] = {
    "v1": frozenset({1}),
    "v2": frozenset({2}),
    "any": frozenset({1, 2}),
}

V1_PREFIX = b"PROXY "
#: Section 2.1: "a 108-byte buffer is always enough to store all the line and
#: a trailing zero", so the line with its CRLF is at most 107 bytes.
V1_MAX_LENGTH = 107
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Signature, version and command, family and transport, length.
V2_FIXED_LENGTH = 16
_V2_LOCAL, _V2_PROXY = 0x0, 0x1
_V2_STREAM = 0x1
#: Section 2.2: address block sizes of AF_INET, AF_INET6 and AF_UNIX.
_V2_ADDRESS_LENGTHS = {0x1: 12, 0x2: 36, 0x3: 216}
#: Section 2.2.5: PP2_TYPE_SSL, and its PP2_CLIENT_SSL flag ("the client
#: connected over SSL/TLS").
_PP2_TYPE_SSL = 0x20
_PP2_CLIENT_SSL = 0x01
#: Section 2.1: decimal ports without leading zeroes.
_V1_PORT = re.compile(r"0|[1-9][0-9]{0,4}")


class ProxyProtocolError(ValueError):
    """The bytes are not a valid PROXY protocol header (of an accepted version)."""


@attrs.frozen
class ProxyHeader:
    """One parsed PROXY protocol header.

    Attributes:
        version: 1 or 2.
        length: How many bytes the header took; what follows is the payload.
        proxied: False for a v2 ``LOCAL`` command (the proxy's own health
            check), ``UNKNOWN`` (v1) or an unspecified family (v2): the
            connection's own endpoints stand (sections 2.1 and 2.2).
        client: The source ``(address, port)``; ``None`` for a client on a
            Unix socket (v2 ``AF_UNIX``), which has no IP address.
        server: The destination ``(address, port)``, when an IP one.
        tls: A v2 ``PP2_TYPE_SSL`` record says the client used TLS.
    """

    version: int
    length: int
    proxied: bool = True
    client: Address | None = None
    server: Address | None = None
    tls: bool = False


def parse_proxy_header(
    data: bytes | bytearray, versions: frozenset[int] = frozenset({1, 2})
) -> ProxyHeader | None:
    """Parse a PROXY protocol header at the start of ``data``.

    Returns ``None`` while ``data`` is a valid beginning that needs more
    bytes; the caller bounds the wait. Nothing is guessed: data that starts
    any other way is an error (the spec forbids receivers from guessing
    whether a header is present).

    Error handling:
        Raises :class:`ProxyProtocolError` with a short reason.
    """
    if not data:
        return None
    if 2 in versions and _starts_like(data, V2_SIGNATURE):
        return _parse_v2(data) if len(data) >= len(V2_SIGNATURE) else None
    if 1 in versions and _starts_like(data, V1_PREFIX):
        return _parse_v1(data) if len(data) >= len(V1_PREFIX) else None
    names = " or ".join(f"v{version}" for version in sorted(versions))
    raise ProxyProtocolError(f"the connection does not start with a {names} header")


def _starts_like(data: bytes | bytearray, prefix: bytes) -> bool:
    length = min(len(data), len(prefix))
    return data[:length] == prefix[:length]


def _parse_v1(data: bytes | bytearray) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX_LENGTH)
    if end == -1:
        if len(data) >= V1_MAX_LENGTH:
            raise ProxyProtocolError("v1 header without CRLF in its first 107 bytes")
        return None
    try:
        fields = data[len(V1_PREFIX) : end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyProtocolError("v1 header is not ASCII") from None
    if fields[0] == "UNKNOWN":
        # Section 2.1: the receiver must ignore what follows UNKNOWN.
        return ProxyHeader(version=1, length=end + 2, proxied=False)
    if fields[0] not in ("TCP4", "TCP6") or len(fields) != 5:
        raise ProxyProtocolError("v1 header is not TCP4, TCP6 or UNKNOWN with 4 fields")
    family = ipaddress.IPv4Address if fields[0] == "TCP4" else ipaddress.IPv6Address
    source, destination, source_port, destination_port = fields[1:]
    return ProxyHeader(
        version=1,
        length=end + 2,
        client=(_v1_address(source, family), _v1_port(source_port)),
        server=(_v1_address(destination, family), _v1_port(destination_port)),
    )


def _v1_address(
    text: str, family: type[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    # Leading zeroes in IPv4 (octal ambiguity) and IPv6 zone ids are refused.
    if not isinstance(address, family) or "%" in text:
        raise ProxyProtocolError(f"v1 header address {text!r} is not {family.__name__}")
    return str(address)


def _v1_port(text: str) -> int:
    if not _V1_PORT.fullmatch(text) or int(text) > 0xFFFF:
        raise ProxyProtocolError(f"v1 header port {text!r} is not 0-65535")
    return int(text)


def _parse_v2(data: bytes | bytearray) -> ProxyHeader | None:
    if len(data) < V2_FIXED_LENGTH:
        return None
    version, command = data[12] >> 4, data[12] & 0xF
    if version != 2:
        raise ProxyProtocolError(f"v2 signature with version {version}")
    if command not in (_V2_LOCAL, _V2_PROXY):
        raise ProxyProtocolError(f"v2 header with unknown command {command:#x}")
    family, transport = data[13] >> 4, data[13] & 0xF
    total = V2_FIXED_LENGTH + int.from_bytes(data[14:16], "big")
    if command == _V2_PROXY and family:
        _check_v2_family(family, transport, total - V2_FIXED_LENGTH)
    if len(data) < total:
        return None
    if command == _V2_LOCAL or not family:
        # Section 2.2: LOCAL, or PROXY with AF_UNSPEC: use the real
        # endpoints and skip the block, whatever it holds.
        return ProxyHeader(version=2, length=total, proxied=False)
    body = bytes(data[V2_FIXED_LENGTH:total])
    split = _V2_ADDRESS_LENGTHS[family]
    client, server = _v2_addresses(family, body[:split])
    return ProxyHeader(
        version=2,
        length=total,
        client=client,
        server=server,
        tls=_client_used_tls(body[split:]),
    )


def _check_v2_family(family: int, transport: int, length: int) -> None:
    needed = _V2_ADDRESS_LENGTHS.get(family)
    if needed is None:
        raise ProxyProtocolError(f"v2 header with unknown address family {family:#x}")
    if transport != _V2_STREAM:
        raise ProxyProtocolError("v2 header for a connection that is not a stream")
    if length < needed:
        raise ProxyProtocolError("v2 header too short for its addresses")


def _v2_addresses(family: int, block: bytes) -> tuple[Address | None, Address | None]:
    if family == 0x3:
        return None, None  # AF_UNIX: paths, not addresses a scope can carry
    size = 4 if family == 0x1 else 16
    source = ipaddress.ip_address(block[:size])
    destination = ipaddress.ip_address(block[size : 2 * size])
    ports = block[2 * size :]
    return (
        (str(source), int.from_bytes(ports[:2], "big")),
        (str(destination), int.from_bytes(ports[2:4], "big")),
    )


def _client_used_tls(records: bytes) -> bool:
    """Walk the TLV records (section 2.2.1); whether PP2_CLIENT_SSL is set."""
    tls = False
    offset = 0
    while offset < len(records):
        if len(records) - offset < 3:
            raise ProxyProtocolError("v2 header with a truncated TLV record")
        kind = records[offset]
        size = int.from_bytes(records[offset + 1 : offset + 3], "big")
        value = records[offset + 3 : offset + 3 + size]
        if len(value) != size:
            raise ProxyProtocolError("v2 header with a truncated TLV record")
        if kind == _PP2_TYPE_SSL and value:
            tls = bool(value[0] & _PP2_CLIENT_SSL)
        offset += 3 + size
    return tls


def proxied_info(info: ConnectionInfo, header: ProxyHeader) -> ConnectionInfo:
    """The connection's info as the header tells it (unchanged if not proxied)."""
    if not header.proxied:
        return info
    return attrs.evolve(
        info,
        client=header.client,
        server=header.server if header.server is not None else info.server,
        scheme="https" if header.tls else info.scheme,
    )
