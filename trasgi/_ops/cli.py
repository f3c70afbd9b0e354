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
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import attrs
import h11
import trio

from trasgi._config.config import Config
from trasgi._config.sources import ConfigError, from_environ, from_toml, validated
from trasgi._edge.activation import SocketActivationError
from trasgi._edge.tls import TLSConfigError
from trasgi._errors import AppLoadError, LifespanFailure
from trasgi._exits import EXIT_FAILURE, EXIT_STARTUP_FAILED, EXIT_USAGE
from trasgi._observe.access import JSON_FORMAT
from trasgi._observe.logs import (
    LogConfigError,
    apply_log_config,
    configure,
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


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"trasgi: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser from :class:`Config`'s fields."""
    parser = _Parser(
        prog="python -m trasgi",
        description="Serve an ASGI application over HTTP/1.1 with trio.",
        argument_default=argparse.SUPPRESS,
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
    for field in attrs.fields(Config):
        parser.add_argument(*_flags(field), **_argument_options(field))
    return parser


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


def config_from_args(
    namespace: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Config, str | None]:
    """Build the Config and find the app from every source, in precedence order.

    The command line wins over ``TRASGI_*`` variables, which win over the
    ``--config`` file, which wins over the defaults.

    Error handling:
        Raises :class:`ConfigError` naming the source and the option.
    """
    config_file = getattr(namespace, "config", None)
    file_values, file_app = from_toml(config_file) if config_file else ({}, None)
    env_values, env_app = from_environ(environ)
    cli_values = {
        f.name: getattr(namespace, f.name)
        for f in attrs.fields(Config)
        if hasattr(namespace, f.name)
    }
    values = {
        **validated(file_values, config_file or "config file"),
        **validated(env_values, "environment"),
        **validated(cli_values, "command line"),
    }
    app = getattr(namespace, "app", None) or env_app or file_app
    return Config(**values), app


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config, app_spec = config_from_args(args, os.environ)
    except ConfigError as exc:
        parser.error(_as_option(str(exc)))
    if app_spec is None:
        parser.error("the application is required: APP, TRASGI_APP or app in --config")
    if config.workers is not None or config.reload:
        _check_process_options(parser, config)
    _set_up_logging(parser, config)
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
