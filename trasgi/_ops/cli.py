"""The command line: ``python -m trasgi MODULE:ATTRIBUTE [options]``.

The options are derived from the fields of :class:`~trasgi.Config`, so the
command line and the configuration class cannot drift apart. Every bad input
ends with one line on standard error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import os
import platform
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any, NoReturn

import attrs
import h11
import trio

from trasgi._config.config import Config
from trasgi._config.sources import (
    ENV_PREFIX,
    ConfigError,
    from_toml,
    load_env_file,
    parse_switch,
    parse_text,
    read_environ,
    validated,
)
from trasgi._config.spelling import near_miss
from trasgi._edge.activation import SocketActivationError
from trasgi._edge.tls import TLSConfigError
from trasgi._errors import AppLoadError, LifespanFailure
from trasgi._exits import EXIT_FAILURE, EXIT_STARTUP_FAILED, EXIT_USAGE
from trasgi._observe.access import JSON_FORMAT
from trasgi._observe.logs import (
    LogConfigError,
    apply_log_config,
    configure,
    error_logger,
    wants_colors,
)
from trasgi._server.importer import load_app
from trasgi._server.metrics import (
    MetricsListenError,
    MetricsUnavailable,
    import_prometheus,
)
from trasgi._server.serve import run
from trasgi._version import __version__

_H11_VERSION = getattr(h11, "__version__", "unknown")


def version_text() -> str:
    """The ``--version`` line: trasgi's version and what it runs on."""
    return (
        f"trasgi {__version__} ({platform.python_implementation()} "
        f"{platform.python_version()}, trio {trio.__version__}, h11 {_H11_VERSION})"
    )


