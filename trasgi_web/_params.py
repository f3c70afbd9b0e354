"""Where each handler parameter comes from, worked out once per route.

:func:`read_signature` reads a handler's (or a provider's) signature when the
route is defined and sorts every parameter into one kind: the connection, a
path, query, header or cookie value, the body, a dependency or a lifespan
state value. What a request then does is a loop over prepared
:class:`~trasgi_web._signature.Value` objects: a lookup and one msgspec
conversion each, with no introspection.

Error handling:
    ``TypeError`` at definition for a parameter nothing can supply: one
    without an annotation that is neither the connection nor a path
    parameter, two bodies, a body on a websocket, a type msgspec cannot
    convert.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any

import msgspec

from ._connection import HTTPConnection
from ._convertors import Converter, PathConverter, StringConverter
from ._markers import Depends, FromState, Header, Param, Source
from ._models import body_decoder, is_model
from ._signature import (
    REQUIRED,
    BodyParam,
    DependencyParam,
    Kind,
    Signature,
    StateParam,
    Value,
)


def call_kind(func: Any) -> Kind:
    """How ``func`` is called: awaited, in a thread, or stepped as a generator."""
    target = inspect.unwrap(func)
    call = getattr(target, "__call__", None)  # noqa: B004
    if inspect.isasyncgenfunction(target):
        return Kind.ASYNC_GENERATOR
    if inspect.isgeneratorfunction(target):
        return Kind.GENERATOR
    if inspect.iscoroutinefunction(target) or (
        not inspect.isfunction(target) and inspect.iscoroutinefunction(call)
    ):
        return Kind.ASYNC
    return Kind.SYNC


def read_signature(
    func: Callable[..., Any],
    path: str,
    path_converters: Mapping[str, Converter],
    *,
    body_allowed: bool = True,
    is_provider: bool = False,
) -> Signature:
    """Sort ``func``'s parameters by source; see the module docstring."""
    where = f"{_name(func)} of {path!r}"
    parameters = _parameters(func, where)
    sorter = _Sorter(where, path_converters, body_allowed, is_provider)
    for index, parameter in enumerate(parameters):
        sorter.add(parameter, first=index == 0)
    kind = call_kind(func)
    if not is_provider and kind in (Kind.ASYNC_GENERATOR, Kind.GENERATOR):
        raise TypeError(f"handler {where} is a generator; only providers may yield")
    return sorter.signature(func, kind, _return_type(func))


def _parameters(func: Callable[..., Any], where: str) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(func, eval_str=True)
    except NameError as exc:
        raise TypeError(f"the annotations of {where} do not resolve: {exc}") from None
    return list(signature.parameters.values())


def _return_type(func: Callable[..., Any]) -> Any:
    returns = inspect.signature(func, eval_str=True).return_annotation
    return None if returns is inspect.Signature.empty else returns


_POSITIONAL = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
)


