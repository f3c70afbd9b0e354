"""A callable's parameters, sorted by source: what a route's plan is made of.

``_params.py`` reads a signature into these once, at definition; a request
only follows them (``_depends.py``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import msgspec

from ._connection import HTTPConnection
from ._markers import Depends, Param, Source
from ._validation import ErrorDetail, from_msgspec, missing


class _Required(enum.Enum):
    REQUIRED = "required"


#: The default of a parameter that must be present.
REQUIRED = _Required.REQUIRED
_NO_VALUE = object()


@attrs.frozen
class Value:
    """One scalar (or list of scalars) read from the path, query, headers or cookies.

    Attributes:
        name: The keyword the callable receives.
        key: The name in the request (alias, or ``user-agent`` for
            ``user_agent``); lower case for headers.
        source: Where it is read.
        annotation: The declared type, for the OpenAPI document.
        target: The type converted to, with the marker's constraints.
        many: Whether every repeat is taken (a ``list[...]`` annotation).
        default: The value when absent, or :data:`REQUIRED`.
        marker: The ``Query()``/``Header()``... marker, if any.
    """

    name: str
    key: str
    source: Source
    annotation: Any
    target: Any
    many: bool
    default: Any
    marker: Param | None

    def read(self, connection: HTTPConnection, path_params: Mapping[str, Any]) -> Any:
        """The raw value in the request, or ``_NO_VALUE``."""
        if self.source is Source.QUERY:
            mapping: Any = connection.query
        elif self.source is Source.HEADER:
            mapping = connection.headers
        elif self.source is Source.COOKIE:
            return connection.cookies.get(self.key, _NO_VALUE)
        else:
            return path_params.get(self.key, _NO_VALUE)
        if self.many:
            found = mapping.getlist(self.key)
            return found if found else _NO_VALUE
        return mapping.get(self.key, _NO_VALUE)

    def resolve(
        self, connection: HTTPConnection, path_params: Mapping[str, Any]
    ) -> tuple[Any, ErrorDetail | None]:
        """The converted value, or the error to report for it."""
        raw = self.read(connection, path_params)
        loc = (self.source.value, self.key)
        if raw is _NO_VALUE:
            if self.default is REQUIRED:
                return None, missing(loc)
            return self.default, None
        if self.target is None:
            return raw, None  # a path value its converter already made
        try:
            return msgspec.convert(raw, self.target, strict=False), None
        except msgspec.ValidationError as exc:
            return None, from_msgspec(loc, exc)


@attrs.frozen
class BodyParam:
    """The parameter that receives the decoded body (JSON or a form)."""

    name: str
    annotation: Any
    source: Source
    default: Any
    marker: Param | None
    decoder: Any = attrs.field(eq=False)


@attrs.frozen
class StateParam:
    """A parameter that receives a value of the lifespan state."""

    name: str
    key: str
    annotation: Any


@attrs.frozen
class DependencyParam:
    """A parameter whose value a provider makes."""

    name: str
    marker: Depends
    signature: Signature


class Kind(enum.Enum):
    """How a handler or provider is called."""

    ASYNC = "async"
    SYNC = "sync"
    ASYNC_GENERATOR = "async generator"
    GENERATOR = "generator"


@attrs.frozen
class Signature:
    """A callable's parameters, sorted by where their values come from."""

    func: Callable[..., Any]
    kind: Kind
    connection: str | None
    connection_positional: bool
    values: tuple[Value, ...]
    body: BodyParam | None
    dependencies: tuple[DependencyParam, ...]
    states: tuple[StateParam, ...]
    path_names: tuple[str, ...]
    takes_kwargs: bool
    returns: Any

    def all_values(self) -> list[Value]:
        """Its values and those of its providers, each provider once."""
        seen: dict[int, None] = {}
        found: list[Value] = []
        self._collect(found, seen)
        return found

    def _collect(self, found: list[Value], seen: dict[int, None]) -> None:
        found.extend(self.values)
        for dependency in self.dependencies:
            if id(dependency.signature.func) not in seen:
                seen[id(dependency.signature.func)] = None
                dependency.signature._collect(found, seen)

    def all_bodies(self) -> list[BodyParam]:
        """Its body and its providers' bodies."""
        found = [self.body] if self.body is not None else []
        for dependency in self.dependencies:
            found.extend(dependency.signature.all_bodies())
        return found
