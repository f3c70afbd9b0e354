"""WSGI applications (PEP 3333) served as ASGI 3 ones, in worker threads.

:class:`WSGIApp` is an ASGI application like any other, so every feature of
the server (TLS, limits, proxy headers, graceful shutdown, the access log)
applies to the WSGI application inside it.

Each request runs in one worker thread, from the call of the application to
``close()`` of what it returned, so that the synchronous application never
blocks the trio loop, and so that ``close()`` runs after the last ``next()``
in the same thread whatever happens (PEP 3333 asks for it to be called in
every case). The thread speaks to the request through ``trio.from_thread``:

* ``wsgi.input`` pulls one ``http.request`` message at a time, when the
  application reads: the body stays in the client (and in TCP's or HTTP/2's
  flow control) until then, and at most one message is buffered here;
* each chunk of the response, and each ``write()``, is one
  ``http.response.body`` message, which blocks the thread until the server
  has taken it: a slow client slows the application down instead of the
  response piling up in memory;
* the end of the body is sent from trio once the thread is done, so the
  response is complete (and logged) after ``close()``, as it is after an
  ASGI application returns.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

import trio

from trasgi._asgi import Message, Receive, Scope, Send
from trasgi._errors import ClientDisconnected
from trasgi._observe.logs import error_logger

#: Worker threads running WSGI requests at once, per process. The same
#: number as trio's and anyio's default thread limiter: enough for an
#: application waiting on a database or another service, few enough that
#: their stacks stay small; further requests wait in trio (a few hundred
#: bytes each) until a thread is free, not in the kernel's run queue.
WSGI_THREADS = 40

_threads: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar(
    "trasgi_wsgi_threads"
)

T = TypeVar("T")
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], None]]
WSGICallable = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def thread_limiter() -> trio.CapacityLimiter:
    """The limiter of the current trio run's WSGI threads (one per run)."""
    try:
        return _threads.get()
    except LookupError:
        limiter = trio.CapacityLimiter(WSGI_THREADS)
        _threads.set(limiter)
        return limiter


