"""How a WebSocket begins: RFC 6455's upgrade, or RFC 8441's extended CONNECT.

The frames of a WebSocket are the same whatever carries them; the opening
handshake and the wrapping of the frames are not. Over HTTP/1.1 (RFC 6455
section 4) the client sends ``GET`` with ``Upgrade: websocket`` and a key,
the server answers ``101 Switching Protocols`` with the key's digest, and the
frames then own the connection's bytes. Over HTTP/2 (RFC 8441) the client
opens a stream with ``CONNECT`` and ``:protocol: websocket``, the server
answers ``200`` on that stream, and the frames travel as the stream's DATA;
there is no key, because a stream cannot be mistaken for anything else.

A :class:`Handshake` is that difference, and nothing else: it checks the
opening request, answers it (accept, or a denial response and its body), and
wraps frames in what its connection writes (bytes for HTTP/1.1, response
pieces for an HTTP/2 stream). :class:`~trasgi._protocol.ws_cycle.WebSocketCycle`
does the rest the same way over both. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar

import h11
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    RejectConnection,
    RejectData,
    Request,
)
from wsproto.extensions import Extension
from wsproto.handshake import H11Handshake, server_extensions_handshake
from wsproto.utilities import RemoteProtocolError

from trasgi._errors import PeerError
from trasgi._protocol.cycle import REASON_PHRASES, first_invalid_field
from trasgi._protocol.h2_cycle import (
    CONNECTION_SPECIFIC,
    H2Out,
    ResponseData,
    ResponseHead,
)
from trasgi._protocol.scope import offered_subprotocols

#: What a handshake's connection writes: bytes, or an HTTP/2 stream's pieces.
Piece = TypeVar("Piece", covariant=True)

#: The only version of the protocol (RFC 6455 section 4.1, item 9).
WEBSOCKET_VERSION = b"13"


class HandshakeError(PeerError):
    """The opening request is not a valid WebSocket handshake.

    Attributes:
        headers: Headers the answer must carry, such as the supported
            ``Sec-WebSocket-Version`` with a 426 (RFC 6455 section 4.4).
    """

    def __init__(
        self, status_code: int, reason: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        super().__init__(status_code, reason, tuple(headers))


class Unsendable(ValueError):
    """What the application asked to send cannot be put on the wire.

    A header field no field line could carry, or a denial body that does
    not match its declared ``Content-Length``.
    """


class Handshake(Protocol[Piece]):
    """One protocol's way of opening a WebSocket, as the cycle uses it."""

    #: The status of an accepting answer: 101 over HTTP/1.1, 200 over HTTP/2.
    @property
    def accept_status(self) -> int: ...

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        ...

    def accept(
        self,
        subprotocol: str | None,
        extensions: list[Extension],
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[Piece, Connection]:
        """Answer yes; return the answer and the frame-level connection.

        ``extensions`` are those the server supports; the ones the client
        offered are agreed to. An offer the extension cannot parse is
        declined (RFC 7692 section 5 lets a server decline any offer).

        Error handling:
            Raises :class:`Unsendable` for a header the answer cannot carry.
        """
        ...

    def deny(self, status: int, headers: list[tuple[bytes, bytes]]) -> Piece:
        """The head of a denial response, whose body follows.

        Error handling:
            Raises :class:`Unsendable` for a header the answer cannot carry.
        """
        ...

    def deny_body(self, data: bytes, finished: bool) -> Piece:
        """A piece of the denial response's body; ``finished`` on the last.

        Error handling:
            Raises :class:`Unsendable` for a body its framing cannot carry.
        """
        ...

    def frames(self, data: bytes) -> Piece:
        """WebSocket frames, wrapped for the connection."""
        ...


class UpgradeHandshake:
    """RFC 6455 over HTTP/1.1: ``101 Switching Protocols``, then the bytes are frames.

    wsproto's handshake object does the checks and the answers (the key's
    digest, the extension negotiation) on top of h11.

    Args:
        request: The upgrade request, as h11 parsed it.

    Error handling:
        Raises :class:`HandshakeError`: 400 for a missing key or ``Host``, a
        header that is not ASCII, or a missing version; 426 naming the
        supported version for another version (RFC 6455 section 4.4).
    """

    accept_status = 101

    def __init__(self, request: h11.Request) -> None:
        self._ws = H11Handshake(ConnectionType.SERVER)
        self._request = _read_upgrade(self._ws, request)

    @property
    def subprotocols(self) -> list[str]:
        return list(self._request.subprotocols)

    def accept(
        self,
        subprotocol: str | None,
        extensions: list[Extension],
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[bytes, Connection]:
        try:
            # Validated first: wsproto builds its connection before h11 checks
            # the 101's headers, so a bad header there would leave it half open.
            h11.InformationalResponse(status_code=101, headers=headers)
        except h11.LocalProtocolError as exc:
            raise Unsendable(str(exc)) from None
        try:
            data = self._ws.send(AcceptConnection(subprotocol, extensions, headers))
        except ValueError:
            # wsproto parses the offer's window bits with int() and lets a
            # malformed value escape, before changing any state: decline.
            data = self._ws.send(AcceptConnection(subprotocol, [], headers))
        connection = self._ws.connection
        assert connection is not None
        return data, connection

    def deny(self, status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
        if not any(name.lower() == b"connection" for name, _ in headers):
            # The connection was asked to change protocol and did not: it is
            # not reused for HTTP.
            headers = [*headers, (b"connection", b"close")]
        try:
            head = self._ws.send(
                RejectConnection(status_code=status, headers=headers, has_body=True)
            )
        except h11.LocalProtocolError as exc:
            raise Unsendable(str(exc)) from None
        return _with_reason_phrase(head, status)

    def deny_body(self, data: bytes, finished: bool) -> bytes:
        try:
            return self._ws.send(RejectData(data=data, body_finished=finished))
        except h11.LocalProtocolError as exc:
            raise Unsendable(str(exc)) from None

    def frames(self, data: bytes) -> bytes:
        return data


def _with_reason_phrase(head: bytes, status: int) -> bytes:
    """The head with the status's standard reason phrase on its status line.

    wsproto writes its refusals with an empty phrase, which RFC 9112 section
    4 allows, but clients and their logs show that phrase (``403 Forbidden``).
    """
    _, rest = head.split(b"\r\n", 1)
    return b"HTTP/1.1 %d %s\r\n%s" % (status, REASON_PHRASES.get(status, b""), rest)


def _read_upgrade(ws: H11Handshake, request: h11.Request) -> Request:
    try:
        ws.initiate_upgrade_connection(list(request.headers), request.target)
        event = next(ws.events())
    except RemoteProtocolError as exc:
        hint = exc.event_hint
        if isinstance(hint, RejectConnection) and _names_the_version(hint):
            # wsproto says "Missing header" for a version it does not speak too.
            versions = _versions(request.headers)
            raise _version_error(versions, b"Sec-WebSocket-Version") from None
        if isinstance(hint, RejectConnection):
            raise HandshakeError(
                hint.status_code, f"invalid websocket handshake: {exc}", hint.headers
            ) from None
        raise HandshakeError(400, f"invalid websocket handshake: {exc}", ()) from None
    except UnicodeError:
        # wsproto decodes Host as IDNA and the list headers as ASCII.
        raise HandshakeError(
            400, "invalid websocket handshake: a header is not ASCII", ()
        ) from None
    assert isinstance(event, Request)
    return event


def _versions(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    return [
        value for name, value in headers if name.lower() == b"sec-websocket-version"
    ]


def _names_the_version(hint: RejectConnection) -> bool:
    """Whether wsproto's refusal is about the version (it carries the header)."""
    return any(name.lower() == b"sec-websocket-version" for name, _ in hint.headers)


def _version_error(versions: list[bytes], field_name: bytes) -> HandshakeError:
    """400 for a missing ``Sec-WebSocket-Version``, 426 for another one.

    RFC 6455 section 4.4: a server that does not speak the client's version
    answers 426 with the versions it does speak in ``Sec-WebSocket-Version``
    (``field_name``, spelled as the connection's protocol writes it).
    """
    supported = [(field_name, WEBSOCKET_VERSION)]
    if not versions:
        reason = "missing header Sec-WebSocket-Version (13)"
        return HandshakeError(400, f"invalid websocket handshake: {reason}", supported)
    offered = b", ".join(versions).decode("latin-1")
    reason = f"unsupported Sec-WebSocket-Version {offered!r} (this server speaks 13)"
    return HandshakeError(426, f"invalid websocket handshake: {reason}", supported)


class ConnectHandshake:
    """RFC 8441 over HTTP/2: ``200`` on the stream, then its DATA carries the frames.

    h2 has checked the extended CONNECT's pseudo-header fields (``:scheme``,
    ``:path`` and ``:authority`` present, section 4); what is left is the
    WebSocket part of section 5: the protocol is ``websocket`` and the version
    13. ``Sec-WebSocket-Key`` and ``Sec-WebSocket-Accept`` are not used.

    Args:
        protocol: The request's ``:protocol``.
        headers: Its regular fields, names in lower case.

    Error handling:
        Raises :class:`HandshakeError`: 501 for a ``:protocol`` other than
        ``websocket``; 400 for a missing version; 426 naming the supported
        version for another version.
    """

    accept_status = 200

    def __init__(self, protocol: bytes, headers: Sequence[tuple[bytes, bytes]]) -> None:
        if protocol.lower() != b"websocket":
            raise HandshakeError(
                501, f"unsupported :protocol {protocol.decode('latin-1')!r}", ()
            )
        versions = _versions(headers)
        if versions != [WEBSOCKET_VERSION]:
            # RFC 9113 section 8.2: field names are lower case in HTTP/2.
            raise _version_error(versions, b"sec-websocket-version")
        self._subprotocols = offered_subprotocols(headers)
        self._offers = [
            offer.strip()
            for name, value in headers
            if name == b"sec-websocket-extensions"
            for offer in value.decode("latin-1").split(",")
            if offer.strip()
        ]

    @property
    def subprotocols(self) -> list[str]:
        return list(self._subprotocols)

    def accept(
        self,
        subprotocol: str | None,
        extensions: list[Extension],
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[H2Out, Connection]:
        fields = _h2_fields(headers)
        if subprotocol is not None:
            fields.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        try:
            agreed = server_extensions_handshake(self._offers, extensions)
        except ValueError:
            # As over HTTP/1.1: a malformed offer is declined.
            agreed, extensions = None, []
        if agreed:
            fields.append((b"sec-websocket-extensions", agreed))
        head = ResponseHead(self.accept_status, fields, end_stream=False)
        return head, Connection(ConnectionType.SERVER, extensions)

    def deny(self, status: int, headers: list[tuple[bytes, bytes]]) -> H2Out:
        return ResponseHead(status, _h2_fields(headers), end_stream=False)

    def deny_body(self, data: bytes, finished: bool) -> H2Out:
        return ResponseData(data, end_stream=finished)

    def frames(self, data: bytes) -> H2Out:
        return ResponseData(data, end_stream=False)


def _h2_fields(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The fields as HTTP/2 carries them: lower-case names, no connection fields.

    Error handling:
        Raises :class:`Unsendable` naming a field no line could carry (RFC
        9113 section 8.2.1: never CR, LF or NUL).
    """
    bad = first_invalid_field(headers)
    if bad is not None:
        raise Unsendable(f"invalid header {bad}")
    # RFC 9113 section 8.2.2: connection-specific fields are malformed.
    return [
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in CONNECTION_SPECIFIC
    ]
