"""Access-log records, their formats, and the observer of finished responses.

A response that ends is described once, by an :class:`AccessRecord` (a
frozen value: who asked, what, and how it went). The record goes to one
:class:`ResponseObserver`, which writes the access line and feeds the metrics.

The line's format is compiled once, when the server starts, by
:func:`compile_format`: a template with named fields (``{client} {status}``)
becomes a positional :meth:`str.format` template plus one small function per
field, so a request costs a few calls and no parsing. ``json`` instead writes
one JSON object per line. Text fields are escaped with
:func:`~trasgi._observe.logs.escape`, so a client cannot forge lines or send
terminal escapes; JSON strings are escaped by the JSON encoder.
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import string
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import attrs

from trasgi._observe.logs import access_logger, escape, format_client

#: What a field gives: text, a number, or None when the request has no such
#: thing (no client address, no User-Agent header).
Value = str | int | float | None

#: The format value that selects JSON lines.
JSON_FORMAT = "json"


class RequestLine(Protocol):
    """What the access record reads of a request head (an ``h11.Request`` has it).

    Attributes:
        method: The request method, as received.
        target: The request target, as received.
        http_version: The HTTP version, such as ``b"1.1"``.
        headers: The header fields, names in lower case.
    """

    @property
    def method(self) -> bytes: ...
    @property
    def target(self) -> bytes: ...
    @property
    def http_version(self) -> bytes: ...
    @property
    def headers(self) -> Sequence[tuple[bytes, bytes]]: ...


@attrs.frozen
class AccessRecord:
    """One finished response, as the access log and the metrics see it.

    Attributes:
        client: The client's address and port; None when unknown (a Unix socket).
        method: The request method, as received.
        target: The request target (path and query), as received.
        http_version: The request's HTTP version, such as ``b"1.1"``.
        status: The response status code.
        body_bytes: Bytes of response body sent.
        duration: Seconds from the request head to the end of the response.
        headers: The request's header fields, names in lower case (h11's form).
        finished: When the response ended, in seconds since the epoch.
    """

    client: tuple[str, int] | None
    method: bytes
    target: bytes
    http_version: bytes
    status: int
    body_bytes: int
    duration: float
    headers: Sequence[tuple[bytes, bytes]] = ()
    finished: float = attrs.field(factory=time.time)

    @classmethod
    def of(
        cls,
        request: RequestLine,
        client: tuple[str, int] | None,
        status: int,
        body_bytes: int,
        started: float,
    ) -> AccessRecord:
        """Describe the response to ``request``, which began at ``started``.

        ``started`` is a :func:`time.perf_counter` reading.
        """
        return cls(
            client,
            request.method,
            request.target,
            request.http_version,
            status,
            body_bytes,
            time.perf_counter() - started,
            request.headers,
        )

    def header(self, name: bytes) -> str | None:
        """The first value of the request header ``name`` (lower case), if any."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


def _client(record: AccessRecord) -> str | None:
    return None if record.client is None else format_client(record.client)


def _client_host(record: AccessRecord) -> str | None:
    return None if record.client is None else record.client[0]


def _request_line(record: AccessRecord) -> str:
    method, target, version = record.method, record.target, record.http_version
    return f"{method.decode('latin-1')} {target.decode('latin-1')} HTTP/" + (
        version.decode("latin-1")
    )


