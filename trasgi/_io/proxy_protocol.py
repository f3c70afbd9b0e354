"""Reading the PROXY protocol header at the start of a connection.

The header's format and its pure parser are in ``_protocol/proxy_header.py``;
here the header is read through the connection's inbox, within the header
deadline, before any HTTP byte.
"""

from __future__ import annotations

import trio

from trasgi._config.config import Config
from trasgi._io.inbox import Inbox, discard
from trasgi._observe.logs import error_logger
from trasgi._protocol.forwarded import trusted_proxies
from trasgi._protocol.proxy_header import (
    VERSIONS,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
    proxied_info,
)
from trasgi._protocol.scope import ConnectionInfo


async def read_proxy_header(
    inbox: Inbox, config: Config, info: ConnectionInfo
) -> tuple[ConnectionInfo, bytes] | None:
    """Read the PROXY protocol header; None when the connection must close.

    Call only with ``--proxy-protocol`` on. The connection must come from a
    peer in ``--forwarded-allow-ips`` and start with a valid header of an
    accepted version within ``--timeout-header-read``. Returns the
    connection's facts as the header tells them, and the bytes read past the
    header (the start of the HTTP stream).

    Error handling:
        An untrusted peer is refused without reading (logged as a warning: a
        client reaches a port meant for the proxy). A missing, malformed or
        late header is logged at debug level. Either way nothing is written:
        the peer is not speaking HTTP yet. Returns None for all of these.

    Resource handling:
        Reads only through ``inbox``, whose sink collects the bytes until the
        header is parsed; the caller gives the sink its next owner.
    """
    if not trusted_proxies(config.forwarded_allow_ips).trusts_peer(info):
        error_logger.warning(
            "closing connection from %s: only peers in --forwarded-allow-ips "
            "may send a PROXY protocol header",
            _describe(info),
        )
        return None
    received = bytearray()
    inbox.sink = received.extend
    timeout = config.timeout_header_read
    try:
        with trio.move_on_after(timeout):
            header = await _receive(
                inbox, info, received, VERSIONS[config.proxy_protocol]
            )
            if header is None:
                return None
            return proxied_info(info, header), bytes(received[header.length :])
    finally:
        inbox.sink = discard
    _debug(info, f"no complete header within {timeout:g}s")
    return None


async def _receive(
    inbox: Inbox, info: ConnectionInfo, received: bytearray, versions: frozenset[int]
) -> ProxyHeader | None:
    while True:
        try:
            header = parse_proxy_header(received, versions)
        except ProxyProtocolError as error:
            _debug(info, str(error))
            return None
        if header is not None:
            return header
        if inbox.eof:
            _debug(info, "the connection closed before the header")
            return None
        await inbox.fill()


def _describe(info: ConnectionInfo) -> str:
    if info.client is not None:
        return f"{info.client[0]}:{info.client[1]}"
    return "a peer without an address"


def _debug(info: ConnectionInfo, reason: str) -> None:
    error_logger.debug(
        "closing connection from %s: no valid PROXY protocol header: %s",
        _describe(info),
        reason,
    )
