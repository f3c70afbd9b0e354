"""Trusting reverse proxies: who may speak for a client, and what they say.

A proxy in front of the server turns every client into the proxy's own
address. It repeats what it knows in request headers: ``X-Forwarded-For``,
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` (de facto), or the standard
``Forwarded`` (RFC 7239). Anyone can write those headers, so they are believed
only from a peer in ``--forwarded-allow-ips``, and only as far as the chain of
trusted proxies goes: the list is read from the right (each proxy appends the
address it received the request from) and the first address that is not a
trusted proxy is the client. Entries further left were written by that
client, or by proxies it chose, and prove nothing.

What a trusted chain changes in the scope:

* ``client``: the chosen hop's address, with its port or 0 when the header
  has none (``X-Forwarded-For`` never has one). A hop the proxy could not or
  would not name (``unknown``, an obfuscated ``_identifier``, or a malformed
  entry) makes the client ``None``: unknown, rather than the proxy's address.
* ``scheme``: ``http`` or ``https`` as the proxy saw it (``ws``/``wss`` for a
  WebSocket). Other values are ignored.
* the ``host`` request header, from ``X-Forwarded-Host`` or ``host=``: it is
  RFC 7239's "Host request header field as received by the proxy", and the
  header is what applications build absolute URLs from. ``server`` stays the
  address of the socket the request arrived on, which is what the ASGI spec
  says it is.

Nothing here does I/O; ``tests/protocol/test_proxy.py`` holds the tables of cases.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

import attrs

from trasgi._protocol.scope import ConnectionInfo

if TYPE_CHECKING:
    from trasgi._asgi import HTTPScope, WebSocketScope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = tuple[str, int]

#: The ``--forwarded-allow-ips`` entry that trusts connections over Unix
#: domain sockets: only local processes the socket file's mode admits can
#: connect there, as only local processes reach the loopback addresses.
UNIX_PEERS = "unix"
#: The entry that trusts every peer: for a server only a proxy can reach.
EVERYONE = "*"

#: RFC 9110 section 5.6.2 token characters.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
#: RFC 9110 section 5.6.4 quoted-string, with its quoted-pairs.
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PAIR = re.compile(rf"({_TOKEN})=({_TOKEN}|{_QUOTED})")
_QUOTED_PAIR = re.compile(r"\\(.)")
#: RFC 7239 section 6.3: an obfuscated node name or port.
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
_PORT = re.compile(r"[0-9]{1,5}")
#: RFC 9110 section 7.2: Host = uri-host [ ":" port ], where uri-host is an
#: IP-literal or a reg-name (RFC 3986 unreserved, pct-encoded, sub-delims).
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+;=%-]+)(:[0-9]*)?")
#: Which forwarding headers to read (``--forwarded-header``).
ForwardedHeader = Literal["x-forwarded", "forwarded"]
FORWARDED_HEADERS: tuple[ForwardedHeader, ...] = ("x-forwarded", "forwarded")

#: How many addresses a :class:`TrustedProxies` remembers its answer for.
_REMEMBERED_ADDRESSES = 1024

#: The field names each ``--forwarded-header`` style reads.
_FAMILY_NAMES: dict[str, frozenset[bytes]] = {
    "x-forwarded": frozenset(
        {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
    ),
    "forwarded": frozenset({b"forwarded"}),
}

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


@attrs.frozen
class TrustedProxies:
    """The peers whose forwarding headers (or PROXY protocol header) are believed.

    Attributes:
        networks: Addresses and networks (a single address is a /32 or /128).
        everyone: ``*`` was given: every peer is trusted.
        unix: ``unix`` was given: peers over a Unix domain socket are trusted.
    """

    networks: tuple[Network, ...] = ()
    everyone: bool = False
    unix: bool = False
    # Every request through a proxy asks about the same few peer addresses,
    # and parsing the text into an address each time was ~5% of a keep-alive
    # request: answers are remembered, up to a bound, since hops in the
    # headers are the client's to choose.
    _answers: dict[str, bool] = attrs.field(
        init=False, factory=dict, eq=False, repr=False
    )

    def trusts_address(self, host: str) -> bool:
        """Whether ``host`` (an IP address as text) is a trusted proxy."""
        if self.everyone:
            return True
        answer = self._answers.get(host)
        if answer is None:
            if len(self._answers) >= _REMEMBERED_ADDRESSES:
                self._answers.clear()
            address = _ip(host)
            answer = address is not None and any(
                address in net for net in self.networks
            )
            self._answers[host] = answer
        return answer

    def trusts_peer(self, info: ConnectionInfo) -> bool:
        """Whether the peer of a connection is a trusted proxy."""
        if self.everyone:
            return True
        if info.client is not None:
            return self.trusts_address(info.client[0])
        return self.unix and is_unix_socket(info)


def is_unix_socket(info: ConnectionInfo) -> bool:
    """Whether a connection came over a Unix domain socket.

    ``_listeners.connection_info`` describes those as no client and a server
    ``(path, None)``; in-memory streams have no server at all.
    """
    return info.client is None and info.server is not None and info.server[1] is None


@functools.lru_cache(maxsize=16)
def trusted_proxies(text: str) -> TrustedProxies:
    """Parse ``--forwarded-allow-ips``: comma-separated IPs, CIDRs, ``unix``, ``*``.

    Parsed once per distinct value (cached), not once per request.

    Error handling:
        Raises :class:`ValueError` naming the entry that is none of those.
    """
    networks: list[Network] = []
    everyone = unix = False
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        if entry == EVERYONE:
            everyone = True
        elif entry == UNIX_PEERS:
            unix = True
        else:
            networks.append(_network(entry))
    return TrustedProxies(tuple(networks), everyone=everyone, unix=unix)


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(
            f"forwarded_allow_ips entry {entry!r} is not an IP address, a network "
            f"(10.0.0.0/8), {UNIX_PEERS!r} or {EVERYONE!r}"
        ) from None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; an allow-list
    # written with IPv4 addresses must still match them.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


# -- one hop of the chain ---------------------------------------------------


@attrs.frozen
class Hop:
    """What a proxy recorded about the node it received the request from.

    Attributes:
        client: That node's ``(address, port)``; ``None`` when the proxy
            could not or would not say (``unknown``, obfuscated, malformed).
        names_client: False when the proxy said nothing about the node at all
            (a ``Forwarded`` element without ``for=``): the client is then
            left as it is.
        proto: The scheme the node used, lower-cased, if stated.
        host: The ``Host`` header the node sent, if stated.
    """

    client: Address | None
    names_client: bool = True
    proto: str | None = None
    host: str | None = None

    @property
    def trustable_address(self) -> str | None:
        """The address to check against the allow-list, if there is one."""
        return self.client[0] if self.client is not None else None


#: A hop whose record could not be read.
UNREADABLE = Hop(client=None)


def parse_x_forwarded_for_entry(text: str) -> Address | None:
    """Parse one ``X-Forwarded-For`` entry; ``None`` when it is not an address.

    No standard defines the header; proxies write a bare IP address, and some
    add a port (``192.0.2.1:4711``, ``[2001:db8::1]:4711``), accepted too.
    """
    text = text.strip()
    if text.startswith("["):
        return _bracketed(text)
    if text.count(":") == 1:  # IPv4 with a port; bare IPv6 has several colons
        host, _, port = text.partition(":")
        number = _port(port)
        if number is None or _ip(host) is None or ":" in host:
            return None
        return (host, number)
    return (text, 0) if _ip(text) is not None else None


def parse_forwarded_node(text: str) -> Address | None:
    """Parse a ``for=`` value (RFC 7239 section 6); ``None`` when not an address.

    ``node = nodename [ ":" node-port ]``: an IPv4 address, a bracketed IPv6
    address, ``unknown`` or an obfuscated ``_name``; the port may be
    obfuscated too (then 0).
    """
    if text.startswith("["):
        return _bracketed(text)
    host, colon, port = text.partition(":")
    if not isinstance(_ip(host), ipaddress.IPv4Address) or ":" in host:
        return None  # unknown, _obfuscated, an unbracketed IPv6, or garbage
    if not colon:
        return (host, 0)
    if _OBFUSCATED.fullmatch(port):
        return (host, 0)
    number = _port(port)
    return (host, number) if number is not None else None


def _bracketed(text: str) -> Address | None:
    """``[IPv6]`` or ``[IPv6]:port`` (an obfuscated port counts as 0)."""
    close = text.find("]")
    if close == -1:
        return None
    host, rest = text[1:close], text[close + 1 :]
    if not isinstance(_ip(host), ipaddress.IPv6Address) or "%" in host:
        return None
    if not rest:
        return (host, 0)
    if not rest.startswith(":"):
        return None
    if _OBFUSCATED.fullmatch(rest[1:]):
        return (host, 0)
    number = _port(rest[1:])
    return (host, number) if number is not None else None


def _port(text: str) -> int | None:
    if not _PORT.fullmatch(text):
        return None
    number = int(text)
    return number if number <= 0xFFFF else None


# -- the headers ------------------------------------------------------------


def _field_values(
    headers: Iterable[tuple[bytes, bytes]], name: bytes, *, quoted: bool = False
) -> list[str]:
    """Every comma-separated element of a list header, over all its lines.

    RFC 9110 section 5.3: several field lines of one name are one list, in
    order. Empty elements are ignored (section 5.6.1). With ``quoted``, commas
    inside quoted strings do not split (``Forwarded`` values may be quoted).
    """
    values: list[str] = []
    for key, value in headers:
        if key == name:
            text = value.decode("latin-1")
            values.extend(_split(text, ",") if quoted else text.split(","))
    return [value.strip() for value in values if value.strip()]


def _split(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quoted strings (RFC 9110 section 5.6.4).

    A quote left open swallows the rest of the line, which would include what
    a trusted proxy appended after a client's ``for="`` and let that client go
    unnamed; so an unbalanced line is split at every separator instead, and
    only the client's own elements come out malformed.
    """
    parts: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append(text[start:index])
            start = index + 1
    if quoted:
        return text.split(separator)
    parts.append(text[start:])
    return parts