class WSGIApp:
    """An ASGI 3 application that runs a WSGI application in worker threads.

    Args:
        app: The WSGI application: ``app(environ, start_response)``.

    Error handling:
        What the application raises leaves the ASGI call as itself, so the
        server answers 500 (or cuts a started response) and logs it. A
        WebSocket is refused (WSGI has none); the lifespan protocol is
        answered at once (WSGI has none either).

    Resource handling:
        ``close()`` of the application's iterable is always called, in the
        request's thread: at the end, on an error, when the client leaves
        (the next ``write`` or chunk raises :class:`ClientDisconnected`),
        and when the request is cancelled (the thread, abandoned, raises
        :class:`trio.Cancelled` at its next read or write).
    """

    __slots__ = ("app",)

    def __init__(self, app: WSGICallable) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection scope with the WSGI application."""
        if scope["type"] == "lifespan":
            await _answer_lifespan(receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close"})  # a 403 to the handshake
        else:
            exchange = _Exchange(self.app, scope, receive, send)
            await trio.to_thread.run_sync(
                exchange.run, limiter=thread_limiter(), abandon_on_cancel=True
            )
            # The end of the body, once close() has run: the response is
            # complete, and logged, when the application is done with it.
            await send({"type": "http.response.body"})


async def _answer_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


class _Exchange:
    """One request and its response, seen from the request's thread."""

    def __init__(
        self, app: WSGICallable, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.app = app
        self.scope = scope
        self.receive = receive
        self.send = send
        #: ``(status, headers)`` once start_response was called.
        self.start: tuple[int, list[tuple[bytes, bytes]]] | None = None
        self.headers_sent = False

    def run(self) -> None:
        """Call the application and send its head and body but the end."""
        environ = build_environ(
            self.scope, RequestBody(self._receive_body), ErrorStream()
        )
        iterable = self.app(environ, self.start_response)
        try:
            for chunk in iterable:  # each next() in this thread
                if chunk:  # PEP 3333: no headers before the first non-empty chunk
                    self.write(chunk)
            self._send_head()
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        """PEP 3333's ``start_response``: record the status and headers."""
        if exc_info is not None:
            try:
                if self.headers_sent:
                    # PEP 3333: too late to change the response; let the
                    # error end it (the server cuts the response short).
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # PEP 3333: no cycle through the traceback
        elif self.start is not None:
            raise RuntimeError(
                "start_response() was called twice; a second call must pass "
                "exc_info (PEP 3333)"
            )
        self.start = (_status_code(status), _encode_headers(headers))
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write()``: send ``data`` now, the head first if needed."""
        if not isinstance(data, bytes):
            raise TypeError(f"a WSGI body must be bytes, got {type(data).__name__}")
        self._send_head()
        self._call_trio(
            self.send, {"type": "http.response.body", "body": data, "more_body": True}
        )

    def _send_head(self) -> None:
        if self.headers_sent:
            return
        if self.start is None:
            raise RuntimeError(
                "the WSGI application returned a body before calling start_response()"
            )
        status, headers = self.start
        self._call_trio(
            self.send,
            {"type": "http.response.start", "status": status, "headers": headers},
        )
        self.headers_sent = True

    def _receive_body(self) -> tuple[bytes, bool]:
        """The next piece of the body and whether more follows."""
        message: Message = self._call_trio(self.receive)
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("the client left before the end of the body")
        return bytes(message.get("body", b"")), bool(message.get("more_body", False))

    def _call_trio(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        # A cancelled request's thread is abandoned: it stops at its next
        # read or write, and unwinds the application to close().
        trio.from_thread.check_cancelled()
        return trio.from_thread.run(afn, *args)


def _status_code(status: str) -> int:
    """The number of a PEP 3333 status line such as ``"200 OK"``."""
    code, _, _ = str(status).partition(" ")
    if len(code) != 3 or not code.isdigit():
        raise ValueError(f"a WSGI status must look like '200 OK', got {status!r}")
    return int(code)


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    # PEP 3333: header names and values are native strings holding latin-1.
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers
    ]


class RequestBody:
    """``wsgi.input``: the request body, read from the client as asked.

    Args:
        pull: Returns the next piece of the body and whether more follows;
            called only when the application wants more bytes than are
            buffered, so at most one piece is held here.

    Error handling:
        :class:`ClientDisconnected` when the client left before the end of
        the body.
    """

    def __init__(self, pull: Callable[[], tuple[bytes, bool]]) -> None:
        self._pull = pull
        self._buffer = bytearray()
        self._more = True

    def _fill(self) -> bool:
        """Buffer one more non-empty piece; False at the end of the body."""
        while self._more:
            piece, self._more = self._pull()
            if piece:
                self._buffer += piece
                return True
        return False

    def _take(self, size: int) -> bytes:
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative or None)."""
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self._buffer))
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        """One line, its newline included, or at most ``size`` bytes of it."""
        limit = sys.maxsize if size is None or size < 0 else size
        searched = 0
        while True:
            end = self._buffer.find(b"\n", searched)
            if end >= 0:
                return self._take(min(end + 1, limit))
            searched = len(self._buffer)
            if searched >= limit or not self._fill():
                return self._take(limit)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """The remaining lines; stops once ``hint`` bytes were read, if given."""
        lines: list[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ErrorStream:
    """``wsgi.errors``: text the application writes, logged as errors.

    Text is logged on ``flush()`` and at each write ending a line, one log
    record per write: a traceback that a logging handler writes in one go
    stays one record.
    """

    def __init__(self) -> None:
        self._pending: list[str] = []

    def write(self, text: str) -> None:
        """Take ``text``; log what was written once a line ends."""
        self._pending.append(text)
        if text.endswith("\n"):
            self.flush()

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log what was written since the last record."""
        text = "".join(self._pending).rstrip("\n")
        self._pending.clear()
        if text:
            error_logger.error("%s", text)


def build_environ(
    scope: Scope, body: RequestBody, errors: ErrorStream
) -> dict[str, Any]:
    """The PEP 3333 environ of an ASGI ``http`` scope."""
    scheme: str = scope["scheme"]
    root_path: str = scope.get("root_path", "")
    path: str = scope["path"]
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    server = scope.get("server") or ("localhost", 443 if scheme == "https" else 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        # PEP 3333: native strings holding the bytes as latin-1. The scope's
        # path is the target's bytes, unquoted, decoded as UTF-8.
        "SCRIPT_NAME": _latin1(root_path),
        "PATH_INFO": _latin1(path),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        # The body's end is signalled (b"" from read()), chunked bodies
        # included: frameworks that check this key read without a length.
        "wsgi.input_terminated": True,
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,  # --workers may run copies in processes
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"], port = scope["client"]
        environ["REMOTE_PORT"] = str(port)
    environ.update(_header_variables(scope["headers"]))
    return environ


def _latin1(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def _header_variables(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    variables: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        if "_" in name:
            # X-Forwarded-For and X_Forwarded_For would both become
            # HTTP_X_FORWARDED_FOR: a client could then pass off its own
            # header as one a proxy set. Dropped, as nginx and gunicorn do.
            continue
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = raw_value.decode("latin-1")
        if key in variables:
            # RFC 9110 section 5.3: repeated fields combine with commas; the
            # Cookie field with "; " (RFC 6265 section 5.4, RFC 9113 8.2.3).
            separator = "; " if key == "HTTP_COOKIE" else ", "
            value = variables[key] + separator + value
        variables[key] = value
    return variables
