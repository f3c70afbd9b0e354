"""The notes, the users and the live feed, kept in memory."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

#: Events waiting for one listener before it is dropped.
BACKLOG = 16


@dataclass
class Note:
    id: int
    author: str
    title: str
    body: str
    attachment: tuple[str, str, bytes] | None = None  # filename, type, data

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "author": self.author,
            "title": self.title,
            "body": self.body,
            "attachment": self.attachment[0] if self.attachment else None,
        }


def hash_password(password: str, salt: bytes) -> bytes:
    # scrypt: slow on purpose, so that a stolen table is slow to guess.
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


@dataclass
class Users:
    """Names and salted password hashes."""

    hashes: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def add(self, name: str, password: str) -> None:
        salt = secrets.token_bytes(16)
        self.hashes[name] = (salt, hash_password(password, salt))

    def check(self, name: str, password: str) -> bool:
        salt, expected = self.hashes.get(name, (b"-" * 16, b""))
        # Hash even for an unknown name, so that timing does not tell.
        return hmac.compare_digest(hash_password(password, salt), expected)


@dataclass
class Notes:
    """The notes, and the channels of those listening for changes."""

    notes: dict[int, Note] = field(default_factory=dict)
    listeners: set[trio.MemorySendChannel[dict[str, Any]]] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(
        self,
        author: str,
        title: str,
        body: str,
        attachment: tuple[str, str, bytes] | None = None,
    ) -> Note:
        note = Note(next(self._ids), author, title, body, attachment)
        self.notes[note.id] = note
        self.publish({"event": "created", "note": note.as_json()})
        return note

    def delete(self, note_id: int) -> None:
        del self.notes[note_id]
        self.publish({"event": "deleted", "id": note_id})

    def publish(self, event: dict[str, Any]) -> None:
        for channel in list(self.listeners):
            try:
                channel.send_nowait(event)
            except trio.WouldBlock:
                # A listener that cannot keep up is dropped, not waited for.
                self.listeners.discard(channel)
                channel.close()

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[trio.MemoryReceiveChannel[dict[str, Any]]]:
        send, receive = trio.open_memory_channel[dict[str, Any]](BACKLOG)
        self.listeners.add(send)
        try:
            yield receive
        finally:
            self.listeners.discard(send)
            send.close()