def parse_forwarded_element(text: str) -> Hop:
    """Read one ``Forwarded`` element (RFC 7239 section 4) into a :class:`Hop`.

    ``forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )``
    with ``forwarded-pair = token "=" value``. A pair that does not parse or
    a parameter given twice (section 4 forbids it) makes the whole element
    :data:`UNREADABLE`: a half-read record is not one to act on.
    """
    pairs: dict[str, str] = {}
    for part in _split(text, ";"):
        part = part.strip(" \t")
        if not part:
            continue
        match = _PAIR.fullmatch(part)
        name = match.group(1).lower() if match else ""
        if match is None or name in pairs:
            return UNREADABLE
        value = match.group(2)
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        pairs[name] = value
    return Hop(
        client=parse_forwarded_node(pairs["for"]) if "for" in pairs else None,
        names_client="for" in pairs,
        proto=pairs["proto"].lower() if "proto" in pairs else None,
        host=pairs.get("host"),
    )


def forwarded_hops(headers: Iterable[tuple[bytes, bytes]]) -> list[Hop]:
    """The hops of the ``Forwarded`` header, left (oldest) to right (newest)."""
    return [
        parse_forwarded_element(element)
        for element in _field_values(headers, b"forwarded", quoted=True)
    ]


def x_forwarded_hops(headers: Sequence[tuple[bytes, bytes]]) -> list[Hop]:
    """The hops of ``X-Forwarded-For``, with ``-Proto`` and ``-Host`` matched up.

    The three headers are separate lists. When a proto or host list is as long
    as the address list, each proxy appended to all three, and entry *i* of
    each describes the same hop. Otherwise (the usual case: the nearest proxy
    sets ``X-Forwarded-Proto`` to one value) the right-most value, written by
    the nearest proxy, applies to whichever hop is chosen.
    """
    addresses = _field_values(headers, b"x-forwarded-for")
    protos = [proto.lower() for proto in _field_values(headers, b"x-forwarded-proto")]
    hosts = _field_values(headers, b"x-forwarded-host")
    if not addresses:
        if not protos and not hosts:
            return []
        return [Hop(None, False, _last(protos), _last(hosts))]
    hops = []
    for index, entry in enumerate(addresses):
        hops.append(
            Hop(
                client=parse_x_forwarded_for_entry(entry),
                proto=_aligned(protos, index, len(addresses)),
                host=_aligned(hosts, index, len(addresses)),
            )
        )
    return hops


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None


