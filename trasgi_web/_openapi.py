"""The OpenAPI 3.1 document, made from the route table.

Everything comes from what the routes already hold: their patterns and
methods, their plans (parameters, bodies, providers' parameters), their
handlers' return annotations and docstrings, and the documentation options
of the route decorators. msgspec writes the JSON Schema of every type in
one pass, sharing the components the types have in common.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from typing import Any

import msgspec

from ._convertors import FloatConverter, IntegerConverter, UUIDConverter
from ._markers import Source
from ._models import field_types, is_model, is_pydantic
from ._openapi_doc import OpenAPIConfig
from ._responses import Response
from ._routes import Mount, Route
from ._signature import REQUIRED, BodyParam, Value
from ._uploads import UploadFile

_REF = "#/components/schemas/{name}"


_VALIDATION_SCHEMAS: dict[str, Any] = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "properties": {
            "loc": {
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
        "required": ["loc", "msg", "type"],
    },
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "type": "array",
                "items": {"$ref": _REF.format(name="ValidationError")},
            }
        },
        "required": ["detail"],
    },
}


def openapi_document(routes: list[Any], config: OpenAPIConfig) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (mounted routers included)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for prefix, route in _http_routes(routes, ""):
        if not route.doc.include_in_schema:
            continue
        item = paths.setdefault(_template(prefix + route.path), {})
        for method in sorted(route.methods):
            item[method.lower()] = _operation(route, method, schemas, len(item))
    info: dict[str, Any] = {"title": config.title, "version": config.version}
    if config.description:
        info["description"] = config.description
    document: dict[str, Any] = {"openapi": "3.1.0", "info": info, "paths": paths}
    if config.servers:
        document["servers"] = list(config.servers)
    components = schemas.resolve()
    if config.security_schemes:
        components["securitySchemes"] = dict(config.security_schemes)
    if components:
        document["components"] = components
    return document


def _http_routes(routes: list[Any], prefix: str) -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Route):
            yield prefix, route
        elif isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if isinstance(inner, list):
                yield from _http_routes(inner, prefix + route.path)


def _template(path: str) -> str:
    """``/items/{item_id:int}`` as OpenAPI writes it: ``/items/{item_id}``."""
    out, depth, skipping = [], 0, False
    for char in path:
        if char == "{":
            depth, skipping = depth + 1, False
        elif char == "}":
            depth, skipping = depth - 1, False
        elif char == ":" and depth:
            skipping = True
            continue
        if not skipping:
            out.append(char)
    return "".join(out)


class _Schemas:
    """Types waiting for their schema; msgspec writes them all at once."""

    def __init__(self) -> None:
        self._types: list[Any] = []
        self._slots: list[tuple[dict[str, Any], str]] = []
        self._pydantic: dict[str, Any] = {}
        self._uses_errors = False

    def put(self, holder: dict[str, Any], key: str, tp: Any) -> bool:
        """Arrange for ``holder[key]`` to be ``tp``'s schema; False if it has none."""
        if is_pydantic(tp):
            self._pydantic[tp.__name__] = tp
            holder[key] = {"$ref": _REF.format(name=tp.__name__)}
            return True
        try:
            msgspec.json.schema(tp, schema_hook=_schema_hook)
        except (TypeError, ValueError, NotImplementedError):
            return False
        self._types.append(tp)
        self._slots.append((holder, key))
        return True

    def resolve(self) -> dict[str, Any]:
        """Fill every slot; the ``components`` object (empty when none)."""
        found, components = msgspec.json.schema_components(
            self._types, schema_hook=_schema_hook, ref_template=_REF
        )
        for (holder, key), schema in zip(self._slots, found, strict=True):
            holder[key] = {**schema, **holder.get(key, {})}
        schemas: dict[str, Any] = dict(components)
        for name, model in self._pydantic.items():
            schema = model.model_json_schema(
                ref_template=_REF.replace("{name}", "{model}")
            )
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
        if self._uses_errors:
            schemas.update(_VALIDATION_SCHEMAS)
        return {"schemas": schemas} if schemas else {}

    def need_validation_errors(self) -> None:
        """The document answers 422 somewhere: add the error schemas."""
        self._uses_errors = True


def _operation(
    route: Route, method: str, schemas: _Schemas, index: int
) -> dict[str, Any]:
    doc = route.doc
    summary, description = _docstring(route.endpoint)
    operation: dict[str, Any] = {
        "operationId": doc.operation_id or f"{route.name}_{method.lower()}",
        "summary": doc.summary or summary or route.name.replace("_", " ").title(),
    }
    if doc.operation_id and index:
        operation["operationId"] = f"{doc.operation_id}_{method.lower()}"
    if doc.description or description:
        operation["description"] = doc.description or description
    if doc.tags:
        operation["tags"] = list(doc.tags)
    if doc.deprecated:
        operation["deprecated"] = True
    if doc.security is not None:
        operation["security"] = [dict(item) for item in doc.security]
    operation["parameters"] = _parameters(route, schemas)
    if not operation["parameters"]:
        del operation["parameters"]
    body = _body(route)
    if body is not None:
        operation["requestBody"] = _request_body(body, schemas)
    operation["responses"] = _responses(route, schemas)
    return operation


