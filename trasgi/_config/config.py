"""The one source of truth for server configuration.

Every option the server knows is a field of :class:`Config`. The command line
(``_ops/cli.py``) is derived from these fields and their metadata, so an option
cannot exist in one place and be missing from another. Each default is a named
constant that states why it has its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import attrs

from trasgi._config.binds import parse_bind
from trasgi._config.headers import parse_header, split_header_list
from trasgi._observe.access import FormatError, compile_format
from trasgi._protocol.forwarded import (
    FORWARDED_HEADERS as FORWARDED_HEADERS,
)
from trasgi._protocol.forwarded import ForwardedHeader as ForwardedHeader
from trasgi._protocol.forwarded import trusted_proxies
from trasgi._protocol.h1_parsers import (
    HTTP_PARSER_MODES,
    HTTPParserMode,
    check_parser_available,
)

#: Loopback only: exposing a development server to the network must be a choice.
DEFAULT_HOST = "127.0.0.1"
#: The port every ASGI server documents; nothing special about it otherwise.
DEFAULT_PORT = 8000
#: Linux caps the accept queue at net.core.somaxconn anyway (4096 on current
#: kernels); 2048 matches uvicorn and absorbs bursts during a slow accept.
DEFAULT_BACKLOG = 2048
#: Idle time allowed between two requests on a kept-alive connection. Short
#: enough that idle clients do not pin memory, long enough for a browser's
#: follow-up requests (uvicorn uses the same 5 s).
DEFAULT_TIMEOUT_KEEP_ALIVE = 5.0
#: Absolute deadline for a complete request head, counted from the accept (a
#: new connection) or from the head's first byte (a kept-alive one, whose idle
#: time the keep-alive timeout bounds). It closes connections that send
#: nothing, or trickle headers a byte at a time (slowloris). Apache's
#: mod_reqtimeout uses 20-40 s; a client on a bad mobile link still sends a
#: head in well under 10 s.
DEFAULT_TIMEOUT_HEADER_READ = 10.0
#: Kubernetes sends SIGKILL 30 s after SIGTERM by default; 25 s lets in-flight
#: requests finish and still leaves time for the lifespan shutdown.
DEFAULT_TIMEOUT_GRACEFUL_SHUTDOWN = 25.0
#: A request head larger than this is refused with 431. Node.js uses the same
#: 16 KiB limit, as does h11 by default; real heads are well under 8 KiB.
DEFAULT_MAX_HEAD_BYTES = 16 * 1024
#: No byte of the request body for this long ends the request (408 if no
#: response started). nginx's client_body_timeout has the same 60 s default.
DEFAULT_TIMEOUT_BODY_READ = 60.0
#: A client that takes no 256 KiB slice of the response for this long is
#: dropped and the application's send() raises. nginx's send_timeout (60 s)
#: likewise bounds the time between two successful writes, not a whole body.
DEFAULT_TIMEOUT_WRITE = 60.0
#: Longest request target; longer gets 414. Apache's LimitRequestLine is 8190.
DEFAULT_LIMIT_REQUEST_LINE = 8190
#: Most header fields in one request; more gets 431. Apache and gunicorn: 100.
DEFAULT_LIMIT_REQUEST_FIELDS = 100
#: Largest request body; larger gets 413. Bodies this large belong in object
#: storage; 100 MiB is about the largest upload common CDNs pass by default.
DEFAULT_LIMIT_REQUEST_BODY = 100 * 1024 * 1024
#: Requests served on one kept-alive connection before it is closed, so that
#: load balancing gets to move long-lived clients (nginx's keepalive_requests).
DEFAULT_LIMIT_REQUESTS_PER_CONNECTION = 1000
#: An unread request body is read and discarded up to this many bytes so the
#: connection can be reused; past it, closing is cheaper than reading.
DEFAULT_MAX_DRAIN_BYTES = 64 * 1024
#: No jitter unless asked: with one worker, or --limit-max-requests alone, a
#: restart at exactly N requests is what was asked for.
DEFAULT_LIMIT_MAX_REQUESTS_JITTER = 0
#: Only processes on this host (loopback, or a Unix socket the file mode
#: admits) may speak for a client: uvicorn trusts 127.0.0.1 by default, and a
#: proxy on another host must be named, since trusting a network is a choice.
DEFAULT_FORWARDED_ALLOW_IPS = "127.0.0.1,::1,unix"

#: uvicorn's default. A worker's event loop answers between two of its
#: tasks' steps; one that cannot answer in 5 s is blocked (a synchronous call
#: that never returns, a deadlock) and serves no one.
DEFAULT_TIMEOUT_WORKER_HEALTHCHECK = 5.0

#: uvicorn's default: big enough for real messages, small enough that one
#: client cannot make the server buffer much.
DEFAULT_WS_MAX_SIZE = 16 * 1024 * 1024
#: Messages held for a slow application before the server stops reading.
DEFAULT_WS_MAX_QUEUE = 32
#: Keeps NAT and proxy idle timers (often 30-60 s) from dropping quiet sockets.
DEFAULT_WS_PING_INTERVAL = 20.0
#: A peer that cannot answer a ping in 20 s is gone for practical purposes.
DEFAULT_WS_PING_TIMEOUT = 20.0

#: TLS 1.2 suites with forward secrecy (ECDHE, DHE) and authenticated
#: encryption (AES-GCM, ChaCha20-Poly1305) only: the same nine suites as
#: Mozilla's "intermediate" server configuration. uvicorn's default, "TLSv1",
#: selects only SHA-1 CBC suites for TLS 1.2 on OpenSSL 3. TLS 1.3 suites are
#: all of this kind and are not governed by this list (OpenSSL's own defaults).
DEFAULT_SSL_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!aDSS"
#: A TLS handshake is two round trips and a few kilobytes; 10 s is as generous
#: as the header-read deadline. asyncio's default (60 s) lets a client that
#: opens a connection and sends nothing hold it six times as long.
DEFAULT_TIMEOUT_SSL_HANDSHAKE = 10.0

#: RFC 9113 section 6.5.2 suggests no fewer than 100 concurrent streams, and
#: browsers rarely open more; nginx and Go's server use 128 and 250. Each
#: stream is a task and a request in flight, so the number bounds a client's
#: share of the server's concurrency.
DEFAULT_H2_CONCURRENT_STREAMS = 100
#: One request body's window: what a client may send before the application
#: reads. 1 MiB lets an upload run at 1 MiB per round trip (the protocol's
#: 64 KiB default would cap a 50 ms path at 1.3 MB/s); a slow application
#: holds at most this much per stream.
DEFAULT_H2_STREAM_WINDOW = 1024 * 1024
#: The window all request bodies of a connection share, and so what one
#: connection's unread bodies can make the server hold: four streams' worth,
#: so one stalled upload leaves the others three quarters of it.
DEFAULT_H2_CONNECTION_WINDOW = 4 * 1024 * 1024
#: The decoded size of a request's header list (SETTINGS_MAX_HEADER_LIST_SIZE):
#: the HTTP/1.1 head limit's twin; bounds HPACK bombs and CONTINUATION floods.
DEFAULT_H2_HEADER_LIST_SIZE = DEFAULT_MAX_HEAD_BYTES
#: Streams reset per second, by the client or because of it, before the
#: connection is closed with ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487;
#: MadeYouReset). A browser resets a handful when a page is left.
DEFAULT_H2_RESETS_PER_SECOND = 100
#: PING and SETTINGS frames per second, each of which the server must answer
#: (CVE-2019-9512, CVE-2019-9515). Clients send a few per connection.
DEFAULT_H2_CONTROL_FRAMES_PER_SECOND = 100
#: Empty DATA frames per second, which carry nothing to act on but cost a
#: frame's processing each (CVE-2019-9518).
DEFAULT_H2_EMPTY_FRAMES_PER_SECOND = 100

LifespanMode = Literal["auto", "on", "off"]
WebSocketMode = Literal["auto", "wsproto", "none"]
WS_MODES: tuple[WebSocketMode, ...] = ("auto", "wsproto", "none")
ProxyProtocolMode = Literal["off", "v1", "v2", "any"]
PROXY_PROTOCOL_MODES: tuple[ProxyProtocolMode, ...] = ("off", "v1", "v2", "any")
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]

LIFESPAN_MODES: tuple[LifespanMode, ...] = ("auto", "on", "off")
LOG_LEVELS: tuple[LogLevel, ...] = (
    "critical",
    "error",
    "warning",
    "info",
    "debug",
    "trace",
)
CertReqs = Literal["none", "optional", "required"]
CERT_REQS: tuple[CertReqs, ...] = ("none", "optional", "required")


def _in_range(
    low: float, high: float
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{attribute.name} must be a number, got {value!r}")
        if not (low <= value <= high) or (
            isinstance(value, float) and math.isnan(value)
        ):
            raise ValueError(
                f"{attribute.name} must be between {low:g} and {high:g}, got {value!r}"
            )

    return check


def _one_of(
    choices: tuple[str, ...],
) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(
                f"{attribute.name} must be one of {', '.join(choices)}; got {value!r}"
            )

    return check


def _instance_of(kind: type) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, kind) or (
            isinstance(value, bool) and kind is not bool
        ):
            raise TypeError(f"{attribute.name} must be {kind.__name__}, got {value!r}")

    return check


def _optional_float(text: str) -> float | None:
    """Parse a number of seconds, or ``none`` for "never"."""
    return None if text.lower() == "none" else float(text)


def _optional_int(text: str) -> int | None:
    """Parse a whole number, or ``none`` for "no limit"."""
    return None if text.lower() == "none" else int(text)


def _octal(text: str) -> int:
    """Parse a file mode written in octal (``660`` or ``0o660``)."""
    return int(text.removeprefix("0o"), 8)


def _valid_binds(_instance: Any, _attribute: attrs.Attribute[Any], value: Any) -> None:
    for text in value:
        if not isinstance(text, str):
            raise TypeError(f"bind entries must be strings, got {text!r}")
        parse_bind(text)


def _strings(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    for text in value:
        if not isinstance(text, str):
            raise TypeError(f"{attribute.name} entries must be strings, got {text!r}")


def _valid_headers(
    _instance: Any, _attribute: attrs.Attribute[Any], value: Any
) -> None:
    for text in value:
        if not isinstance(text, str):
            raise TypeError(f"header entries must be strings, got {text!r}")
        parse_header(text)


def _valid_trusted_proxies(
    _instance: Any, _attribute: attrs.Attribute[Any], value: Any
) -> None:
    trusted_proxies(value)


#: The line the access log always had: client, request line, status, body
#: bytes and duration, in the Common Log Format's order.
DEFAULT_ACCESS_LOG_FORMAT = (
    '{client} - "{request_line}" {status} {bytes} {duration_ms}ms'
)
#: Metrics tell about the server's inside: loopback only, as for --host.
DEFAULT_METRICS_HOST = "127.0.0.1"


def _valid_access_format(
    _instance: Any, attribute: attrs.Attribute[Any], value: Any
) -> None:
    try:
        compile_format(value)
    except FormatError as exc:
        raise ValueError(f"{attribute.name} {exc}") from None


def _optional_switch(text: str) -> bool | None:
    """Parse on/off (true/false, yes/no, 1/0), or ``auto`` to let trasgi decide."""
    lowered = text.strip().lower()
    if lowered in ("auto", "none"):
        return None
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected on, off or auto, got {text!r}")


def _option(
    default: Any,
    help: str,
    *,
    validators: tuple[Callable[[Any, attrs.Attribute[Any], Any], None], ...] = (),
    choices: tuple[str, ...] | None = None,
    metavar: str | None = None,
    parse: Callable[[str], Any] | None = None,
    converter: Callable[[Any], Any] | None = None,
    repeatable: bool = False,
    split: Callable[[str], tuple[str, ...]] | None = None,
) -> Any:
    """Declare a config field with what the CLI needs to expose it."""
    metadata = {
        "help": help,
        "choices": choices,
        "metavar": metavar,
        "parse": parse,
        "repeatable": repeatable,
        "split": split,
    }
    return attrs.field(
        default=default,
        validator=list(validators),
        metadata=metadata,
        converter=converter,
    )


_HOUR = 3600.0
_MAX_PORT = 65535


@attrs.frozen(kw_only=True)
class Config:
    """Everything that can be configured about a trasgi server.

    A frozen value: build one with keyword arguments and pass it to
    :func:`trasgi.serve_tcp`, :func:`trasgi.serve_listeners` or
    :func:`trasgi.run`; use :func:`attrs.evolve` to derive a variant. Every
    field is also a command-line option of the same name (``--timeout-keep-alive``
    for ``timeout_keep_alive``).

    Error handling:
        An invalid value raises :class:`ValueError` or :class:`TypeError` naming
        the field and the value, at construction time.
    """

    host: str = _option(
        DEFAULT_HOST,
        "Bind the listening socket to this host.",
        validators=(_instance_of(str),),
    )
    port: int = _option(
        DEFAULT_PORT,
        "Bind the listening socket to this port (0 picks a free port).",
        validators=(_instance_of(int), _in_range(0, _MAX_PORT)),
        parse=int,
    )
    uds: str | None = _option(
        None,
        "Listen on this Unix domain socket path (instead of --host and --port).",
        metavar="PATH",
        validators=(_instance_of(str),),
    )
    bind: tuple[str, ...] = _option(
        (),
        "Also listen here: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N; "
        "repeat for several listeners (then --host and --port are not used).",
        validators=(_valid_binds,),
        metavar="ADDRESS",
        converter=tuple,
        repeatable=True,
    )
    uds_permissions: int | None = _option(
        None,
        "File mode of the --uds socket, in octal (660: owner and group only).",
        validators=(_instance_of(int), _in_range(0, 0o7777)),
        metavar="MODE",
        parse=_octal,
    )
    fd: int | None = _option(
        None,
        "Serve on an already listening socket passed as this file descriptor "
        "(instead of --host and --port).",
        validators=(_instance_of(int), _in_range(0, 2**31 - 1)),
        parse=int,
    )
    backlog: int = _option(
        DEFAULT_BACKLOG,
        "Maximum number of connections waiting to be accepted.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        parse=int,
    )
    root_path: str = _option(
        "",
        "The path prefix the application is mounted at behind a proxy "
        "(ASGI root_path).",
        validators=(_instance_of(str),),
    )
    lifespan: LifespanMode = _option(
        "auto",
        "Run the ASGI lifespan protocol: 'on' requires it, 'off' skips it, "
        "'auto' uses it when the application supports it.",
        validators=(_one_of(LIFESPAN_MODES),),
        choices=LIFESPAN_MODES,
    )
    log_level: LogLevel = _option(
        "info",
        "Threshold of the trasgi.error logger.",
        validators=(_one_of(LOG_LEVELS),),
        choices=LOG_LEVELS,
    )
    access_log: bool = _option(
        True, "Write one line per response to the trasgi.access logger."
    )
    server_header: bool = _option(True, "Add a 'Server: trasgi' header to responses.")
    date_header: bool = _option(
        True, "Add a 'Date' header to responses (RFC 9110 section 6.6.1)."
    )
    header: tuple[str, ...] = _option(
        (),
        "Add this header to every response, as NAME:VALUE, unless the "
        "application set it; repeat for several.",
        validators=(_valid_headers,),
        metavar="NAME:VALUE",
        converter=tuple,
        repeatable=True,
        split=split_header_list,
    )
    timeout_keep_alive: float = _option(
        DEFAULT_TIMEOUT_KEEP_ALIVE,
        "Close a kept-alive connection after this many idle seconds between requests.",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    timeout_header_read: float = _option(
        DEFAULT_TIMEOUT_HEADER_READ,
        "Deadline in seconds for a complete request head: from the accept on a "
        "new connection, from the head's first byte on a kept-alive one.",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    timeout_graceful_shutdown: float = _option(
        DEFAULT_TIMEOUT_GRACEFUL_SHUTDOWN,
        "On shutdown, give in-flight requests this many seconds to finish before "
        "cancelling them.",
        validators=(_in_range(0, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    timeout_body_read: float = _option(
        DEFAULT_TIMEOUT_BODY_READ,
        "End a request whose body makes no progress for this many seconds "
        "(408 if no response started).",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    timeout_write: float = _option(
        DEFAULT_TIMEOUT_WRITE,
        "Drop a client that accepts no 256 KiB of the response for this many "
        "seconds; the application's send() then raises.",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    limit_concurrency: int | None = _option(
        None,
        "Answer 503 to requests beyond this many in flight at once.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_per_client: int | None = _option(
        None,
        "Answer 503 to connections beyond this many open at once from one "
        "client IP address.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_request_line: int = _option(
        DEFAULT_LIMIT_REQUEST_LINE,
        "Longest request target accepted, in bytes; longer gets 414.",
        validators=(_instance_of(int), _in_range(16, 2**20)),
        metavar="BYTES",
        parse=int,
    )
    limit_request_fields: int = _option(
        DEFAULT_LIMIT_REQUEST_FIELDS,
        "Most header fields accepted in one request; more gets 431.",
        validators=(_instance_of(int), _in_range(1, 10_000)),
        metavar="N",
        parse=int,
    )
    limit_request_body: int | None = _option(
        DEFAULT_LIMIT_REQUEST_BODY,
        "Largest request body accepted, in bytes (none: no limit); larger gets 413.",
        validators=(_instance_of(int), _in_range(0, 2**62)),
        metavar="BYTES",
        parse=_optional_int,
    )
    limit_requests_per_connection: int = _option(
        DEFAULT_LIMIT_REQUESTS_PER_CONNECTION,
        "Close a kept-alive connection after this many requests.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    h11_max_incomplete_event_size: int = _option(
        DEFAULT_MAX_HEAD_BYTES,
        "Largest request head accepted, in bytes; larger heads get 431.",
        validators=(_instance_of(int), _in_range(1024, 2**24)),
        metavar="BYTES",
        parse=int,
    )
    # The HTTP/1.1 request parser (uvicorn's --http and values): h11 is the
    # package's own; httptools (llhttp, C) comes with trasgi[fast] and runs
    # under h11's rules and the same strict checks (see h1_parsers).
    http: HTTPParserMode = _option(
        "h11",
        "HTTP/1.1 request parser: 'h11' (pure Python), 'httptools' (llhttp, "
        "from trasgi[fast], under the same strict rules), or 'auto' "
        "(httptools when installed).",
        validators=(
            _one_of(HTTP_PARSER_MODES),
            lambda _config, _field, mode: check_parser_available(mode),
        ),
        choices=HTTP_PARSER_MODES,
    )
    http2: bool = _option(
        True,
        "Serve HTTP/2: negotiated by ALPN over TLS, and with prior knowledge "
        "(h2c) on plain ports, beside HTTP/1.1.",
    )
    limit_h2_concurrent_streams: int = _option(
        DEFAULT_H2_CONCURRENT_STREAMS,
        "Streams one HTTP/2 connection may have in flight; more are refused "
        "with REFUSED_STREAM.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_h2_stream_window: int = _option(
        DEFAULT_H2_STREAM_WINDOW,
        "Bytes of one HTTP/2 request body the client may send ahead of the "
        "application reading it.",
        validators=(_instance_of(int), _in_range(65_535, 2**31 - 1)),
        metavar="BYTES",
        parse=int,
    )
    limit_h2_connection_window: int = _option(
        DEFAULT_H2_CONNECTION_WINDOW,
        "Bytes of all request bodies of one HTTP/2 connection the client may "
        "send ahead of the applications reading them.",
        validators=(_instance_of(int), _in_range(65_535, 2**31 - 1)),
        metavar="BYTES",
        parse=int,
    )
    limit_h2_header_list_size: int = _option(
        DEFAULT_H2_HEADER_LIST_SIZE,
        "Largest decoded HTTP/2 header list accepted, in bytes.",
        validators=(_instance_of(int), _in_range(1024, 2**24)),
        metavar="BYTES",
        parse=int,
    )
    limit_h2_resets_per_second: int = _option(
        DEFAULT_H2_RESETS_PER_SECOND,
        "HTTP/2 streams reset per second (by the client, or because of it) "
        "before the connection is closed with ENHANCE_YOUR_CALM.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_h2_control_frames_per_second: int = _option(
        DEFAULT_H2_CONTROL_FRAMES_PER_SECOND,
        "HTTP/2 PING and SETTINGS frames per second before the connection is "
        "closed with ENHANCE_YOUR_CALM.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_h2_empty_frames_per_second: int = _option(
        DEFAULT_H2_EMPTY_FRAMES_PER_SECOND,
        "HTTP/2 empty DATA frames per second before the connection is closed "
        "with ENHANCE_YOUR_CALM.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    max_drain_bytes: int = _option(
        DEFAULT_MAX_DRAIN_BYTES,
        "Read and discard up to this many bytes of a request body the application "
        "did not read, to keep the connection; larger remainders close it.",
        validators=(_instance_of(int), _in_range(0, 2**31 - 1)),
        metavar="BYTES",
        parse=int,
    )
    ws: WebSocketMode = _option(
        "auto",
        "WebSocket support: 'auto' and 'wsproto' serve upgrades with wsproto; "
        "'none' answers upgrade requests as plain HTTP requests.",
        validators=(_one_of(WS_MODES),),
        choices=WS_MODES,
    )
    ws_max_size: int = _option(
        DEFAULT_WS_MAX_SIZE,
        "Largest WebSocket message accepted, in bytes; larger ones close with 1009.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="BYTES",
        parse=int,
    )
    ws_max_queue: int = _option(
        DEFAULT_WS_MAX_QUEUE,
        "WebSocket messages buffered for an application that reads slowly; past "
        "it, the server stops reading from the client.",
        validators=(_instance_of(int), _in_range(1, 2**20)),
        metavar="N",
        parse=int,
    )
    ws_ping_interval: float | None = _option(
        DEFAULT_WS_PING_INTERVAL,
        "Send a WebSocket ping after this many seconds (none: never).",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=_optional_float,
    )
    ws_ping_timeout: float | None = _option(
        DEFAULT_WS_PING_TIMEOUT,
        "Close a WebSocket (1011) whose pong does not arrive within this many "
        "seconds of a ping (none: wait forever).",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=_optional_float,
    )
    ws_per_message_deflate: bool = _option(
        True, "Negotiate permessage-deflate compression for WebSockets (RFC 7692)."
    )
    ssl_certfile: str | None = _option(
        None,
        "Serve HTTPS with this certificate chain (PEM: the certificate first, "
        "then its intermediates).",
        validators=(_instance_of(str),),
        metavar="PATH",
    )
    ssl_keyfile: str | None = _option(
        None,
        "The private key of --ssl-certfile (PEM); by default read from "
        "--ssl-certfile itself.",
        validators=(_instance_of(str),),
        metavar="PATH",
    )
    ssl_keyfile_password: str | None = _option(
        None,
        "The password of an encrypted --ssl-keyfile (prefer the environment "
        "variable: a command line is visible to other users).",
        validators=(_instance_of(str),),
        metavar="PASSWORD",
    )
    ssl_ca_certs: str | None = _option(
        None,
        "CA certificates (PEM) that client certificates must chain to; used "
        "with --ssl-cert-reqs optional or required.",
        validators=(_instance_of(str),),
        metavar="PATH",
    )
    ssl_cert_reqs: CertReqs = _option(
        "none",
        "Client certificates: 'none' asks for none, 'optional' verifies one if "
        "sent, 'required' refuses clients without a valid one.",
        validators=(_one_of(CERT_REQS),),
        choices=CERT_REQS,
    )
    ssl_ciphers: str = _option(
        DEFAULT_SSL_CIPHERS,
        "The TLS 1.2 cipher suites, as an OpenSSL cipher list (TLS 1.3 suites "
        "are OpenSSL's).",
        validators=(_instance_of(str),),
        metavar="CIPHERS",
    )
    timeout_ssl_handshake: float = _option(
        DEFAULT_TIMEOUT_SSL_HANDSHAKE,
        "Drop a TLS client that has not completed the handshake this many "
        "seconds after the accept.",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    proxy_headers: bool = _option(
        # On, as in uvicorn: --forwarded-allow-ips' default keeps it to
        # proxies on this host, so a remote client cannot use it.
        True,
        "Believe the forwarding headers (see --forwarded-header) of peers in "
        "--forwarded-allow-ips: they set the client, scheme and Host the "
        "application sees.",
    )
    forwarded_allow_ips: str = _option(
        DEFAULT_FORWARDED_ALLOW_IPS,
        "The trusted proxies, comma-separated: IP addresses, networks "
        "(10.0.0.0/8), 'unix' (Unix socket peers) or '*' (every peer).",
        validators=(_instance_of(str), _valid_trusted_proxies),
        metavar="ADDRESSES",
    )
    forwarded_header: ForwardedHeader = _option(
        "x-forwarded",
        "The headers --proxy-headers reads: 'x-forwarded' (X-Forwarded-For, "
        "-Proto and -Host) or 'forwarded' (RFC 7239), never both.",
        validators=(_one_of(FORWARDED_HEADERS),),
        choices=FORWARDED_HEADERS,
    )
    proxy_protocol: ProxyProtocolMode = _option(
        "off",
        "Require a PROXY protocol header ('v1', 'v2' or 'any' of them) from "
        "a peer in --forwarded-allow-ips at the start of each connection.",
        validators=(_one_of(PROXY_PROTOCOL_MODES),),
        choices=PROXY_PROTOCOL_MODES,
    )
    access_log_format: str = _option(
        DEFAULT_ACCESS_LOG_FORMAT,
        "The access line: text with named fields such as {client} {method} "
        "{path} {status} {duration_ms} {user_agent}, or 'json' for one JSON "
        "object per line.",
        validators=(_instance_of(str), _valid_access_format),
        metavar="FORMAT",
    )
    log_config: str | None = _option(
        None,
        "Configure logging from this file instead: dictConfig from .json or "
        ".toml, fileConfig from .ini or .conf; trasgi then installs no handler.",
        validators=(_instance_of(str),),
        metavar="FILE",
    )
    use_colors: bool | None = _option(
        None,
        "Colour level names and status codes (default: when standard error is "
        "a terminal and NO_COLOR is not set).",
        validators=(_instance_of(bool),),
        parse=_optional_switch,
    )
    metrics_port: int | None = _option(
        None,
        "Serve Prometheus metrics at /metrics on this port (needs "
        "trasgi[metrics]; 0 picks a free port).",
        validators=(_instance_of(int), _in_range(0, _MAX_PORT)),
        metavar="PORT",
        parse=int,
    )
    metrics_host: str = _option(
        DEFAULT_METRICS_HOST,
        "Bind the metrics port to this host.",
        validators=(_instance_of(str),),
        metavar="HOST",
    )
    workers: int | None = _option(
        None,
        "Run this many worker processes on shared sockets, under a supervisor "
        "that restarts them (unset: serve in this process).",
        validators=(_instance_of(int), _in_range(1, 1024)),
        metavar="N",
        parse=int,
    )
    timeout_worker_healthcheck: float = _option(
        DEFAULT_TIMEOUT_WORKER_HEALTHCHECK,
        "Kill and replace a --workers worker whose event loop does not answer "
        "the supervisor's health check within this many seconds.",
        validators=(_in_range(0.001, _HOUR),),
        metavar="SECONDS",
        parse=float,
    )
    limit_max_requests: int | None = _option(
        None,
        "Shut down gracefully after this many requests (a supervisor then "
        "starts a fresh worker): bounds what a slow leak can hold.",
        validators=(_instance_of(int), _in_range(1, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    limit_max_requests_jitter: int = _option(
        DEFAULT_LIMIT_MAX_REQUESTS_JITTER,
        "Add a random 0 to N requests to --limit-max-requests, so that workers "
        "started together do not all restart together.",
        validators=(_instance_of(int), _in_range(0, 2**31 - 1)),
        metavar="N",
        parse=int,
    )
    reload: bool = _option(
        False,
        "Restart the server when a watched file changes (development; needs "
        "trasgi[reload]).",
    )
    reload_dir: tuple[str, ...] = _option(
        (),
        "Watch this directory for --reload; repeat for several (default: the "
        "current directory).",
        validators=(_strings,),
        metavar="DIR",
        converter=tuple,
        repeatable=True,
    )
    reload_include: tuple[str, ...] = _option(
        (),
        "Also restart on changes to files matching this glob pattern (*.py "
        "always is); repeat for several.",
        validators=(_strings,),
        metavar="GLOB",
        converter=tuple,
        repeatable=True,
    )
    reload_exclude: tuple[str, ...] = _option(
        (),
        "Ignore files and directories matching this glob pattern (.*, "
        "*.py[cod] and *~ always are); repeat for several.",
        validators=(_strings,),
        metavar="GLOB",
        converter=tuple,
        repeatable=True,
    )
    factory: bool = _option(
        False,
        "Treat APP as a factory: call it with no arguments to get the application.",
    )
    interface: Literal["auto", "asgi3", "asgi2", "wsgi"] = _option(
        "auto",
        "How to call APP: 'asgi3', 'asgi2' (a class taking the scope), 'wsgi' "
        "(PEP 3333, in worker threads), or 'auto' to tell from its signature.",
        validators=(_one_of(("auto", "asgi3", "asgi2", "wsgi")),),
        choices=("auto", "asgi3", "asgi2", "wsgi"),
    )
    app_dir: str = _option(
        ".",
        "Look for the application's module in this directory (put first on sys.path).",
        validators=(_instance_of(str),),
        metavar="DIR",
    )
    env_file: str | None = _option(
        None,
        "Load environment variables from this .env file before reading "
        "TRASGI_* variables (the command line does; needs trasgi[dotenv]); "
        "variables already set win.",
        validators=(_instance_of(str),),
        metavar="PATH",
    )
