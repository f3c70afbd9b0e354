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
import enum
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

#: A network address: host and port.
Address = tuple[str, int]


class Completion(enum.Enum):
    """How a response ended: whole, or cut short (and why)."""

    COMPLETE = "complete"
    #: The application raised, or returned before the end of its response.
    APP_FAILED = "application failed"
    #: The client left (or stopped reading) before the end of the response.
    CLIENT_LEFT = "client left"
    #: The request body broke HTTP or a limit after the response started
    #: (the reason says how).
    REQUEST_FAILED = "request failed"
    #: Still running at the graceful shutdown's deadline: cancelled.
    DEADLINE = "shutdown deadline"


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
class AccessNote:
    """What an access line says besides the request, status and bytes.

    Attributes:
        client: Who a trusted proxy named as the client; None for the peer.
        reason: Why the server answered with an error of its own.
        completion: Whether the response was whole, or cut short and why.
    """

    client: Address | None = None
    reason: str | None = None
    completion: Completion = Completion.COMPLETE


#: The note of most responses: the peer is the client, the response whole.
PLAIN = AccessNote()


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
        peer: The connection's peer: the client itself, or the proxy that
            forwarded its request (``client`` is then who the proxy named).
        reason: Why the server answered with an error of its own (a refusal
            such as 431, or its 500); None for the application's responses.
        completion: Whether the response was whole, or cut short and why.
    """

    client: Address | None
    method: bytes
    target: bytes
    http_version: bytes
    status: int
    body_bytes: int
    duration: float
    headers: Sequence[tuple[bytes, bytes]] = ()
    finished: float = attrs.field(factory=time.time)
    peer: Address | None = None
    reason: str | None = None
    completion: Completion = Completion.COMPLETE

    @classmethod
    def of(
        cls,
        request: RequestLine,
        client: Address | None,
        status: int,
        body_bytes: int,
        started: float,
        note: AccessNote = PLAIN,
    ) -> AccessRecord:
        """Describe the response to ``request``, which began at ``started``.

        ``client`` is the connection's peer (the note may name another
        client); ``started`` is a :func:`time.perf_counter` reading.
        """
        return cls(
            note.client or client,
            request.method,
            request.target,
            request.http_version,
            status,
            body_bytes,
            time.perf_counter() - started,
            request.headers,
            peer=client,
            reason=note.reason,
            completion=note.completion,
        )

    def header(self, name: bytes) -> str | None:
        """The first value of the request header ``name`` (lower case), if any."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None


@attrs.frozen
class NoRequestLine:
    """The request line of a request refused before its head could be parsed.

    Its method and target are empty, which the fields show as absent.
    """

    http_version: bytes = b"1.1"
    method: bytes = b""
    target: bytes = b""
    headers: Sequence[tuple[bytes, bytes]] = ()


@attrs.frozen
class SessionRecord:
    """One WebSocket session that ended, as the access log sees it.

    The handshake is an :class:`AccessRecord` of its own (status 101, or the
    refusal); this record comes when the session is over.

    Attributes:
        client: The client's address (as forwarded by a trusted proxy).
        peer: The connection's peer.
        target: The opening request's target.
        duration: Seconds from the opening request to the end of the session.
        bytes_in: Message bytes received from the client (text as UTF-8).
        bytes_out: Message bytes the application sent.
        close_code: The close code that ended the session (RFC 6455 section
            7.4); 1006 when it ended without a closing handshake.
        finished: When the session ended, in seconds since the epoch.
    """

    client: Address | None
    peer: Address | None
    target: bytes
    duration: float
    bytes_in: int
    bytes_out: int
    close_code: int
    finished: float = attrs.field(factory=time.time)

    def as_dict(self) -> dict[str, Value]:
        """The session's fields, for a JSON line."""
        return {
            "event": "websocket_closed",
            "client": None if self.client is None else format_client(self.client),
            "peer": None if self.peer is None else format_client(self.peer),
            "target": self.target.decode("latin-1"),
            "close_code": self.close_code,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "duration_ms": round(self.duration * 1000, 3),
            "time": _iso_time(self.finished),
        }

    def as_text(self) -> str:
        """The session as a text line, after the shape of the default line."""
        client = "-" if self.client is None else format_client(self.client)
        return (
            f'{client} - "WEBSOCKET {escape(self.target)}" closed '
            f"{self.close_code} in={self.bytes_in} out={self.bytes_out} "
            f"{self.duration * 1000:.1f}ms"
        )


def _client(record: AccessRecord) -> str | None:
    return None if record.client is None else format_client(record.client)


def _peer(record: AccessRecord) -> str | None:
    return None if record.peer is None else format_client(record.peer)


def _text_or_none(data: bytes) -> str | None:
    return data.decode("latin-1") or None


def _client_host(record: AccessRecord) -> str | None:
    return None if record.client is None else record.client[0]


def _request_line(record: AccessRecord) -> str:
    method, target, version = record.method, record.target, record.http_version
    if not method:
        return "-"  # refused before its request line was understood
    return f"{method.decode('latin-1')} {target.decode('latin-1')} HTTP/" + (
        version.decode("latin-1")
    )


def _iso_time(timestamp: float) -> str:
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _time(record: AccessRecord) -> str:
    return _iso_time(record.finished)


