"""Models: the types read from a body and written as JSON, through msgspec.

msgspec decodes and validates dataclasses, attrs classes, ``TypedDict``
classes and its own ``Struct`` classes in one pass over the JSON, and writes their JSON
Schema. A pydantic model (when pydantic is installed) goes through pydantic's
own methods instead, found by duck typing so that pydantic stays optional.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import msgspec

from ._validation import ErrorDetail, Loc, from_msgspec, from_pydantic, missing


def is_pydantic(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic (v2) model class."""
    return isinstance(tp, type) and hasattr(tp, "model_validate_json")


def is_model(tp: Any) -> bool:
    """Whether a parameter of type ``tp`` is read from the body by default."""
    if not isinstance(tp, type):
        return False
    return (
        issubclass(tp, msgspec.Struct)
        or dataclasses.is_dataclass(tp)
        or attrs.has(tp)
        or typing.is_typeddict(tp)
        or is_pydantic(tp)
    )


def _encode_hook(value: Any) -> Any:
    dump: Callable[..., Any] | None = getattr(value, "model_dump", None)
    if dump is None:
        # msgspec's protocol for an encoding hook: NotImplementedError means
        # "no JSON form"; encode_json turns it into the TypeError it states.
        raise NotImplementedError(f"cannot encode {type(value).__name__} as JSON")
    return dump(mode="json")


# One encoder for every response: built once, it keeps its buffers.
_ENCODER = msgspec.json.Encoder(enc_hook=_encode_hook)


def encode_json(value: Any) -> bytes:
    """``value`` as JSON: models, lists, dicts, dates, UUIDs, enums...

    Error handling:
        ``TypeError`` for a value of a type that has no JSON form.
    """
    try:
        return _ENCODER.encode(value)
    except NotImplementedError as exc:
        raise TypeError(str(exc)) from None


def is_model_instance(value: Any) -> bool:
    """Whether ``value`` is an instance of a model class."""
    return is_model(type(value))


def field_types(tp: Any) -> dict[str, tuple[str, Any, bool]]:
    """A model's fields: attribute name to (wire name, type, required)."""
    info = msgspec.inspect.type_info(tp)
    fields = getattr(info, "fields", ())
    hints = typing.get_type_hints(tp, include_extras=True)
    return {
        field.name: (field.encode_name, hints.get(field.name, Any), field.required)
        for field in fields
    }


def _plain_defaults(tp: Any) -> list[tuple[str, Any]]:
    if not (isinstance(tp, type) and dataclasses.is_dataclass(tp)):
        return []
    return [
        (field.name, field.default)
        for field in dataclasses.fields(tp)
        if field.default is not dataclasses.MISSING
    ]


def _complete(value: Any, defaults: list[tuple[str, Any]]) -> Any:
    """A decoded dataclass with its absent fields' defaults set on it.

    msgspec leaves a field whose default is a plain value unset on the
    instance (the class attribute answers reads), and its encoder, which
    reads the instance, would then leave that field out of the JSON.
    """
    if defaults:
        fields = vars(value)
        for name, default in defaults:
            fields.setdefault(name, default)
    return value


class JSONBody:
    """Decodes a JSON body into ``tp``; every failing field reported.

    msgspec stops at the first error, which is what makes it fast. Only when
    a body fails is it read again, field by field, to list every error.
    """

    def __init__(self, tp: Any) -> None:
        self.type = tp
        self._decoder = msgspec.json.Decoder(tp)
        self._fields = field_types(tp) if is_model(tp) else {}
        self._defaults = _plain_defaults(tp)
        info = msgspec.inspect.type_info(tp)
        self._closed = bool(getattr(info, "forbid_unknown_fields", False))

    def decode(self, body: bytes, loc: Loc) -> tuple[Any, list[ErrorDetail]]:
        """The value, or the errors; ``ValueError`` for malformed JSON."""
        try:
            return _complete(self._decoder.decode(body), self._defaults), []
        except msgspec.ValidationError as exc:
            return None, self._all_errors(body, loc, exc)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None

    def _all_errors(
        self, body: bytes, loc: Loc, first: msgspec.ValidationError
    ) -> list[ErrorDetail]:
        data = msgspec.json.decode(body)
        errors: list[ErrorDetail] = []
        if isinstance(data, dict) and self._fields:
            errors = _field_errors(data, self._fields, loc)
            if self._closed:
                errors += _unknown_fields(data, self._fields, loc)
        # A failure no single field shows (a whole-object check, a wrong
        # top-level type) is reported as msgspec found it.
        return errors or [from_msgspec(loc, first)]


def _field_errors(
    data: Mapping[str, Any],
    fields: dict[str, tuple[str, Any, bool]],
    loc: Loc,
    *,
    strict: bool = True,
) -> list[ErrorDetail]:
    errors = []
    for wire, tp, required in fields.values():
        if wire not in data:
            if required:
                errors.append(missing((*loc, wire)))
            continue
        try:
            msgspec.convert(data[wire], tp, strict=strict)
        except msgspec.ValidationError as exc:
            errors.append(from_msgspec((*loc, wire), exc))
    return errors


def _unknown_fields(
    data: Mapping[str, Any], fields: dict[str, tuple[str, Any, bool]], loc: Loc
) -> list[ErrorDetail]:
    known = {wire for wire, _, _ in fields.values()}
    return [
        {"loc": [*loc, key], "msg": "Unknown field", "type": "value_error"}
        for key in data
        if key not in known
    ]


class PydanticBody:
    """Decodes a JSON body into a pydantic model with pydantic's own parser."""

    def __init__(self, tp: Any) -> None:
        self.type = tp
        from pydantic import ValidationError

        self._error = ValidationError

    def decode(self, body: bytes, loc: Loc) -> tuple[Any, list[ErrorDetail]]:
        """The model, or the errors; ``ValueError`` for malformed JSON."""
        try:
            return self.type.model_validate_json(body), []
        except self._error as exc:
            errors = exc.errors(include_url=False)
            if any(error["type"] == "json_invalid" for error in errors):
                raise ValueError(errors[0]["msg"]) from None
            return None, from_pydantic(loc, errors)


def body_decoder(tp: Any) -> JSONBody | PydanticBody:
    """The decoder for a body of type ``tp``."""
    return PydanticBody(tp) if is_pydantic(tp) else JSONBody(tp)


def convert_form(
    fields: Mapping[str, Any], tp: Any, loc: Loc
) -> tuple[Any, list[ErrorDetail]]:
    """A model from form fields, text converted to each field's type."""
    if is_pydantic(tp):
        from pydantic import ValidationError

        try:
            return tp.model_validate(fields), []
        except ValidationError as exc:
            return None, from_pydantic(loc, exc.errors(include_url=False))
    try:
        value = msgspec.convert(fields, tp, strict=False)
    except msgspec.ValidationError as exc:
        errors = _field_errors(fields, field_types(tp), loc, strict=False)
        return None, errors or [from_msgspec(loc, exc)]
    return _complete(value, _plain_defaults(tp)), []