def _aligned(values: list[str], index: int, length: int) -> str | None:
    if len(values) == length:
        return values[index]
    return _last(values)


def choose_hop(hops: Sequence[Hop], trusted: TrustedProxies) -> Hop | None:
    """The right-most hop that is not a trusted proxy; ``None`` for no hops.

    Walking from the right, each trusted proxy's own record of where the
    request came from is believed, up to the first node that is not one.
    When every hop is a trusted proxy, the left-most is the client.
    """
    for hop in reversed(hops):
        address = hop.trustable_address
        if address is None or not trusted.trusts_address(address):
            return hop
    return hops[0] if hops else None


def forwarded_hop(
    headers: Sequence[tuple[bytes, bytes]],
    trusted: TrustedProxies,
    style: ForwardedHeader,
) -> Hop | None:
    """What the trusted chain says about the client; ``None`` for nothing.

    Only one header family is read, the one ``style`` names: a proxy that
    writes ``X-Forwarded-For`` passes a client's own ``Forwarded`` header
    through untouched (and the reverse), so reading both would let a client
    speak for itself.
    """
    family = _FAMILY_NAMES[style]
    for name, _ in headers:
        if name in family:
            break
    else:
        return None  # most requests, even through a proxy: one pass says so
    if style == "forwarded":
        return choose_hop(forwarded_hops(headers), trusted)
    return choose_hop(x_forwarded_hops(headers), trusted)