# The sections of --help, which are those of docs/reference/cli.md.
LISTEN = "Where to listen"
TLS = "TLS"
APPLICATION = "Application and environment"
SEEN_BY_APP = "What the application sees"
LOGGING = "Logging"
METRICS = "Metrics"
RESPONSE_HEADERS = "Response headers"
LIMITS = "Timeouts and limits"
HTTP1 = "HTTP/1.1"
HTTP2 = "HTTP/2"
WEBSOCKETS = "WebSockets"
PROCESSES = "Worker processes and reload"
#: The sections in the order of the help and of the reference page.
SECTIONS = (
    LISTEN,
    TLS,
    SEEN_BY_APP,
    APPLICATION,
    LOGGING,
    METRICS,
    RESPONSE_HEADERS,
    LIMITS,
    HTTP1,
    HTTP2,
    WEBSOCKETS,
    PROCESSES,
)
#: The section of each option, by Config field name. A table here rather than
#: a key of each field, so that the grouping reads in one place.
OPTION_SECTIONS: dict[str, str] = {
    "host": LISTEN,
    "port": LISTEN,
    "uds": LISTEN,
    "bind": LISTEN,
    "uds_permissions": LISTEN,
    "fd": LISTEN,
    "backlog": LISTEN,
    "ssl_certfile": TLS,
    "ssl_keyfile": TLS,
    "ssl_keyfile_password": TLS,
    "ssl_ca_certs": TLS,
    "ssl_cert_reqs": TLS,
    "ssl_ciphers": TLS,
    "timeout_ssl_handshake": TLS,
    "root_path": SEEN_BY_APP,
    "proxy_headers": SEEN_BY_APP,
    "forwarded_allow_ips": SEEN_BY_APP,
    "forwarded_header": SEEN_BY_APP,
    "proxy_protocol": SEEN_BY_APP,
    "lifespan": SEEN_BY_APP,
    "factory": APPLICATION,
    "interface": APPLICATION,
    "app_dir": APPLICATION,
    "env_file": APPLICATION,
    "log_level": LOGGING,
    "access_log": LOGGING,
    "access_log_format": LOGGING,
    "log_config": LOGGING,
    "use_colors": LOGGING,
    "metrics_port": METRICS,
    "metrics_host": METRICS,
    "server_header": RESPONSE_HEADERS,
    "date_header": RESPONSE_HEADERS,
    "header": RESPONSE_HEADERS,
    "timeout_keep_alive": LIMITS,
    "timeout_header_read": LIMITS,
    "timeout_graceful_shutdown": LIMITS,
    "timeout_body_read": LIMITS,
    "timeout_write": LIMITS,
    "limit_concurrency": LIMITS,
    "limit_per_client": LIMITS,
    "limit_request_line": LIMITS,
    "limit_request_fields": LIMITS,
    "limit_request_body": LIMITS,
    "limit_requests_per_connection": LIMITS,
    "h11_max_incomplete_event_size": HTTP1,
    "http": HTTP1,
    "max_drain_bytes": HTTP1,
    "http2": HTTP2,
    "limit_h2_concurrent_streams": HTTP2,
    "limit_h2_stream_window": HTTP2,
    "limit_h2_connection_window": HTTP2,
    "limit_h2_header_list_size": HTTP2,
    "limit_h2_resets_per_second": HTTP2,
    "limit_h2_control_frames_per_second": HTTP2,
    "limit_h2_empty_frames_per_second": HTTP2,
    "ws": WEBSOCKETS,
    "ws_max_size": WEBSOCKETS,
    "ws_max_queue": WEBSOCKETS,
    "ws_ping_interval": WEBSOCKETS,
    "ws_ping_timeout": WEBSOCKETS,
    "ws_per_message_deflate": WEBSOCKETS,
    "workers": PROCESSES,
    "timeout_worker_healthcheck": PROCESSES,
    "limit_max_requests": PROCESSES,
    "limit_max_requests_jitter": PROCESSES,
    "reload": PROCESSES,
    "reload_dir": PROCESSES,
    "reload_include": PROCESSES,
    "reload_exclude": PROCESSES,
}
#: Switches that uvicorn spells with a value (``--ws-per-message-deflate
#: false``); the bare and ``--no-`` forms work too.
SWITCHES_WITH_VALUE = frozenset({"ws_per_message_deflate"})
#: Where the help sends its reader for the whole story.
DOCS_URL = "https://github.com/trasgi/trasgi/blob/main/docs/reference/cli.md"
_EPILOG = f"""\
example:
  python -m trasgi examples.hello:app --host 0.0.0.0 --port 8080 --workers 4

Every option is also a TRASGI_* variable (TRASGI_PORT=8080) and a key of the
--config file. Documentation: {DOCS_URL}
"""
_UNRECOGNIZED = "unrecognized arguments: "


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        if message.startswith(_UNRECOGNIZED):
            message += _option_hint(message.removeprefix(_UNRECOGNIZED).split())
        self.exit(EXIT_USAGE, f"trasgi: error: {message} (see --help)\n")


def _option_hint(words: list[str]) -> str:
    """`` (did you mean --port?)`` for the first mistyped option, if any."""
    known = [f.name for f in attrs.fields(Config)] + ["config", "version", "help"]
    for word in words:
        if word.startswith("--"):
            option = word[2:].partition("=")[0]
            negative = "no-" if option.startswith("no-") else ""
            name = option.removeprefix(negative).replace("-", "_")
            close = near_miss(name, known)
            if close is not None:
                return f" (did you mean --{negative}{close.replace('_', '-')}?)"
    return ""