class _Sorter:
    """Sorts parameters one by one; collects them for a :class:`Signature`."""

    def __init__(
        self,
        where: str,
        path_converters: Mapping[str, Converter],
        body_allowed: bool,
        is_provider: bool,
    ) -> None:
        self.where = where
        self.path_converters = path_converters
        self.body_allowed = body_allowed
        self.is_provider = is_provider
        self.connection: str | None = None
        self.connection_positional = False
        self.values: list[Value] = []
        self.bodies: list[BodyParam] = []
        self.dependencies: list[DependencyParam] = []
        self.states: list[StateParam] = []
        self.path_names: list[str] = []
        self.takes_kwargs = False

    def signature(
        self, func: Callable[..., Any], kind: Kind, returns: Any
    ) -> Signature:
        return Signature(
            func=func,
            kind=kind,
            connection=self.connection,
            connection_positional=self.connection_positional,
            values=tuple(self.values),
            body=self.bodies[0] if self.bodies else None,
            dependencies=tuple(self.dependencies),
            states=tuple(self.states),
            path_names=tuple(self.path_names),
            takes_kwargs=self.takes_kwargs,
            returns=returns,
        )

    def add(self, parameter: inspect.Parameter, *, first: bool) -> None:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            self.takes_kwargs = True
            return
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return
        annotation, markers = _split(parameter.annotation)
        if self._is_connection(parameter, annotation, first=first):
            self.connection = parameter.name
            self.connection_positional = (
                parameter.kind is inspect.Parameter.POSITIONAL_ONLY
            )
            return
        marker = _the_marker(markers, self.where, parameter.name)
        if isinstance(marker, Depends):
            self._add_dependency(parameter, _provider_of(marker, annotation))
        elif isinstance(marker, FromState):
            self.states.append(
                StateParam(parameter.name, marker.key or parameter.name, annotation)
            )
        elif parameter.name in self.path_converters and marker is None:
            self._add_path(parameter, annotation, None)
        elif annotation is inspect.Parameter.empty:
            raise TypeError(
                f"parameter {parameter.name!r} of {self.where} has no annotation "
                "and is neither the request nor a path parameter: annotate it "
                "(int, str, a model...) or mark it with Query(), Header(), "
                "Cookie(), Body() or Depends()"
            )
        else:
            self._add_typed(parameter, annotation, marker)

    def _is_connection(
        self, parameter: inspect.Parameter, annotation: Any, *, first: bool
    ) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
            return True
        unannotated = annotation is inspect.Parameter.empty or annotation is Any
        return (
            first
            and unannotated
            and parameter.kind in _POSITIONAL
            and parameter.name not in self.path_converters
        )

    def _add_dependency(self, parameter: inspect.Parameter, marker: Depends) -> None:
        func = marker.dependency
        if func is None:  # pragma: no cover - _provider_of gave it one
            raise TypeError("Depends() has no provider")
        provider = read_signature(
            func,
            self.where,
            self.path_converters,
            body_allowed=self.body_allowed,
            is_provider=True,
        )
        self.dependencies.append(DependencyParam(parameter.name, marker, provider))

    def _add_typed(
        self, parameter: inspect.Parameter, annotation: Any, marker: Param | None
    ) -> None:
        source = marker.source if marker is not None else _default_source(annotation)
        if source is Source.PATH or parameter.name in self.path_converters:
            self._add_path(parameter, annotation, marker)
        elif source in (Source.BODY, Source.FORM):
            self._add_body(parameter, annotation, source, marker)
        else:
            self.values.append(
                _value(parameter, annotation, source, marker, self.where)
            )

    def _add_path(
        self, parameter: inspect.Parameter, annotation: Any, marker: Param | None
    ) -> None:
        key = parameter.name
        if key not in self.path_converters:
            raise TypeError(
                f"parameter {key!r} of {self.where} is marked Path() but the "
                "pattern has no such parameter"
            )
        self.path_names.append(key)
        converter = self.path_converters[key]
        # A typed converter ({id:int}) already made the value; a text one
        # ({id}) leaves it to the annotation, as a query value would be.
        text = isinstance(converter, StringConverter | PathConverter)
        wants_type = annotation not in (inspect.Parameter.empty, str, Any)
        if marker is None and not (text and wants_type):
            return
        value = _value(parameter, annotation, Source.PATH, marker, self.where)
        self.values.append(value)

    def _add_body(
        self,
        parameter: inspect.Parameter,
        annotation: Any,
        source: Source,
        marker: Param | None,
    ) -> None:
        if not self.body_allowed:
            raise TypeError(
                f"parameter {parameter.name!r} of {self.where} reads a body, "
                "which a websocket does not have"
            )
        if self.bodies:
            raise TypeError(
                f"{self.where} reads the body twice ({self.bodies[0].name!r} and "
                f"{parameter.name!r}); gather the fields in one model"
            )
        if source is Source.FORM and not is_model(annotation):
            raise TypeError(
                f"parameter {parameter.name!r} of {self.where}: Form() reads a "
                "model (a dataclass, an attrs class, a TypedDict, a Struct...) "
                "whose fields are the form's"
            )
        try:
            decoder = body_decoder(annotation)
        except TypeError as exc:
            raise TypeError(
                f"parameter {parameter.name!r} of {self.where}: {exc}"
            ) from None
        default = _default(parameter)
        self.bodies.append(
            BodyParam(parameter.name, annotation, source, default, marker, decoder)
        )


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """The type and the metadata of a (possibly ``Annotated``) annotation."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        return base, metadata
    return annotation, []


_MARKERS = (Param, Depends, FromState)


def _the_marker(markers: list[Any], where: str, name: str) -> Any:
    found = [marker for marker in markers if isinstance(marker, _MARKERS)]
    if len(found) > 1:
        raise TypeError(f"parameter {name!r} of {where} has more than one source")
    return found[0] if found else None


def _provider_of(marker: Depends, annotation: Any) -> Depends:
    """``Depends()`` without a provider: the annotated class is the provider."""
    if marker.dependency is not None:
        return marker
    if not isinstance(annotation, type):
        raise TypeError(
            f"Depends() without a provider needs a class, not {annotation!r}"
        )
    return Depends(annotation, use_cache=marker.use_cache)


def _default_source(annotation: Any) -> Source:
    """A model (or an optional one) is the body; anything else the query."""
    if any(is_model(member) for member in _members(annotation)):
        return Source.BODY
    return Source.QUERY


def _default(parameter: inspect.Parameter) -> Any:
    empty = parameter.default is inspect.Parameter.empty
    return REQUIRED if empty else parameter.default


def _value(
    parameter: inspect.Parameter,
    annotation: Any,
    source: Source,
    marker: Param | None,
    where: str,
) -> Value:
    if annotation is inspect.Parameter.empty:
        annotation = str
    many = _is_list(annotation)
    target = annotation
    if marker is not None and marker.constraints():
        target = _constrained(annotation, marker, many)
    _check_convertible(target, parameter.name, where)
    return Value(
        name=parameter.name,
        key=_key(parameter.name, source, marker),
        source=source,
        annotation=annotation,
        target=target,
        many=many,
        default=_default(parameter),
        marker=marker,
    )


def _is_list(annotation: Any) -> bool:
    for member in _members(annotation):
        if typing.get_origin(member) in (list, tuple, set, frozenset):
            return True
    return False


def _members(annotation: Any) -> Collection[Any]:
    """The members of a union (``int | None``), or the annotation alone."""
    args = typing.get_args(annotation)
    if args and typing.get_origin(annotation) in (typing.Union, _UnionType):
        return args
    return (annotation,)


_UnionType = type(int | None)


def _constrained(annotation: Any, marker: Param, many: bool) -> Any:
    """``annotation`` with the marker's constraints, as msgspec reads them."""
    meta = msgspec.Meta(**marker.constraints())
    if many:
        # Length limits count the items; the rest apply to each item.
        return Annotated[annotation, meta]
    members = [member for member in _members(annotation) if member is not type(None)]
    if len(members) == 1 and len(_members(annotation)) == 2:
        return Annotated[members[0], meta] | None
    return Annotated[annotation, meta]


def _check_convertible(target: Any, name: str, where: str) -> None:
    """Refuse a type msgspec would only convert with a hook of ours."""
    try:
        info = msgspec.inspect.type_info(target)
    except TypeError as exc:
        raise TypeError(f"parameter {name!r} of {where}: {exc}") from None
    custom = _custom_class(info)
    if custom is not None:
        raise TypeError(
            f"parameter {name!r} of {where}: {custom.__name__} cannot be read "
            "from text; use str, int, float, bool, an enum, a date, a UUID or "
            "a list of those, or mark it with Depends()"
        )


def _custom_class(info: Any) -> type | None:
    if isinstance(info, msgspec.inspect.CustomType):
        return info.cls
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            found = _custom_class(member)
            if found is not None:
                return found
    item = getattr(info, "item_type", None)
    return None if item is None else _custom_class(item)


def _key(name: str, source: Source, marker: Param | None) -> str:
    if marker is not None and marker.alias is not None:
        key = marker.alias
    elif source is Source.HEADER and (
        not isinstance(marker, Header) or marker.convert_underscores
    ):
        key = name.replace("_", "-")
    else:
        key = name
    return key.lower() if source is Source.HEADER else key


def _name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or repr(func))
