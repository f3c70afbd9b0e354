"""Form bodies: urlencoded and multipart (RFC 7578), parsed as they stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from ._datastructures import Headers
from ._exceptions import HTTPException
from ._uploads import FormData, FormValue, UploadFile

#: Bytes of part headers allowed per part: names and filenames, not data.
MAX_PART_HEADER_BYTES = 16 * 1024


@dataclass(frozen=True)
class FormLimits:
    """Bounds on what a form body may hold.

    Attributes:
        max_fields: Text fields allowed (400 beyond).
        max_files: File parts allowed (400 beyond).
        max_part_size: Bytes per text field (413 beyond); files are bounded
            by the request body limit.
        spool_threshold: Bytes of a file kept in memory before it moves to a
            temporary file on disk.
    """

    max_fields: int = 1000
    max_files: int = 100
    max_part_size: int = 1024 * 1024
    spool_threshold: int = 1024 * 1024


async def parse_form(
    content_type: str, chunks: AsyncIterator[bytes], limits: FormLimits
) -> FormData:
    """Parse a form body from its ``Content-Type`` and body chunks.

    Error handling:
        :class:`HTTPException` 415, 400 or 413 as :meth:`Request.form` says.
    """
    media_type, params = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        return await _parse_urlencoded(chunks, limits)
    if media_type == b"multipart/form-data":
        boundary = params.get(b"boundary")
        if not boundary:
            raise HTTPException(400, "Multipart body without a boundary")
        return await _MultipartReader(boundary, limits).read(chunks)
    raise HTTPException(
        415, "Expected application/x-www-form-urlencoded or multipart/form-data"
    )


async def _parse_urlencoded(
    chunks: AsyncIterator[bytes], limits: FormLimits
) -> FormData:
    body = b"".join([chunk async for chunk in chunks])
    try:
        pairs = parse_qsl(
            body.decode("latin-1"),
            keep_blank_values=True,
            encoding="latin-1",
            max_num_fields=limits.max_fields,
        )
    except ValueError:
        raise HTTPException(
            400, f"Too many form fields (limit {limits.max_fields})"
        ) from None
    items: list[tuple[str, FormValue]] = []
    for name, value in pairs:
        # Re-decode: parse_qsl decoded percent-escapes as latin-1.
        name = name.encode("latin-1").decode("utf-8", "replace")
        value = value.encode("latin-1").decode("utf-8", "replace")
        if len(value.encode()) > limits.max_part_size:
            raise HTTPException(
                413, f"Form field {name!r} exceeds {limits.max_part_size} bytes"
            )
        items.append((name, value))
    return FormData(items)


class _MultipartReader:
    """Drives python-multipart's push parser and acts on its events.

    The parser's callbacks are synchronous; they queue events which are then
    handled with awaits (file writes may go to a worker thread).
    """

    def __init__(self, boundary: bytes, limits: FormLimits) -> None:
        self._limits = limits
        self._events: list[tuple[str, bytes]] = []
        self._parser = MultipartParser(boundary, self._callbacks())
        self._items: list[tuple[str, FormValue]] = []
        self._header_field = b""
        self._header_value = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._name = ""
        self._text: bytearray | None = None
        self._file: UploadFile | None = None
        self._fields = 0
        self._files = 0
        self._ended = False

    def _callbacks(self) -> Any:
        def data(kind: str):  # type: ignore[no-untyped-def]
            return lambda buf, start, end: self._events.append(
                (kind, bytes(buf[start:end]))
            )

        def event(kind: str):  # type: ignore[no-untyped-def]
            return lambda: self._events.append((kind, b""))

        return {
            "on_part_begin": event("part_begin"),
            "on_header_field": data("header_field"),
            "on_header_value": data("header_value"),
            "on_header_end": event("header_end"),
            "on_headers_finished": event("headers_finished"),
            "on_part_data": data("part_data"),
            "on_part_end": event("part_end"),
            "on_end": event("end"),
        }

    async def read(self, chunks: AsyncIterator[bytes]) -> FormData:
        form = FormData(self._items)
        try:
            async for chunk in chunks:
                await self._feed(chunk)
            self._parser.finalize()
            await self._handle_events()
            self._check_ended()
        except BaseException:
            await form.close()
            if self._file is not None:
                await self._file.close()
            raise
        return form

    def _check_ended(self) -> None:
        if not self._ended:
            raise HTTPException(400, "Multipart body ends before its closing boundary")

    async def _feed(self, chunk: bytes) -> None:
        try:
            self._parser.write(chunk)
        except MultipartParseError as exc:
            raise HTTPException(400, f"Malformed multipart body: {exc}") from None
        await self._handle_events()

    async def _handle_events(self) -> None:
        events, self._events = self._events, []
        for kind, data in events:
            await self._handle(kind, data)

    async def _handle(self, kind: str, data: bytes) -> None:
        if kind == "part_begin":
            self._headers, self._header_bytes = [], 0
            self._header_field = self._header_value = b""
        elif kind in ("header_field", "header_value"):
            self._collect_header(kind, data)
        elif kind == "header_end":
            self._headers.append((self._header_field.lower(), self._header_value))
            self._header_field = self._header_value = b""
        elif kind == "headers_finished":
            self._start_part()
        elif kind == "part_data":
            await self._part_data(data)
        elif kind == "part_end":
            await self._end_part()
        elif kind == "end":
            self._ended = True

    def _collect_header(self, kind: str, data: bytes) -> None:
        self._header_bytes += len(data)
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise HTTPException(400, "Multipart part headers too large")
        if kind == "header_field":
            self._header_field += data
        else:
            self._header_value += data

    def _start_part(self) -> None:
        headers = Headers(self._headers)
        disposition, params = parse_options_header(
            headers.get("content-disposition", "")
        )
        if disposition != b"form-data" or b"name" not in params:
            raise HTTPException(400, "Multipart part without a form-data name")
        self._name = params[b"name"].decode("utf-8", "replace")
        if b"filename" in params:
            self._files += 1
            if self._files > self._limits.max_files:
                raise HTTPException(
                    400, f"Too many files (limit {self._limits.max_files})"
                )
            self._file = UploadFile(
                params[b"filename"].decode("utf-8", "replace"),
                headers.get("content-type", "text/plain"),
                headers,
                self._limits.spool_threshold,
            )
        else:
            self._fields += 1
            if self._fields > self._limits.max_fields:
                raise HTTPException(
                    400, f"Too many form fields (limit {self._limits.max_fields})"
                )
            self._text = bytearray()

    async def _part_data(self, data: bytes) -> None:
        if self._file is not None:
            await self._file.write(data)
        elif self._text is not None:
            self._text += data
            if len(self._text) > self._limits.max_part_size:
                raise HTTPException(
                    413,
                    f"Form field {self._name!r} exceeds "
                    f"{self._limits.max_part_size} bytes",
                )

    async def _end_part(self) -> None:
        if self._file is not None:
            await self._file.seek(0)
            self._items.append((self._name, self._file))
            self._file = None
        elif self._text is not None:
            self._items.append((self._name, self._text.decode("utf-8", "replace")))
            self._text = None


def check_parsed(form: FormData, limits: FormLimits) -> None:
    """Hold a form parsed earlier, under other limits, to ``limits``.

    A form is parsed once per request; when a first reader (the CSRF check)
    used other limits than the handler asks for, the handler's still apply.

    Error handling:
        :class:`HTTPException` 400 or 413, with the messages of parsing.
    """
    items = form.multi_items()
    files = sum(isinstance(value, UploadFile) for _, value in items)
    if files > limits.max_files:
        raise HTTPException(400, f"Too many files (limit {limits.max_files})")
    if len(items) - files > limits.max_fields:
        raise HTTPException(400, f"Too many form fields (limit {limits.max_fields})")
    for name, value in items:
        if isinstance(value, str) and len(value.encode()) > limits.max_part_size:
            raise HTTPException(
                413, f"Form field {name!r} exceeds {limits.max_part_size} bytes"
            )
