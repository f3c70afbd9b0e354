"""Trusting proxies: the pure parsing and trust rules of ``trasgi/_proxy.py``."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trasgi import Config, ConnectionInfo
from trasgi._protocol.forwarded import (
    UNREADABLE,
    Hop,
    TrustedProxies,
    apply_proxy_headers,
    forwarded_hop,
    parse_forwarded_element,
    parse_forwarded_node,
    parse_x_forwarded_for_entry,
    trusted_proxies,
    valid_host,
)

LOOPBACK = trusted_proxies("127.0.0.1,::1,unix")
PROXY_PEER = ConnectionInfo(client=("127.0.0.1", 40000), server=("127.0.0.1", 8000))
UNIX_PEER = ConnectionInfo(client=None, server=("/run/trasgi.sock", None))
MEMORY_PEER = ConnectionInfo()
STRANGER = ConnectionInfo(client=("203.0.113.9", 40000), server=("127.0.0.1", 8000))


# -- the allow-list ----------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "address", "trusted"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("127.0.0.1", "127.0.0.2", False),
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("10.1.2.3/8", "10.9.9.9", True),  # host bits are forgiven
        ("::1", "::1", True),
        ("::1", "0:0:0:0:0:0:0:1", True),  # any spelling of the address
        ("fd00::/8", "fd12:3456::1", True),
        ("fd00::/8", "fe80::1", False),
        # A dual-stack listener reports IPv4 peers in mapped form.
        ("127.0.0.1", "::ffff:127.0.0.1", True),
        ("127.0.0.1", "localhost", False),  # names are never resolved
        ("127.0.0.1", "", False),
        ("127.0.0.1", "garbage", False),
        ("*", "203.0.113.9", True),
        ("*", "not even an address", True),
        (" 127.0.0.1 , 10.0.0.0/8 ,", "10.0.0.1", True),  # spaces, empty entries
        ("", "127.0.0.1", False),
    ],
)
def test_allow_list_matches_addresses(
    allowed: str, address: str, trusted: bool
) -> None:
    assert trusted_proxies(allowed).trusts_address(address) is trusted


@pytest.mark.parametrize(
    ("allowed", "peer", "trusted"),
    [
        ("127.0.0.1,::1,unix", PROXY_PEER, True),
        ("127.0.0.1,::1,unix", UNIX_PEER, True),
        ("127.0.0.1,::1,unix", STRANGER, False),
        ("127.0.0.1,::1", UNIX_PEER, False),  # unix must be named
        ("unix", PROXY_PEER, False),
        # An in-memory stream has no address at all: only * trusts it.
        ("127.0.0.1,::1,unix", MEMORY_PEER, False),
        ("*", MEMORY_PEER, True),
        ("*", STRANGER, True),
    ],
)
def test_allow_list_judges_peers(
    allowed: str, peer: ConnectionInfo, trusted: bool
) -> None:
    assert trusted_proxies(allowed).trusts_peer(peer) is trusted


def test_remembered_answers_stay_right_and_bounded() -> None:
    """Answers are remembered per address, and a flood of addresses is bounded."""
    proxies = TrustedProxies(networks=(ipaddress.ip_network("10.0.0.0/24"),))
    for _ in range(2):  # the second pass answers from memory
        assert proxies.trusts_address("10.0.0.7") is True
        assert proxies.trusts_address("10.0.1.7") is False
        assert proxies.trusts_address("not an address") is False
    for n in range(3000):  # client-chosen hops: each a new text
        assert proxies.trusts_address(f"10.0.{n // 256}.{n % 256}") is (n < 256)
    assert len(proxies._answers) <= 1024
    assert proxies == TrustedProxies(networks=proxies.networks)  # memory aside


@pytest.mark.parametrize(
    "bad", ["localhost", "10.0.0.0/33", "1.2.3.4.5", "::1/200", "unix:/x", "**"]
)
def test_a_bad_allow_list_entry_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match=r"^forwarded_allow_ips entry") as caught:
        Config(forwarded_allow_ips=f"127.0.0.1,{bad}")
    assert repr(bad) in str(caught.value)


def test_the_default_trusts_only_this_host() -> None:
    trusted = trusted_proxies(Config().forwarded_allow_ips)
    assert trusted.trusts_peer(PROXY_PEER)
    assert trusted.trusts_peer(UNIX_PEER)
    assert trusted.trusts_address("::1")
    assert not trusted.trusts_address("10.0.0.1")
    assert not trusted.everyone


# -- one hop ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "address"),
    [
        ("192.0.2.43", ("192.0.2.43", 0)),
        (" 192.0.2.43 ", ("192.0.2.43", 0)),
        ("192.0.2.43:4711", ("192.0.2.43", 4711)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("[2001:db8::1]:4711", ("2001:db8::1", 4711)),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("example.com", None),
        ("192.0.2.43:", None),
        ("192.0.2.43:99999", None),
        ("192.0.2.43:http", None),
        ("192.0.2.256", None),
        ("[192.0.2.43]", None),  # brackets are for IPv6
        ("[2001:db8::1", None),
        ("[2001:db8::1]4711", None),
        ("[fe80::1%eth0]", None),
        ("1.2.3.4 5.6.7.8", None),
    ],
)
def test_x_forwarded_for_entries(entry: str, address: tuple[str, int] | None) -> None:
    assert parse_x_forwarded_for_entry(entry) == address


@pytest.mark.parametrize(
    ("node", "address"),
    [
        # RFC 7239 section 6 and its examples.
        ("192.0.2.43", ("192.0.2.43", 0)),
        ("192.0.2.43:47011", ("192.0.2.43", 47011)),
        ("[2001:db8:cafe::17]", ("2001:db8:cafe::17", 0)),
        ("[2001:db8:cafe::17]:4711", ("2001:db8:cafe::17", 4711)),
        ("192.0.2.43:_port", ("192.0.2.43", 0)),  # obfuscated port
        ("[2001:db8::1]:_p-1.x", ("2001:db8::1", 0)),
        ("unknown", None),
        ("unknown:4711", None),
        ("_hidden", None),
        ("_SEVKISEK", None),
        ("_hidden:_port", None),
        # An IPv6 address must be bracketed (it would be ambiguous with a port).
        ("2001:db8::1", None),
        ("[2001:db8::1]:", None),
        ("[2001:db8::1]:65536", None),
        ("192.0.2.43:-1", None),
        ("example.com", None),
        ("", None),
    ],
)
def test_forwarded_nodes(node: str, address: tuple[str, int] | None) -> None:
    assert parse_forwarded_node(node) == address


@pytest.mark.parametrize(
    ("element", "hop"),
    [
        ("for=192.0.2.60", Hop(("192.0.2.60", 0))),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            Hop(("192.0.2.60", 0), proto="http"),
        ),
        (
            'For="[2001:db8:cafe::17]:4711";PROTO=HTTPS;Host=example.com',
            Hop(("2001:db8:cafe::17", 4711), proto="https", host="example.com"),
        ),
        ('for="192.0.2.60"', Hop(("192.0.2.60", 0))),
        ('for="\\1\\9\\2.0.2.60"', Hop(("192.0.2.60", 0))),  # quoted-pairs
        ("for=unknown;proto=https", Hop(None, proto="https")),
        ("for=_hidden", Hop(None)),
        (" for=192.0.2.60 ; proto=https ", Hop(("192.0.2.60", 0), proto="https")),
        (";;for=192.0.2.60;", Hop(("192.0.2.60", 0))),  # empty pairs are allowed
        ('host="example.com:8443"', Hop(None, False, host="example.com:8443")),
        ("proto=https", Hop(None, False, proto="https")),
        ("", Hop(None, False)),
        # Malformed: the element is not acted on at all.
        ("for=192.0.2.60;for=198.51.100.17", UNREADABLE),  # repeated parameter
        ("for = 192.0.2.60", UNREADABLE),
        ("for", UNREADABLE),
        ("=192.0.2.60", UNREADABLE),
        ("for=[2001:db8::1]", UNREADABLE),  # brackets need quotes
        ('for="192.0.2.60', UNREADABLE),
        ('for=192.0.2.60"', UNREADABLE),
        ("for=192.0.2.60;proto=https garbage", UNREADABLE),
    ],
)
def test_forwarded_elements(element: str, hop: Hop) -> None:
    assert parse_forwarded_element(element) == hop


@pytest.mark.parametrize(
    ("host", "valid"),
    [
        ("example.com", True),
        ("example.com:8443", True),
        ("192.0.2.1:80", True),
        ("[2001:db8::1]:443", True),
        ("xn--bcher-kva.example", True),
        ("", False),
        ("[not-ipv6]", False),
        ("exa mple.com", False),
        ("example.com/path", False),
        ("example.com:80:80", False),
        ("user@example.com", False),
        ("bücher.example", False),
    ],
)
def test_host_values(host: str, valid: bool) -> None:
    assert valid_host(host) is valid


# -- the chain -----------------------------------------------------------------


def headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode("latin-1")) for name, value in pairs]


@pytest.mark.parametrize(
    ("fields", "client"),
    [
        ([("x-forwarded-for", "203.0.113.7")], ("203.0.113.7", 0)),
        # The right-most untrusted entry wins: the left part is the client's.
        ([("x-forwarded-for", "1.1.1.1, 203.0.113.7")], ("203.0.113.7", 0)),
        # Trusted proxies on the right are skipped.
        ([("x-forwarded-for", "1.1.1.1, 203.0.113.7, 127.0.0.1")], ("203.0.113.7", 0)),
        ([("x-forwarded-for", "203.0.113.7, ::1, 127.0.0.1")], ("203.0.113.7", 0)),
        # Every entry trusted: the left-most is the client.
        ([("x-forwarded-for", "::1, 127.0.0.1")], ("::1", 0)),
        # Several field lines make one list, in order (RFC 9110 section 5.3).
        (
            [("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.7")],
            ("203.0.113.7", 0),
        ),
        # An entry that names nobody: the client is unknown, not the proxy.
        ([("x-forwarded-for", "203.0.113.7, unknown")], None),
        ([("x-forwarded-for", "203.0.113.7, garbage")], None),
        ([("x-forwarded-for", "203.0.113.7,,")], ("203.0.113.7", 0)),
        # A client's quote cannot swallow what the proxy appended.
        ([("x-forwarded-for", '"1.1.1.1, 203.0.113.7')], ("203.0.113.7", 0)),
    ],
)
def test_x_forwarded_for_chains(
    fields: list[tuple[str, str]], client: tuple[str, int] | None
) -> None:
    hop = forwarded_hop(headers(*fields), LOOPBACK, "x-forwarded")
    assert hop is not None
    assert hop.names_client
    assert hop.client == client


@pytest.mark.parametrize(
    ("fields", "proto", "host"),
    [
        ([("x-forwarded-proto", "https")], "https", None),
        ([("x-forwarded-proto", "HTTPS")], "https", None),  # schemes ignore case
        ([("x-forwarded-host", "example.com")], None, "example.com"),
        # One value set by the nearest proxy applies to the chosen hop.
        (
            [
                ("x-forwarded-for", "1.1.1.1, 203.0.113.7"),
                ("x-forwarded-proto", "https"),
            ],
            "https",
            None,
        ),
        # Lists as long as the address list are read hop by hop.
        (
            [
                ("x-forwarded-for", "203.0.113.7, 127.0.0.1"),
                ("x-forwarded-proto", "https, http"),
                ("x-forwarded-host", "example.com, internal:8000"),
            ],
            "https",
            "example.com",
        ),
        # Otherwise the right-most value.
        (
            [
                ("x-forwarded-for", "203.0.113.7, 127.0.0.1"),
                ("x-forwarded-proto", "http, https, http"),
            ],
            "http",
            None,
        ),
    ],
)
def test_x_forwarded_proto_and_host(
    fields: list[tuple[str, str]], proto: str | None, host: str | None
) -> None:
    hop = forwarded_hop(headers(*fields), LOOPBACK, "x-forwarded")
    assert hop is not None
    assert (hop.proto, hop.host) == (proto, host)


def test_x_forwarded_proto_without_for_keeps_the_client() -> None:
    hop = forwarded_hop(
        headers(("x-forwarded-proto", "https")), LOOPBACK, "x-forwarded"
    )
    assert hop == Hop(None, False, "https", None)


@pytest.mark.parametrize(
    ("value", "client", "proto"),
    [
        ("for=203.0.113.7;proto=https", ("203.0.113.7", 0), "https"),
        (
            "for=198.51.100.1;proto=http, for=203.0.113.7;proto=https",
            ("203.0.113.7", 0),
            "https",
        ),
        (
            'for=203.0.113.7;proto=https, for="[::1]:5000";proto=http',
            ("203.0.113.7", 0),
            "https",
        ),
        ('for="[2001:db8::7]:4711";proto=https', ("2001:db8::7", 4711), "https"),
        ("for=_hidden;proto=https, for=127.0.0.1", None, "https"),
        ("for=unknown", None, None),
        # Commas inside quotes do not split elements.
        ('for=203.0.113.7;host="a,b", for=127.0.0.1', ("203.0.113.7", 0), None),
        # An open quote is the client's: the proxy's element still counts.
        ('for="1.1.1.1, for=203.0.113.7;proto=https', ("203.0.113.7", 0), "https"),
        ('for="1.1.1.1\\, for=203.0.113.7', ("203.0.113.7", 0), None),
        # A malformed element on the right names nobody.
        ("for=203.0.113.7, for=203.0.113.8;for=1.1.1.1", None, None),
    ],
)
def test_forwarded_chains(
    value: str, client: tuple[str, int] | None, proto: str | None
) -> None:
    hop = forwarded_hop(headers(("forwarded", value)), LOOPBACK, "forwarded")
    assert hop is not None
    assert (hop.client, hop.proto) == (client, proto)


def test_only_the_chosen_header_family_is_read() -> None:
    both = headers(
        ("forwarded", "for=198.51.100.99;proto=https"),
        ("x-forwarded-for", "203.0.113.7"),
    )
    x_hop = forwarded_hop(both, LOOPBACK, "x-forwarded")
    rfc_hop = forwarded_hop(both, LOOPBACK, "forwarded")
    assert x_hop is not None
    assert x_hop.client == ("203.0.113.7", 0)
    assert x_hop.proto is None
    assert rfc_hop is not None
    assert rfc_hop.client == ("198.51.100.99", 0)


def test_no_forwarding_headers_mean_no_hop() -> None:
    plain = headers(("host", "example.com"))
    assert forwarded_hop(plain, LOOPBACK, "x-forwarded") is None
    assert forwarded_hop(plain, LOOPBACK, "forwarded") is None


# -- the scope -----------------------------------------------------------------


def scope_with(
    kind: str = "http", *fields: tuple[str, str], scheme: str = "http"
) -> Any:
    return {
        "type": kind,
        "scheme": scheme,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": headers(("host", "127.0.0.1:8000"), *fields, ("accept", "*/*")),
    }


ON = Config(proxy_headers=True)
FULL = (
    ("x-forwarded-for", "203.0.113.7"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "example.com"),
)


def test_a_trusted_proxy_rewrites_client_scheme_and_host() -> None:
    scope = scope_with("http", *FULL)
    apply_proxy_headers(scope, PROXY_PEER, ON)
    assert scope["client"] == ("203.0.113.7", 0)
    assert scope["scheme"] == "https"
    assert scope["server"] == ("127.0.0.1", 8000)  # the socket, as before
    # The host header is replaced in place; the forwarding headers stay.
    assert scope["headers"][0] == (b"host", b"example.com")
    assert [name for name, _ in scope["headers"]].count(b"host") == 1
    assert (b"x-forwarded-for", b"203.0.113.7") in scope["headers"]


def test_a_local_proxy_is_believed_by_default() -> None:
    scope = scope_with("http", *FULL)
    apply_proxy_headers(scope, PROXY_PEER, Config())
    assert (scope["client"], scope["scheme"]) == (("203.0.113.7", 0), "https")


@pytest.mark.parametrize(("proto", "scheme"), [("https", "wss"), ("http", "ws")])
def test_a_websocket_gets_ws_or_wss(proto: str, scheme: str) -> None:
    scope = scope_with("websocket", ("x-forwarded-proto", proto))
    apply_proxy_headers(scope, PROXY_PEER, ON)
    assert scope["scheme"] == scheme


@pytest.mark.parametrize(
    ("config", "peer"),
    [
        (Config(proxy_headers=False), PROXY_PEER),
        (Config(), STRANGER),  # on by default, for loopback peers only
        (ON, STRANGER),  # an untrusted peer cannot spoof
        (ON, MEMORY_PEER),
        (Config(proxy_headers=True, forwarded_allow_ips="10.0.0.0/8"), PROXY_PEER),
    ],
)
def test_headers_change_nothing_unless_on_and_trusted(
    config: Config, peer: ConnectionInfo
) -> None:
    scope = scope_with("http", *FULL)
    before = {
        key: list(value) if key == "headers" else value for key, value in scope.items()
    }
    apply_proxy_headers(scope, peer, config)
    assert scope == before


def test_unix_socket_peers_are_trusted_by_default() -> None:
    scope = scope_with("http", *FULL)
    scope["client"] = None
    apply_proxy_headers(scope, UNIX_PEER, ON)
    assert scope["client"] == ("203.0.113.7", 0)


@pytest.mark.parametrize(
    "fields",
    [
        (("x-forwarded-proto", "ftp"), ("x-forwarded-host", "bad host")),
        (("x-forwarded-proto", ""), ("x-forwarded-host", "a/b")),
        (("x-forwarded-proto", "https;x"), ("x-forwarded-host", "[::zz]")),
    ],
)
def test_invalid_proto_and_host_are_ignored(
    fields: tuple[tuple[str, str], ...],
) -> None:
    scope = scope_with("http", *fields)
    apply_proxy_headers(scope, PROXY_PEER, ON)
    assert scope["scheme"] == "http"
    assert scope["headers"][0] == (b"host", b"127.0.0.1:8000")


def test_a_request_without_host_gets_one() -> None:
    scope = scope_with("http")
    scope["headers"] = headers(("x-forwarded-host", "example.com"))
    apply_proxy_headers(scope, PROXY_PEER, ON)
    assert scope["headers"][0] == (b"host", b"example.com")


def test_the_forwarded_style_reads_rfc_7239() -> None:
    config = Config(proxy_headers=True, forwarded_header="forwarded")
    scope = scope_with(
        "http", ("forwarded", 'for="[2001:db8::7]:4711";proto=https;host=example.com')
    )
    apply_proxy_headers(scope, PROXY_PEER, config)
    assert scope["client"] == ("2001:db8::7", 4711)
    assert scope["scheme"] == "https"
    assert scope["headers"][0] == (b"host", b"example.com")


def test_an_obfuscated_client_is_none_not_the_proxy() -> None:
    config = Config(proxy_headers=True, forwarded_header="forwarded")
    scope = scope_with("http", ("forwarded", "for=_hidden"))
    apply_proxy_headers(scope, PROXY_PEER, config)
    assert scope["client"] is None


@given(
    st.sampled_from(
        [b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"]
    ),
    st.binary(max_size=120),
    st.sampled_from(["x-forwarded", "forwarded"]),
)
def test_no_header_value_makes_the_rewrite_raise(
    name: bytes, value: bytes, style: Any
) -> None:
    config = Config(proxy_headers=True, forwarded_header=style)
    scope = scope_with("http")
    scope["headers"].append((name, value))
    apply_proxy_headers(scope, PROXY_PEER, config)
    assert scope["scheme"] in ("http", "https")
    host = dict(scope["headers"])[b"host"]
    assert valid_host(host.decode("ascii"))
