"""Read-only multi-dicts for query strings and headers, and small value types."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl


class MultiDict(Mapping[str, str]):
    """An immutable mapping where a key may hold several values, in order.

    ``md[key]`` and ``md.get(key)`` give the *first* value, as a form or query
    reader expects; :meth:`getlist` gives all of them.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)
        self._first: dict[str, str] = {}
        for key, value in self._items:
            self._first.setdefault(key, value)

    def __getitem__(self, key: str) -> str:
        return self._first[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def getlist(self, key: str) -> list[str]:
        """All values of ``key`` in the order they came; ``[]`` if absent."""
        return [value for name, value in self._items if name == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(key, value)`` pair, repeated keys included, in order."""
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MultiDict):
            return self._items == other._items
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._items!r})"


class QueryParams(MultiDict):
    """The decoded query string of a request (``?a=1&a=2&b=``)."""

    @classmethod
    def from_bytes(cls, query_string: bytes) -> QueryParams:
        """Parse ``application/x-www-form-urlencoded`` bytes; blank values kept."""
        text = query_string.decode("latin-1")
        return cls(parse_qsl(text, keep_blank_values=True))


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of raw ASGI header pairs.

    Field names compare case-insensitively (RFC 9110 section 5.1). ``h[name]``
    joins repeated fields with ``", "`` (RFC 9110 section 5.3), except
    ``set-cookie``, whose values cannot be combined (RFC 6265 section 3), for
    which it gives the first; :meth:`getlist` gives each field line.
    """

    def __init__(self, raw: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self._raw = [(name.lower(), value) for name, value in raw]

    @classmethod
    def from_mapping(cls, headers: Mapping[str, str]) -> Headers:
        """Build from a ``str`` mapping (names and values encoded as latin-1)."""
        return cls(_encode_pairs(headers.items()))

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The header pairs with lower-cased names, as ASGI sends them."""
        return list(self._raw)

    def getlist(self, key: str) -> list[str]:
        """Every value of the field ``key``, one per field line."""
        name = key.lower().encode("latin-1")
        return [value.decode("latin-1") for raw, value in self._raw if raw == name]

    def __getitem__(self, key: str) -> str:
        values = self.getlist(key)
        if not values:
            raise KeyError(key)
        if key.lower() == "set-cookie":
            return values[0]
        return ", ".join(values)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        name = key.lower().encode("latin-1")
        return any(raw == name for raw, _ in self._raw)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for name, _ in self._raw:
            seen.setdefault(name.decode("latin-1"), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({name for name, _ in self._raw})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted(self._raw) == sorted(other._raw)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._raw!r})"


class MutableHeaders(Headers):
    """Response headers: :class:`Headers` that can be set, appended, deleted."""

    @classmethod
    def _of_encoded(cls, raw: list[tuple[bytes, bytes]]) -> MutableHeaders:
        """Take ``raw`` as it is: pairs from :func:`encode_fields`, names lowered.

        A response builds its fields that way already; lowering them again
        and copying the list would cost every response for nothing.
        """
        headers = cls.__new__(cls)
        headers._raw = raw
        return headers

    def __setitem__(self, key: str, value: str) -> None:
        """Replace every field ``key`` with one holding ``value``."""
        self.pop_all(key)
        self.append(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.pop_all(key):
            raise KeyError(key)

    def append(self, key: str, value: str) -> None:
        """Add a field line, keeping those already present (``Set-Cookie``)."""
        self._raw.extend(_encode_pairs([(key, value)]))

    def setdefault_value(self, key: str, value: str) -> None:
        """Set ``key`` to ``value`` unless the field is already present."""
        if key not in self:
            self.append(key, value)

    def pop_all(self, key: str) -> list[str]:
        """Remove every field ``key``; return the values removed."""
        values = self.getlist(key)
        name = key.lower().encode("latin-1")
        self._raw = [(raw, value) for raw, value in self._raw if raw != name]
        return values


def encode_fields(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """``headers`` as ASGI header pairs: lower-case names, latin-1 bytes.

    Error handling:
        ``ValueError`` for a CR, LF or NUL in a name or value.
    """
    return _encode_pairs(headers.items()) if headers else []


def _encode_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    encoded = []
    for name, value in pairs:
        # A CR or LF in a field would let a value smuggle another header or
        # end the head early (RFC 9110 section 5.5).
        if _FORBIDDEN_IN_FIELD.search(name) or _FORBIDDEN_IN_FIELD.search(value):
            raise ValueError(f"invalid character in header {name!r}")
        encoded.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    return encoded


_FORBIDDEN_IN_FIELD = re.compile("[\r\n\0]")


class State:
    """A namespace for values shared by handlers: ``app.state.db = ...``.

    Reading a missing attribute raises ``AttributeError`` naming it.
    """

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", values if values is not None else {})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._values[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self._values[name]
        except KeyError:
            raise AttributeError(f"state has no attribute {name!r}") from None

    def __repr__(self) -> str:
        return f"State({self._values!r})"
