"""Refusing a websocket handshake with an HTTP response."""

from __future__ import annotations

from typing import Any

from ._exceptions import HTTPException
from ._responses import PlainTextResponse, Response
from ._types import Scope, Send

#: The ASGI extension a server announces when it can send a denial response.
DENIAL_EXTENSION = "websocket.http.response"


def supports_denial(scope: Scope) -> bool:
    """Whether the server can answer a websocket handshake with a response."""
    return DENIAL_EXTENSION in (scope.get("extensions") or {})


async def send_denial(scope: Scope, send: Send, response: Response) -> None:
    """Refuse a websocket handshake with ``response``.

    Through the server's ``websocket.http.response`` extension when it has
    it (the client sees the status, headers and body); otherwise with a
    close before the accept, which the server answers with a bare 403 (ASGI
    websocket spec).
    """
    if not supports_denial(scope):
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        return

    async def send_prefixed(message: Any) -> None:
        await send({**message, "type": "websocket." + message["type"]})

    async def no_receive() -> Any:
        raise RuntimeError("a denial response does not read the request")

    await response(scope, no_receive, send_prefixed)


def denial_response(exc: HTTPException) -> Response:
    """The response refusing a websocket for ``exc``."""
    return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