def valid_host(text: str) -> bool:
    """Whether ``text`` is a valid ``Host`` value (RFC 9110 section 7.2)."""
    match = _HOST.fullmatch(text)
    if match is None:
        return False
    literal = match.group(1)
    if literal.startswith("["):
        return isinstance(_ip(literal[1:-1]), ipaddress.IPv6Address)
    return True


# -- applying it ------------------------------------------------------------


class ProxySettings(Protocol):
    """The options that decide whether and how forwarding headers are read.

    :class:`trasgi.Config` has them; naming only these keeps this pure module
    free of the configuration layer above it.
    """

    @property
    def proxy_headers(self) -> bool: ...
    @property
    def forwarded_allow_ips(self) -> str: ...
    @property
    def forwarded_header(self) -> ForwardedHeader: ...


def apply_proxy_headers(
    scope: HTTPScope | WebSocketScope, info: ConnectionInfo, config: ProxySettings
) -> None:
    """Rewrite a request's scope from its forwarding headers, if they are trusted.

    Does nothing unless ``--proxy-headers`` is on and the connection's peer
    is in ``--forwarded-allow-ips``. Then ``client``, ``scheme`` and the
    ``host`` header follow the chosen hop (see the module's docstring); what
    the headers do not state, or state invalidly, is left as it was.

    Error handling:
        Never raises for any header content: a malformed header never turns
        a request away, it only fails to change the scope.
    """
    if not config.proxy_headers:
        return
    trusted = trusted_proxies(config.forwarded_allow_ips)
    if not trusted.trusts_peer(info):
        return
    hop = forwarded_hop(scope["headers"], trusted, config.forwarded_header)
    if hop is None:
        return
    if hop.names_client:
        scope["client"] = hop.client
    scheme = _SCHEMES.get(hop.proto or "")
    if scheme is not None:
        websocket = scope["type"] == "websocket"
        scope["scheme"] = (
            {"http": "ws", "https": "wss"}[scheme] if websocket else scheme
        )
    if hop.host is not None and valid_host(hop.host):
        scope["headers"] = _with_host(scope["headers"], hop.host.encode("ascii"))


def _with_host(
    headers: list[tuple[bytes, bytes]], host: bytes
) -> list[tuple[bytes, bytes]]:
    """The headers with ``host`` in place of the first Host field (or first)."""
    rewritten: list[tuple[bytes, bytes]] = []
    placed = False
    for name, value in headers:
        if name != b"host":
            rewritten.append((name, value))
        elif not placed:
            rewritten.append((b"host", host))
            placed = True
    return rewritten if placed else [(b"host", host), *rewritten]
