"""Markers put in ``Annotated[...]`` to say where a handler parameter comes from.

A handler parameter's annotation alone decides most sources: a scalar
(``int``, ``str``, an enum, a date...) or a list of scalars is a query
parameter, a model (a dataclass, an attrs class, a ``TypedDict``, a msgspec
``Struct``, a pydantic model) is the JSON body. A marker in ``Annotated``
overrides that, renames the field (``alias``) and constrains the value::

    limit: Annotated[int, Query(ge=1, le=100)] = 20
    user_agent: Annotated[str | None, Header()] = None
    db: Annotated[Database, Depends(open_database)]

The markers only describe; the per-route plan (``_params.py``) reads them
once, when the route is defined.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs


class Source(enum.Enum):
    """Where a request value is read from; the names are OpenAPI's ``in``."""

    PATH = "path"
    QUERY = "query"
    HEADER = "header"
    COOKIE = "cookie"
    BODY = "body"
    FORM = "form"


@attrs.frozen(kw_only=True)
class Param:
    """A request value with its name and constraints; see the subclasses.

    Attributes:
        alias: The name in the request when it is not the parameter's name.
        description: Shown in the OpenAPI document.
        ge: The value must be at least this (numbers).
        gt: The value must be greater than this (numbers).
        le: The value must be at most this (numbers).
        lt: The value must be less than this (numbers).
        min_length: At least this many characters (or items, for lists).
        max_length: At most this many characters (or items, for lists).
        pattern: A regular expression the text must match (``re.search``).
        deprecated: Marked deprecated in the OpenAPI document.
        include_in_schema: Whether the OpenAPI document lists it.
    """

    source: Source = attrs.field(init=False, default=Source.QUERY)
    alias: str | None = None
    description: str | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    deprecated: bool = False
    include_in_schema: bool = True

    def constraints(self) -> dict[str, Any]:
        """The constraints that were set, by msgspec ``Meta`` keyword."""
        names = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")
        found = {name: getattr(self, name) for name in names}
        return {name: value for name, value in found.items() if value is not None}


@attrs.frozen(kw_only=True)
class Query(Param):
    """A query-string parameter; a ``list[...]`` annotation takes every repeat."""

    source: Source = attrs.field(init=False, default=Source.QUERY)


@attrs.frozen(kw_only=True)
class Path(Param):
    """A path parameter (the default for a name in the pattern), constrained."""

    source: Source = attrs.field(init=False, default=Source.PATH)


@attrs.frozen(kw_only=True)
class Header(Param):
    """A request header; ``user_agent`` reads ``user-agent``.

    Attributes:
        convert_underscores: Read ``_`` in the parameter's name as ``-``.
    """

    source: Source = attrs.field(init=False, default=Source.HEADER)
    convert_underscores: bool = True


@attrs.frozen(kw_only=True)
class Cookie(Param):
    """A cookie of the request's ``Cookie`` header."""

    source: Source = attrs.field(init=False, default=Source.COOKIE)


@attrs.frozen(kw_only=True)
class Body(Param):
    """The JSON body, for a type that would not be read as a body by itself.

    ``Annotated[list[Item], Body()]`` reads a JSON array of items.

    Attributes:
        media_type: The content type the OpenAPI document declares.
    """

    source: Source = attrs.field(init=False, default=Source.BODY)
    media_type: str = "application/json"


@attrs.frozen(kw_only=True)
class Form(Param):
    """The form body (urlencoded or multipart) read into a model's fields."""

    source: Source = attrs.field(init=False, default=Source.FORM)
    #: The OpenAPI content type; by default ``multipart/form-data`` for a
    #: model with file fields, ``application/x-www-form-urlencoded`` else.
    media_type: str | None = None


@attrs.frozen
class Depends:
    """A value made by ``dependency``, called with its own typed parameters.

    ``dependency`` may be a function, a coroutine function, a generator or
    an async generator. A generator's code after its ``yield`` runs once the
    response has been sent, or once the handler has failed (the exception is
    thrown in at the ``yield``), or once the client has left. A plain
    ``def`` runs in a worker thread. ``Depends()`` alone makes the annotated
    class the provider: its ``__init__`` parameters are read as a
    provider's (``pager: Annotated[Pager, Depends()]``).

    Attributes:
        dependency: The provider.
        use_cache: Reuse the value within one request when several
            parameters (of the handler or of other providers) depend on the
            same provider.
    """

    dependency: Callable[..., Any] | None = None
    use_cache: bool = attrs.field(default=True, kw_only=True)


@attrs.frozen
class FromState:
    """A value of the lifespan state (``request.state``), with its type.

    ``db: Annotated[Database, FromState()]`` passes ``request.state.db``;
    ``FromState("database")`` names another key. When the annotation is a
    class, the value is checked to be an instance of it.

    Error handling:
        A missing key, or a value of another type, is a server error (500):
        the application, not the client, is wrong.
    """

    key: str | None = None