_HEX = frozenset("0123456789abcdef")


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """The trace id and parent span id of a W3C ``traceparent`` value, if valid.

    W3C Trace Context, section 3.2: ``version-traceid-parentid-flags`` in
    lower-case hex; version ``ff`` and all-zero ids are invalid; a version
    above ``00`` may append fields after the flags. Anything else gives None.
    """
    parts = value.strip().split("-")
    if len(parts) < 4:
        return None
    version, trace_id, span_id, flags = parts[:4]
    if (
        len(version) != 2
        or len(trace_id) != 32
        or len(span_id) != 16
        or len(flags) != 2
        or not _HEX.issuperset(version + trace_id + span_id + flags)
        or version == "ff"
        or (version == "00" and len(parts) != 4)
        or trace_id == "0" * 32
        or span_id == "0" * 16
    ):
        return None
    return trace_id, span_id


def _trace_part(record: AccessRecord, index: int) -> str | None:
    values = [value for name, value in record.headers if name == b"traceparent"]
    if len(values) != 1:
        return None  # none, or several: no single trace to follow
    parsed = parse_traceparent(values[0].decode("latin-1"))
    return None if parsed is None else parsed[index - 1]


#: Every field a format may name: what it shows, and how to get it.
FIELDS: dict[str, tuple[str, Callable[[AccessRecord], Value]]] = {
    "client": (
        "the client's address and port, 127.0.0.1:51234 or [::1]:51234",
        _client,
    ),
    "client_host": ("the client's address alone", _client_host),
    "method": ("the request method", lambda r: _text_or_none(r.method)),
    "target": (
        "the request target as sent: path and query",
        lambda r: _text_or_none(r.target),
    ),
    "path": (
        "the target up to the first ?",
        lambda r: _text_or_none(r.target.partition(b"?")[0]),
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
    "peer": (
        "the connection's peer: the client, or the proxy that forwarded it",
        _peer,
    ),
    "reason": (
        "why the server refused the request or failed (its own answers only)",
        lambda r: r.reason,
    ),
    "cut_short": (
        "why the response was cut short: application failed, client left, "
        "request failed, shutdown deadline",
        lambda r: None if r.completion is Completion.COMPLETE else r.completion.value,
    ),
    "trace_id": (
        "the trace id of a valid W3C traceparent request header",
        lambda r: _trace_part(r, 1),
    ),
    "span_id": (
        "the parent span id of a valid W3C traceparent request header",
        lambda r: _trace_part(r, 2),
    ),
}

#: Fields a text line gets appended (as ``name="value"``) when they have a
#: value and the format does not show them: a refusal's reason and a cut
#: response are never silent, whatever the template.
APPENDED_FIELDS = ("reason", "cut_short")

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

    def session(self, record: SessionRecord) -> str:
        """The line for a WebSocket session that ended."""


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
    _appended: tuple[tuple[str, Getter], ...] = attrs.field(
        init=False, repr=False, eq=False
    )

    @_getters.default
    def _look_up_getters(self) -> tuple[Getter, ...]:
        return tuple(FIELDS[name][1] for name in self.fields)

    @_appended.default
    def _look_up_appended(self) -> tuple[tuple[str, Getter], ...]:
        return tuple(
            (name, FIELDS[name][1])
            for name in APPENDED_FIELDS
            if name not in self.fields
        )

    def __call__(self, record: AccessRecord) -> str:
        line = self.template.format(*[as_text(get(record)) for get in self._getters])
        return line + self._suffix(record)

    def session(self, record: SessionRecord) -> str:
        return record.as_text()

    def colored(self, record: AccessRecord) -> str:
        return self.template.format(
            *[
                color_status(record.status)
                if name == "status"
                else as_text(get(record))
                for name, get in zip(self.fields, self._getters, strict=True)
            ]
        ) + self._suffix(record)

    def _suffix(self, record: AccessRecord) -> str:
        """The appended fields that have a value; nothing for most responses."""
        if record.reason is None and record.completion is Completion.COMPLETE:
            return ""
        return "".join(
            f' {name}="{as_text(value)}"'
            for name, get in self._appended
            if (value := get(record)) is not None
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

    def session(self, record: SessionRecord) -> str:
        return json.dumps(record.as_dict(), ensure_ascii=True, separators=(",", ":"))


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


class SessionLine:
    """A WebSocket session's log message, formatted only when written."""

    __slots__ = ("format", "record")

    def __init__(self, format: AccessFormat, record: SessionRecord) -> None:
        self.format = format
        self.record = record

    def __str__(self) -> str:
        return self.format.session(self.record)


class Observer(Protocol):
    """What a connection tells about its finished responses."""

    def enabled(self) -> bool:
        """Whether a record would be used now; when not, none is built."""

    def on_response(self, record: AccessRecord) -> None:
        """Take note of one finished response."""

    def on_session_end(self, record: SessionRecord) -> None:
        """Take note of one WebSocket session that ended."""


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

    def on_session_end(self, record: SessionRecord) -> None:
        """Log the session's line (when the logger is on)."""
        if access_logger.isEnabledFor(logging.INFO):
            access_logger.info(SessionLine(self.format, record))


@attrs.frozen
class SilentObserver:
    """An observer that watches nothing: for the metrics port's own requests."""

    def enabled(self) -> bool:
        return False

    def on_response(self, record: AccessRecord) -> None:
        """Ignore the response."""

    def on_session_end(self, record: SessionRecord) -> None:
        """Ignore the session."""