def _time(record: AccessRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.finished, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


#: Every field a format may name: what it shows, and how to get it.
FIELDS: dict[str, tuple[str, Callable[[AccessRecord], Value]]] = {
    "client": (
        "the client's address and port, 127.0.0.1:51234 or [::1]:51234",
        _client,
    ),
    "client_host": ("the client's address alone", _client_host),
    "method": ("the request method", lambda r: r.method.decode("latin-1")),
    "target": (
        "the request target as sent: path and query",
        lambda r: r.target.decode("latin-1"),
    ),
    "path": (
        "the target up to the first ?",
        lambda r: r.target.partition(b"?")[0].decode("latin-1"),
    ),
    "query": (
        "the target after the first ? (empty when none)",
        lambda r: r.target.partition(b"?")[2].decode("latin-1"),
    ),
    "http_version": (
        "the request's HTTP version, 1.1",
        lambda r: r.http_version.decode("latin-1"),
    ),
    "request_line": ("METHOD TARGET HTTP/VERSION", _request_line),
    "status": ("the response status code", lambda r: r.status),
    "bytes": ("bytes of response body sent", lambda r: r.body_bytes),
    "duration_ms": (
        "milliseconds from the request head to the end of the response",
        lambda r: r.duration * 1000,
    ),
    "user_agent": ("the User-Agent request header", lambda r: r.header(b"user-agent")),
    "referer": ("the Referer request header", lambda r: r.header(b"referer")),
    "time": (
        "when the response ended, ISO 8601 in UTC with milliseconds",
        _time,
    ),
}

#: The fields of a JSON line: every field but the request line, which only
#: repeats method, target and http_version.
JSON_FIELDS = tuple(name for name in FIELDS if name != "request_line")


def as_text(value: Value) -> str:
    """Show a field's value in a text line: escaped text, ``-`` when absent.

    Durations keep one decimal (``1.5``), as the default line always had.
    """
    if value is None:
        return "-"
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def as_json(value: Value) -> Value:
    """A field's value for JSON: numbers stay numbers, durations to 1 µs."""
    return round(value, 3) if isinstance(value, float) else value


class AccessFormat(Protocol):
    """A compiled access-line format."""

    def __call__(self, record: AccessRecord) -> str:
        """The line for ``record``."""

    def colored(self, record: AccessRecord) -> str:
        """The line for ``record``, status code in colour (ANSI escapes)."""


#: ANSI colours for status codes by class: success green, redirect cyan,
#: client error yellow, server error red.
_STATUS_COLORS = {1: "32", 2: "32", 3: "36", 4: "33", 5: "31"}


def color_status(status: int) -> str:
    """``status`` wrapped in the ANSI colour of its class."""
    code = _STATUS_COLORS.get(status // 100, "0")
    return f"\x1b[{code}m{status}\x1b[0m"


Getter = Callable[[AccessRecord], Value]


@attrs.frozen
class TextFormat:
    """A template with named fields, compiled to a positional one.

    Attributes:
        template: The :meth:`str.format` template with positional fields.
        fields: The field names, in the template's order.
    """

    template: str
    fields: tuple[str, ...]
    _getters: tuple[Getter, ...] = attrs.field(init=False, repr=False, eq=False)

    @_getters.default
    def _look_up_getters(self) -> tuple[Getter, ...]:
        return tuple(FIELDS[name][1] for name in self.fields)

    def __call__(self, record: AccessRecord) -> str:
        return self.template.format(*[as_text(get(record)) for get in self._getters])

    def colored(self, record: AccessRecord) -> str:
        return self.template.format(
            *[
                color_status(record.status)
                if name == "status"
                else as_text(get(record))
                for name, get in zip(self.fields, self._getters, strict=True)
            ]
        )


@attrs.frozen
class JsonFormat:
    """One JSON object per line, with every field but ``request_line``."""

    def __call__(self, record: AccessRecord) -> str:
        data = {name: as_json(FIELDS[name][1](record)) for name in JSON_FIELDS}
        # ensure_ascii: anything outside ASCII, control characters included,
        # is written as a \\u escape (RFC 8259 section 7), so a line is a line.
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"))

    def colored(self, record: AccessRecord) -> str:
        return self(record)  # colour codes would make the line invalid JSON


class FormatError(ValueError):
    """An access-log format names an unknown field or is malformed."""


@functools.lru_cache(maxsize=32)
def compile_format(text: str) -> AccessFormat:
    """Compile an access-log format: ``json``, or a template with named fields.

    Braces are doubled to be written literally (``{{``), as in
    :meth:`str.format`; fields take no conversion or format spec. Compiled
    formats are cached: validating a :class:`~trasgi.Config` and starting a
    server compile a format once.

    Error handling:
        Raises :class:`FormatError` naming the unknown field (with the list
        of known ones) or what is malformed.
    """
    if text == JSON_FORMAT:
        return JsonFormat()
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise FormatError(f"is malformed: {exc}") from None
    template: list[str] = []
    fields: list[str] = []
    for literal, name, spec, conversion in parts:
        template.append(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        if name not in FIELDS:
            raise FormatError(
                f"has an unknown field {{{name}}}; known fields: {', '.join(FIELDS)}"
            )
        if spec or conversion:
            raise FormatError(f"field {{{name}}} takes no conversion or format spec")
        template.append("{}")
        fields.append(name)
    return TextFormat("".join(template), tuple(fields))


class AccessLine:
    """A log message that formats its record only when a handler writes it.

    Logged as the message of a ``trasgi.access`` record; a handler that
    colours (the command line's, on a terminal) asks for :meth:`colored`.
    """

    __slots__ = ("format", "record")

    def __init__(self, format: AccessFormat, record: AccessRecord) -> None:
        self.format = format
        self.record = record

    def __str__(self) -> str:
        return self.format(self.record)

    def colored(self) -> str:
        return self.format.colored(self.record)


class Observer(Protocol):
    """What a connection tells about its finished responses."""

    def enabled(self) -> bool:
        """Whether a record would be used now; when not, none is built."""

    def on_response(self, record: AccessRecord) -> None:
        """Take note of one finished response."""


class ResponseSink(Protocol):
    """Something that counts responses: the metrics."""

    def on_response(self, record: AccessRecord) -> None:
        """Take note of one finished response."""


@attrs.frozen
class ResponseObserver:
    """Everything that watches finished responses: the access log, the metrics.

    The connection asks :meth:`enabled` before it builds a record, so a
    server with no access log and no metrics builds none.
    """

    format: AccessFormat
    sinks: tuple[ResponseSink, ...] = ()

    @classmethod
    def for_format(
        cls, text: str, sinks: tuple[ResponseSink, ...] = ()
    ) -> ResponseObserver:
        """Compile ``text`` (a validated ``access_log_format``) into an observer."""
        return cls(compile_format(text), sinks)

    def enabled(self) -> bool:
        """Whether anything would use a record now."""
        return bool(self.sinks) or access_logger.isEnabledFor(logging.INFO)

    def on_response(self, record: AccessRecord) -> None:
        """Log the access line (when the logger is on) and count the response."""
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(AccessLine(self.format, record))
        for sink in self.sinks:
            sink.on_response(record)


@attrs.frozen
class SilentObserver:
    """An observer that watches nothing: for the metrics port's own requests."""

    def enabled(self) -> bool:
        return False

    def on_response(self, record: AccessRecord) -> None:
        """Ignore the response."""