def _docstring(func: Any) -> tuple[str | None, str | None]:
    text = inspect.getdoc(func)
    if not text:
        return None, None
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), rest.strip() or None


_CONVERTER_SCHEMAS: list[tuple[type, dict[str, Any]]] = [
    (IntegerConverter, {"type": "integer", "minimum": 0}),
    (FloatConverter, {"type": "number", "minimum": 0}),
    (UUIDConverter, {"type": "string", "format": "uuid"}),
]


def _parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    plan = route.plan
    values = plan.signature.all_values() if plan is not None else []
    typed_paths = {v.key for v in values if v.source is Source.PATH}
    found = [
        _path_parameter(name, converter)
        for name, converter in route.compiled.converters.items()
        if name not in typed_paths
    ]
    seen = set()
    for value in values:
        if (value.source, value.key) in seen:
            continue
        if value.marker is not None and not value.marker.include_in_schema:
            continue
        seen.add((value.source, value.key))
        found.append(_value_parameter(value, schemas))
    return found


def _path_parameter(name: str, converter: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for cls, known in _CONVERTER_SCHEMAS:
        if isinstance(converter, cls):
            schema = dict(known)
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _value_parameter(value: Value, schemas: _Schemas) -> dict[str, Any]:
    required = value.source is Source.PATH or value.default is REQUIRED
    parameter: dict[str, Any] = {
        "name": value.key,
        "in": value.source.value,
        "required": required,
    }
    marker = value.marker
    if marker is not None and marker.description:
        parameter["description"] = marker.description
    if marker is not None and marker.deprecated:
        parameter["deprecated"] = True
    if not required and value.default is not None:
        default = _json_or_none(value.default)
        if default is not None:
            parameter["schema"] = {"default": default}
    schemas.put(parameter, "schema", value.target)
    schemas.need_validation_errors()
    return parameter


def _json_or_none(value: Any) -> Any:
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return None


def _body(route: Route) -> BodyParam | None:
    if route.plan is None:
        return None
    bodies = route.plan.signature.all_bodies()
    return bodies[0] if bodies else None


def _request_body(body: BodyParam, schemas: _Schemas) -> dict[str, Any]:
    media_type = getattr(body.marker, "media_type", None) or _media_type(body)
    media: dict[str, Any] = {}
    schemas.put(media, "schema", body.annotation)
    schemas.need_validation_errors()
    return {
        "required": body.default is REQUIRED,
        "content": {media_type: media},
    }


def _media_type(body: BodyParam) -> str:
    if body.source is not Source.FORM:
        return "application/json"
    files = any(
        UploadFile in (tp, *typing.get_args(tp))
        for _, tp, _ in field_types(body.annotation).values()
    )
    return "multipart/form-data" if files else "application/x-www-form-urlencoded"


def _schema_hook(tp: Any) -> dict[str, Any]:
    """The schema of the types msgspec does not know: an uploaded file."""
    if tp is UploadFile:
        return {"type": "string", "format": "binary"}
    # msgspec's protocol for a schema hook: the type has no schema; the
    # caller leaves it out of the document.
    raise NotImplementedError(tp)


def _responses(route: Route, schemas: _Schemas) -> dict[str, Any]:
    status = str(route.status_code or 200)
    answer: dict[str, Any] = {"description": _phrase(int(status))}
    returns = _return_type(route)
    if returns is not None and status != "204":
        media: dict[str, Any] = {}
        kind = "text/plain" if returns is str else "application/json"
        if schemas.put(media, "schema", returns):
            answer["content"] = {kind: media}
    responses: dict[str, Any] = {status: answer}
    if route.plan is not None and (
        route.plan.signature.all_values() or _body(route) is not None
    ):
        responses["422"] = {
            "description": "Validation Error",
            "content": {
                "application/json": {
                    "schema": {"$ref": _REF.format(name="HTTPValidationError")}
                }
            },
        }
    for code, described in route.doc.responses.items():
        responses[str(code)] = _extra_response(code, described, schemas)
    return responses


def _extra_response(code: int, described: Any, schemas: _Schemas) -> dict[str, Any]:
    if isinstance(described, str):
        return {"description": described}
    media: dict[str, Any] = {}
    answer: dict[str, Any] = {"description": _phrase(code)}
    if schemas.put(media, "schema", described):
        answer["content"] = {"application/json": media}
    return answer


def _return_type(route: Route) -> Any:
    """The handler's declared result, if it is one the document can describe."""
    if route.plan is not None:
        returns = route.plan.signature.returns
    else:
        try:
            returns = typing.get_type_hints(route.endpoint).get("return")
        except (NameError, TypeError):
            return None
    if returns is None or returns is type(None):
        return None
    if isinstance(returns, type) and issubclass(returns, Response):
        return None
    if typing.get_origin(returns) is tuple or returns is typing.Any:
        return None  # (body, status) tuples, or anything: nothing to say
    if isinstance(returns, type) and returns is bytes:
        return None
    return returns if _describable(returns) else None


def _describable(tp: Any) -> bool:
    return (
        is_model(tp)
        or typing.get_origin(tp) is not None
        or tp
        in (
            str,
            int,
            float,
            bool,
            dict,
            list,
        )
    )


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Response"
