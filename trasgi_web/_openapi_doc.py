"""What a route says about itself in the OpenAPI document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import attrs


class DocOptions(TypedDict, total=False):
    """The keyword arguments of a route decorator that document the operation.

    Attributes:
        tags: Groups for the docs page (``["notes"]``).
        summary: One line; the first line of the docstring by default.
        description: Longer text; the rest of the docstring by default.
        responses: Other answers: a status to a description, or to the
            model its body holds (``{404: "No such note"}``).
        include_in_schema: ``False`` leaves the route out of the document.
        deprecated: Marks the operation deprecated.
        operation_id: The ``operationId``; the route's name by default.
        security: Security requirements, as ``[{"bearer": []}]``, naming
            schemes of :class:`~trasgi_web.OpenAPIConfig`.
    """

    tags: Sequence[str]
    summary: str
    description: str
    responses: Mapping[int, Any]
    include_in_schema: bool
    deprecated: bool
    operation_id: str
    security: Sequence[Mapping[str, Sequence[str]]]


@attrs.frozen(kw_only=True)
class OperationDoc:
    """A route's documentation options (see :class:`DocOptions`)."""

    tags: Sequence[str] = ()
    summary: str | None = None
    description: str | None = None
    responses: Mapping[int, Any] = attrs.field(factory=dict)
    include_in_schema: bool = True
    deprecated: bool = False
    operation_id: str | None = None
    security: Sequence[Mapping[str, Sequence[str]]] | None = None
