"""Validation errors: what msgspec reports, in the shape clients parse.

A request whose parameters or body do not fit the handler's types raises
:class:`RequestValidationError`; its default handler answers ``422`` with
``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``, FastAPI's
shape, which many clients already read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import msgspec

from ._request import Request
from ._responses import Response

Loc = tuple[str | int, ...]
ErrorDetail = dict[str, Any]

# msgspec ends a nested error with " - at `$.items[0].name`".
_AT = re.compile(r" - at `\$(.*)`$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class RequestValidationError(Exception):
    """The request did not fit the handler's parameters; one entry per field.

    Attributes:
        errors: ``{"loc", "msg", "type"}`` dicts, in parameter order.
    """

    def __init__(self, errors: Sequence[ErrorDetail]) -> None:
        super().__init__(errors)
        self.errors = list(errors)


def missing(loc: Loc) -> ErrorDetail:
    """The error for a required value that the request does not have."""
    return {"loc": list(loc), "msg": "Field required", "type": "missing"}


def from_msgspec(loc: Loc, error: msgspec.ValidationError) -> ErrorDetail:
    """One error entry from msgspec's message, its ``$.a[0]`` path in ``loc``.

    The ``type`` is ``missing`` for an absent required field, ``type_error``
    for a value of the wrong type and ``value_error`` for a value that is
    out of its constraints.
    """
    message = str(error)
    found = _AT.search(message)
    if found is not None:
        message = message[: found.start()]
        loc = (*loc, *_steps(found.group(1)))
    if message.startswith("Object missing required field `"):
        field = message.split("`")[1]
        return missing((*loc, field))
    kind = "type_error" if ", got `" in message else "value_error"
    return {"loc": list(loc), "msg": message, "type": kind}


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in _STEP.findall(path)]


def from_pydantic(loc: Loc, errors: Sequence[Any]) -> list[ErrorDetail]:
    """Error entries from a pydantic ``ValidationError.errors()`` list."""
    return [
        {"loc": [*loc, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in errors
    ]


async def request_validation_handler(
    request: Request, exc: RequestValidationError
) -> Response:
    """The default answer to :class:`RequestValidationError`: 422, JSON."""
    return Response(
        msgspec.json.encode({"detail": exc.errors}),
        422,
        media_type="application/json",
    )
