"""WebSocket: one websocket connection, over the ASGI websocket protocol."""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ._connection import HTTPConnection
from ._denial import send_denial
from ._exceptions import WebSocketDisconnect
from ._responses import Response
from ._types import Message, Receive, Scope, Send

#: Close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_ABNORMAL = 1006
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_INVALID_PAYLOAD = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011


class WebSocketState(enum.Enum):
    """Where one direction of the connection stands."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


class WebSocket(HTTPConnection):
    """A websocket connection as a handler sees it.

    Receiving and sending are independent: one task may wait in
    :meth:`receive_text` while another calls :meth:`send_text`, as in a
    nursery of two tasks.

    Args:
        scope: The ASGI ``websocket`` scope.
        receive: The ASGI ``receive`` callable.
        send: The ASGI ``send`` callable.

    Error handling:
        Receiving raises :class:`WebSocketDisconnect` once the peer has
        closed. A message of the wrong kind (bytes for
        :meth:`receive_text`) closes with 1003, invalid JSON with 1007,
        both raising :class:`WebSocketDisconnect`. Sending after the peer
        left raises :class:`WebSocketDisconnect` (1006); sending before
        :meth:`accept` or after :meth:`close` raises ``RuntimeError``.
    """

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        super().__init__(scope)
        self._receive = receive
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols", []))

    async def accept(
        self, subprotocol: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        """Accept the connection, choosing ``subprotocol`` among those offered.

        Error handling:
            ``ValueError`` if ``subprotocol`` was not offered (RFC 6455
            section 4.2.2 lets the server pick only from the client's list);
            ``RuntimeError`` if already accepted or closed;
            :class:`WebSocketDisconnect` if the client left first.
        """
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("websocket.accept after the handshake was answered")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(
                f"subprotocol {subprotocol!r} was not offered by the client"
            )
        if self.client_state is WebSocketState.CONNECTING:
            message = await self._receive_message()
            if message["type"] != "websocket.connect":
                raise RuntimeError(
                    f"expected websocket.connect, got {message['type']!r}"
                )
        raw_headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ]
        await self._send_message(
            {
                "type": "websocket.accept",
                "subprotocol": subprotocol,
                "headers": raw_headers,
            }
        )

    async def send_denial_response(self, response: Response) -> None:
        """Refuse the handshake with ``response`` (a 401, a 403...) instead.

        The server sends it as the HTTP answer to the upgrade request when
        it has the ASGI ``websocket.http.response`` extension; otherwise the
        handshake is refused with a bare 403.

        Error handling:
            ``RuntimeError`` once the handshake was answered.
        """
        if self.application_state is not WebSocketState.CONNECTING:
            raise RuntimeError("a denial response can only replace the handshake")
        self.application_state = WebSocketState.CLOSED
        await send_denial(self.scope, self._send, response)

    async def receive(self) -> Message:
        """The next raw ASGI message (``websocket.receive`` or a disconnect)."""
        return await self._receive_message()

    async def receive_text(self) -> str:
        """The next text message."""
        text: str = await self._receive_data("text")
        return text

    async def receive_bytes(self) -> bytes:
        """The next binary message."""
        data: bytes = await self._receive_data("bytes")
        return data

    async def receive_json(self) -> Any:
        """The next message, text or binary, parsed as JSON."""
        message = await self._receive_payload()
        payload = message.get("text")
        if payload is None:
            payload = message.get("bytes") or b""
        try:
            return json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            await self._close_for(CLOSE_INVALID_PAYLOAD, "invalid JSON")
            raise WebSocketDisconnect(CLOSE_INVALID_PAYLOAD, "invalid JSON") from None

    async def iter_text(self) -> AsyncIterator[str]:
        """Yield text messages until the peer closes."""
        try:
            while True:
                yield await self.receive_text()
        except WebSocketDisconnect:
            return

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        """Yield binary messages until the peer closes."""
        try:
            while True:
                yield await self.receive_bytes()
        except WebSocketDisconnect:
            return

    async def iter_json(self) -> AsyncIterator[Any]:
        """Yield JSON messages until the peer closes."""
        try:
            while True:
                yield await self.receive_json()
        except WebSocketDisconnect:
            return

    async def send_text(self, data: str) -> None:
        """Send a text message."""
        await self._send_message({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        """Send a binary message."""
        await self._send_message({"type": "websocket.send", "bytes": bytes(data)})

    async def send_json(self, data: Any, *, binary: bool = False) -> None:
        """Send ``data`` as JSON, in a text message unless ``binary``."""
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        if binary:
            await self.send_bytes(text.encode("utf-8"))
        else:
            await self.send_text(text)

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close the connection; before :meth:`accept`, this rejects it.

        A close before accepting makes the server answer the handshake with
        403 (ASGI websocket spec, "Close - send event"). Closing twice, or
        after the peer closed, sends nothing.
        """
        if self.application_state is WebSocketState.CLOSED:
            return
        if self.client_state is WebSocketState.CLOSED:
            # The peer's close already ended the connection: nothing to send.
            self.application_state = WebSocketState.CLOSED
            return
        await self._send_message(
            {"type": "websocket.close", "code": code, "reason": reason}
        )

    async def _receive_data(self, kind: str) -> Any:
        message = await self._receive_payload()
        data = message.get(kind)
        if data is None:
            other = "binary" if kind == "text" else "text"
            await self._close_for(
                CLOSE_UNSUPPORTED_DATA, f"expected {kind}, got {other}"
            )
            raise WebSocketDisconnect(CLOSE_UNSUPPORTED_DATA, f"expected {kind}")
        return data

    async def _receive_payload(self) -> Message:
        if self.application_state is WebSocketState.CONNECTING:
            raise RuntimeError("accept the websocket before receiving messages")
        message = await self._receive_message()
        if message["type"] != "websocket.receive":
            raise RuntimeError(f"unexpected ASGI message {message['type']!r}")
        return message

    async def _receive_message(self) -> Message:
        if self.client_state is WebSocketState.CLOSED:
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        message = await self._receive()
        if message["type"] == "websocket.connect":
            self.client_state = WebSocketState.CONNECTED
        elif message["type"] == "websocket.disconnect":
            self.client_state = WebSocketState.CLOSED
            self._close_code = int(message.get("code", CLOSE_NORMAL))
            self._close_reason = str(message.get("reason") or "")
            raise WebSocketDisconnect(self._close_code, self._close_reason)
        return message

    _close_code = CLOSE_NORMAL
    _close_reason = ""

    async def _send_message(self, message: Message) -> None:
        kind = message["type"]
        if self.application_state is WebSocketState.CLOSED:
            raise RuntimeError(f"cannot send {kind!r} after the websocket was closed")
        if (
            kind == "websocket.send"
            and self.application_state is WebSocketState.CONNECTING
        ):
            raise RuntimeError("accept the websocket before sending messages")
        if kind == "websocket.close":
            self.application_state = WebSocketState.CLOSED
        elif kind == "websocket.accept":
            self.application_state = WebSocketState.CONNECTED
        try:
            await self._send(message)
        except OSError:
            # The peer is gone (ASGI websocket spec 2.4: send raises OSError).
            self.client_state = WebSocketState.CLOSED
            self.application_state = WebSocketState.CLOSED
            raise WebSocketDisconnect(CLOSE_ABNORMAL, "the client is gone") from None

    async def _close_for(self, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            await self.close(code, reason)
