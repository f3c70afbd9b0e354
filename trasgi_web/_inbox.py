"""A request's ``receive`` shared by the handler and a disconnect watcher.

An ASGI server reports that the client left through ``receive()``, which also
carries the request body (ASGI HTTP spec, "Disconnect - receive event"). To
cancel a handler when its client goes, something must call ``receive()``
while the handler runs, without stealing body chunks from it and without
reading the body early (which would defeat backpressure and send
``100 Continue`` unasked, RFC 9110 section 10.1.1). The :class:`Inbox` is the
only caller of the server's ``receive``: the handler pulls body messages on
demand; the watcher listens only once the body is over (at once for a request
that declares no body).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import cached_property

import trio

from ._types import Message, Receive, Scope

_DISCONNECT: Message = {"type": "http.disconnect"}


class Inbox:
    """Serialises the server's ``receive`` between a handler and a watcher."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._pending: deque[Message] = deque()

    # The lock and events are made on first use: a handler that neither
    # reads its body nor waits never needs them.

    @cached_property
    def _lock(self) -> trio.Lock:
        return trio.Lock()

    @cached_property
    def _body_done(self) -> trio.Event:
        return trio.Event()

    @cached_property
    def disconnected(self) -> trio.Event:
        """Set once the server has reported ``http.disconnect``."""
        return trio.Event()

    async def receive(self) -> Message:
        """The next message for the handler; ``http.disconnect`` after the body."""
        if self._pending:
            return self._pending.popleft()
        if not self._body_done.is_set():
            async with self._lock:
                if self._pending:
                    return self._pending.popleft()
                if not self._body_done.is_set():
                    return await self._pull()
        await self._pull_until_disconnected()
        return dict(_DISCONNECT)

    async def watch(self, scope: Scope, on_disconnect: Callable[[], object]) -> None:
        """Call ``on_disconnect`` when the client leaves; run as a task."""
        if _declares_no_body(scope):
            async with self._lock:
                # Empty body messages are taken in advance (some servers
                # send one with more_body=True first); data is left for the
                # handler, to keep the body limit and backpressure.
                while not self._body_done.is_set() and not any(
                    message.get("body") for message in self._pending
                ):
                    self._pending.append(await self._pull())
        await self._body_done.wait()
        await self._pull_until_disconnected()
        on_disconnect()

    async def _pull_until_disconnected(self) -> None:
        """Wait for ``http.disconnect``, one caller of the server at a time.

        Whoever waits (the watcher, or a response listening after its
        handler returned and the watcher stopped) pulls for itself.
        """
        while not self.disconnected.is_set():
            async with self._lock:
                if not self.disconnected.is_set():
                    await self._pull()

    async def _pull(self) -> Message:
        message = await self._receive()
        kind = message.get("type")
        if kind == "http.disconnect":
            self._body_done.set()
            self.disconnected.set()
        elif kind == "http.request" and not message.get("more_body", False):
            self._body_done.set()
        return message


def _declares_no_body(scope: Scope) -> bool:
    """True when the request head announces no content (RFC 9112 section 6.3)."""
    length = None
    for name, value in scope.get("headers", ()):
        if name.lower() == b"transfer-encoding":
            return False
        if name.lower() == b"content-length":
            length = value
    return length is None or length.strip() == b"0"
