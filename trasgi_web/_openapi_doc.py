"""The OpenAPI document's options: the application's, and each route's."""

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


@attrs.frozen(kw_only=True)
class OpenAPIConfig:
    """What the application's OpenAPI document says of it, and where it is served.

    Attributes:
        title: The API's name.
        version: The API's version (not OpenAPI's).
        description: Longer text for the top of the docs page.
        openapi_url: Where the JSON document is served; ``None`` for nowhere.
        docs_url: Where the Swagger UI page is served; ``None`` for nowhere.
        swagger_js_url: The Swagger UI script; point it at a copy served
            by the application (``StaticFiles``) to work without a CDN.
        swagger_css_url: The Swagger UI style sheet, likewise.
        security_schemes: ``components.securitySchemes``, by name.
        servers: The ``servers`` list, as OpenAPI spells it.
    """

    title: str = "trasgi_web"
    version: str = "0.1.0"
    description: str | None = None
    openapi_url: str | None = "/openapi.json"
    docs_url: str | None = "/docs"
    swagger_js_url: str = (
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
    )
    swagger_css_url: str = (
        "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
    )
    security_schemes: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    servers: list[Mapping[str, Any]] = attrs.field(factory=list)