def _switch(text: str) -> bool:
    try:
        return parse_switch(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser from :class:`Config`'s fields.

    The options are grouped by :data:`OPTION_SECTIONS`, in :data:`SECTIONS`'
    order; the help ends with an example and the documentation's address.
    """
    parser = _Parser(
        prog="python -m trasgi",
        usage="%(prog)s APP [options]",
        description="Serve an ASGI application over HTTP/1.1 and HTTP/2 with trio.",
        argument_default=argparse.SUPPRESS,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "app",
        metavar="APP",
        nargs="?",
        help="the application, as MODULE:ATTRIBUTE (examples.hello:app); "
        "or set TRASGI_APP, or app in the --config file",
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="read options from this TOML file (same names as the options, "
        "with _ or -); command line > TRASGI_* environment > file > defaults",
    )
    groups = {title: parser.add_argument_group(title) for title in SECTIONS}
    for field in attrs.fields(Config):
        group = groups[OPTION_SECTIONS[field.name]]
        if field.name in SWITCHES_WITH_VALUE:
            _add_switch_with_value(group, field)
        else:
            group.add_argument(*_flags(field), **_argument_options(field))
    return parser


def _add_switch_with_value(
    group: argparse._ArgumentGroup, field: attrs.Attribute[Any]
) -> None:
    """``--name [BOOL]`` and ``--no-name``, both setting one field."""
    (flag,) = _flags(field)
    options = _argument_options(field)
    del options["action"]
    group.add_argument(
        flag, nargs="?", const=True, type=_switch, metavar="BOOL", **options
    )
    group.add_argument(
        "--no-" + flag.removeprefix("--"),
        dest=field.name,
        action="store_false",
        help=f"The same as {flag} false.",
    )


def _flags(field: attrs.Attribute[Any]) -> list[str]:
    return ["--" + field.name.replace("_", "-")]


def _argument_options(field: attrs.Attribute[Any]) -> dict[str, Any]:
    meta = field.metadata
    default = field.default
    options: dict[str, Any] = {"dest": field.name}
    if isinstance(default, bool) or str(field.type).startswith("bool"):
        # A switch; one whose default is None decides by itself when not given.
        options["action"] = argparse.BooleanOptionalAction
        options["help"] = meta["help"] + (
            "" if default is None else f" (default: {'on' if default else 'off'})"
        )
        return options
    options["help"] = meta["help"] + (
        "" if default in (None, "", ()) else f" (default: {default})"
    )
    if meta["repeatable"]:
        options["action"] = "append"
    if meta["choices"]:
        options["choices"] = meta["choices"]
    if meta["metavar"]:
        options["metavar"] = meta["metavar"]
    if meta["parse"]:
        options["type"] = meta["parse"]
    return options


@attrs.frozen
class Resolved:
    """The configuration from every source, and what to warn about.

    Attributes:
        config: The Config to serve with.
        app: The application's ``MODULE:ATTRIBUTE``, if any source gave it.
        warnings: One-line warnings for the log, once logging is set up.
    """

    config: Config
    app: str | None
    warnings: tuple[str, ...] = ()


def resolve_config(
    namespace: argparse.Namespace, environ: MutableMapping[str, str]
) -> Resolved:
    """Build the Config and find the app from every source, in precedence order.

    The command line wins over ``TRASGI_*`` variables, which win over the
    ``--config`` file, which wins over the defaults. An option given on the
    command line is not read from the environment at all. The ``--env-file``
    variables are added to ``environ`` first (those already set win), so they
    reach both the options and the application.

    Error handling:
        Raises :class:`ConfigError` naming the source and the option.
    """
    config_file = getattr(namespace, "config", None)
    file_values, file_app = from_toml(config_file) if config_file else ({}, None)
    cli_values = {
        f.name: getattr(namespace, f.name)
        for f in attrs.fields(Config)
        if hasattr(namespace, f.name)
    }
    _load_env_file(cli_values, environ, file_values, config_file)
    reading = read_environ(environ, given=cli_values.keys())
    values = {
        **validated(file_values, config_file or "config file"),
        **validated(reading.values, "environment"),
        **validated(cli_values, "command line"),
    }
    warnings = list(reading.warnings)
    if values.get("reload") and values.get("workers") is not None:
        # uvicorn does the same: reload is for development, one server.
        warnings.append("--workers is ignored with --reload: reload runs one server")
        values["workers"] = None
    app = getattr(namespace, "app", None) or reading.app or file_app
    return Resolved(Config(**values), app, tuple(warnings))


def config_from_args(
    namespace: argparse.Namespace, environ: MutableMapping[str, str]
) -> tuple[Config, str | None]:
    """The Config and the app of :func:`resolve_config`, without its warnings."""
    resolved = resolve_config(namespace, environ)
    return resolved.config, resolved.app


_ENV_FILE_VARIABLE = ENV_PREFIX + "ENV_FILE"


def _load_env_file(
    cli_values: dict[str, Any],
    environ: MutableMapping[str, str],
    file_values: dict[str, Any],
    config_file: str | None,
) -> None:
    """Load the ``--env-file`` that the first source naming one gives."""
    if "env_file" in cli_values:
        path, source = cli_values["env_file"], "--env-file"
    elif _ENV_FILE_VARIABLE in environ:
        text = environ[_ENV_FILE_VARIABLE]
        path, source = parse_text("env_file", text), _ENV_FILE_VARIABLE
    else:
        path, source = file_values.get("env_file"), f"{config_file}: env_file"
    if path is not None:
        load_env_file(path, source, environ)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        resolved = resolve_config(args, os.environ)
    except ConfigError as exc:
        parser.error(_as_option(str(exc)))
    config, app_spec = resolved.config, resolved.app
    if app_spec is None:
        parser.error("the application is required: APP, TRASGI_APP or app in --config")
    if config.workers is not None or config.reload:
        _check_process_options(parser, config)
    _set_up_logging(parser, config)
    for warning in resolved.warnings:
        error_logger.warning("%s", warning)
    if config.metrics_port is not None:
        try:
            import_prometheus()
        except MetricsUnavailable as exc:
            parser.error(str(exc))
    try:
        if config.workers is not None or config.reload:
            return _run_processes(app_spec, config)
        app = load_app(app_spec, factory=config.factory, app_dir=config.app_dir)
        run(app, config=config)
    except AppLoadError as exc:
        return _fail(f"cannot load the application: {exc}", EXIT_FAILURE)
    except LifespanFailure as exc:
        return _fail(f"application {exc}", EXIT_STARTUP_FAILED)
    except TLSConfigError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except OSError as exc:
        return _fail(_listen_error(config, exc), EXIT_FAILURE)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _check_process_options(parser: argparse.ArgumentParser, config: Config) -> None:
    """Refuse --workers and --reload options that cannot work, in one line."""
    from trasgi._ops import reload as _reload  # only these modes need them
    from trasgi._ops import supervisor as _supervisor

    try:
        _supervisor.check_options(config)
        _reload.check_options(config)
    except ValueError as exc:
        parser.error(str(exc))


def _run_processes(app_spec: str, config: Config) -> int:
    """Serve with --workers or --reload: this process runs the servers."""
    from trasgi._ops.reload import run_reloader
    from trasgi._ops.supervisor import WorkersFailed, run_supervisor

    try:
        if config.reload:
            return run_reloader(app_spec, config)
        return run_supervisor(app_spec, config)
    except WorkersFailed as exc:
        return _fail(exc.message, exc.status)


def _set_up_logging(parser: argparse.ArgumentParser, config: Config) -> None:
    """Apply the --log-config file, or install trasgi's handler on stderr."""
    if config.log_config is not None:
        try:
            apply_log_config(config.log_config)
        except LogConfigError as exc:
            parser.error(f"--log-config {exc}")
        return
    configure(
        config.log_level,
        access_log=config.access_log,
        json_access=config.access_log_format == JSON_FORMAT,
        colors=wants_colors(config.use_colors, sys.stderr, os.environ),
    )


def _as_option(message: str) -> str:
    """Name the command-line option rather than the config field."""
    source, _, rest = message.partition(": ")
    if source != "command line":
        return message
    field, _, reason = rest.partition(" ")
    if field in attrs.fields_dict(Config):
        return f"--{field.replace('_', '-')} {reason}"
    return rest


def _listen_error(config: Config, exc: OSError) -> str:
    if isinstance(exc, SocketActivationError):
        return f"socket activation: {exc.strerror}"  # not about --host/--port
    if isinstance(exc, MetricsListenError):
        where = f"{exc.where} (--metrics-port)"
    elif config.uds is not None:
        where = config.uds
    elif config.fd is not None:
        where = f"file descriptor {config.fd}"
    else:
        where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: address already in use"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {where}: {reason}"


def _fail(message: str, status: int) -> int:
    print(f"trasgi: error: {message}", file=sys.stderr)
    return status
