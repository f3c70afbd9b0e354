"""Logger names, escaping, and the command line's logging setup.

Two loggers, as in uvicorn: ``trasgi.error`` for everything that goes wrong
(and the server's own life events), ``trasgi.access`` for one line per
response (its formats live in ``_observe/access.py``). Request data in log lines is
escaped so a client cannot forge log lines or terminal escapes with control
characters in its request target or headers.

The command line either installs one handler on standard error
(:func:`configure`, in colour on a terminal) or hands the whole setup to a
``--log-config`` file (:func:`apply_log_config`). Either way the
``trasgi_web`` loggers, whose lines come from the application, share the
handler and format of trasgi's own (``trasgi_web`` never imports trasgi, so
trasgi configures them).
"""

from __future__ import annotations

import configparser
import importlib
import json
import logging
import logging.config
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

error_logger = logging.getLogger("trasgi.error")
access_logger = logging.getLogger("trasgi.access")
#: The micro-framework's logger: its lines come out as trasgi's do.
WEB_LOGGER = "trasgi_web"

#: ``--log-level trace``: below DEBUG (10), as uvicorn's TRACE. Each ASGI
#: message and connection is logged at this level (see ``_observe/trace.py``).
TRACE = 5
logging.addLevelName(TRACE, "TRACE")


def tracing() -> bool:
    """Whether ``trasgi.error`` writes TRACE lines: asked once, at startup."""
    return error_logger.isEnabledFor(TRACE)


# C0 controls, DEL, and the C1 controls (U+0080-U+009F, which latin-1 gives
# for bytes 0x80-0x9F): some terminals act on C1 too (0x9B is CSI, ECMA-48).
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), *range(0x7F, 0xA0)]}
_ESCAPES[ord("\\")] = "\\\\"
_ESCAPES[ord('"')] = '\\"'


def escape(data: bytes | str) -> str:
    r"""Return ``data`` as printable text: control characters become ``\xNN``."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    return text.translate(_ESCAPES)


def format_client(client: tuple[str, int] | None) -> str:
    """Format a client address as ``host:port`` (``-`` when unknown)."""
    if client is None:
        return "-"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def access_line(
    client: tuple[str, int] | None,
    method: bytes,
    target: bytes,
    http_version: bytes,
    status: int,
    body_bytes: int,
    duration: float,
) -> str:
    """Build one access-log line.

    The format is ``CLIENT - "METHOD TARGET HTTP/VERSION" STATUS BYTES DURATION``,
    with the request parts escaped and the duration in milliseconds.
    """
    request_line = f"{escape(method)} {escape(target)} HTTP/{escape(http_version)}"
    return (
        f'{format_client(client)} - "{request_line}" {status} {body_bytes} '
        f"{duration * 1000:.1f}ms"
    )


#: The command line's line format: time, level, message.
LINE_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
#: The width of the level column, as ``%(levelname)-7s`` pads it.
_LEVEL_WIDTH = 7
#: ANSI colours of the level names (ECMA-48 SGR codes).
_LEVEL_COLORS = {
    "TRACE": "2;36",
    "DEBUG": "36",
    "INFO": "32",
    "WARNING": "33",
    "ERROR": "31",
    "CRITICAL": "1;31",
}


class ColorFormatter(logging.Formatter):
    """The command line's format with the level name and status code in colour.

    The record is copied before it is changed, so other handlers of the same
    record see it plain.
    """

    def format(self, record: logging.LogRecord) -> str:
        shown = logging.makeLogRecord(record.__dict__)
        color = _LEVEL_COLORS.get(record.levelname, "0")
        # Padded before colouring: the escape codes take no column.
        padded = record.levelname.ljust(_LEVEL_WIDTH)
        shown.levelname = f"\x1b[{color}m{padded}\x1b[0m"
        colored: Callable[[], str] | None = getattr(record.msg, "colored", None)
        if colored is not None:  # an access line: its status code in colour
            shown.msg, shown.args = colored(), ()
        return super().format(shown)


def wants_colors(
    setting: bool | None, stream: TextIO, environ: Mapping[str, str]
) -> bool:
    """Whether the command line's log lines are coloured.

    An explicit ``--use-colors`` or ``--no-use-colors`` (or ``TRASGI_USE_COLORS``,
    or ``use_colors`` in the file) decides. Otherwise a non-empty ``NO_COLOR``
    turns colours off (https://no-color.org: per-program settings override
    it), and colours are on only when ``stream`` is a terminal.
    """
    if setting is not None:
        return setting
    if environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def configure(
    level: str,
    *,
    access_log: bool,
    json_access: bool = False,
    colors: bool = False,
) -> None:
    """Send trasgi's logs to standard error, as the command line does.

    Only the ``trasgi`` and ``trasgi_web`` loggers are touched; an embedding
    program that configures logging itself should not call this. With
    ``json_access``, the access lines get a handler of their own that writes
    the bare message, so that each line is one JSON object; ``colors``
    colours level names and status codes. ``level`` may be ``trace``, below
    ``debug``.
    """
    handler = logging.StreamHandler(sys.stderr)
    if colors:
        handler.setFormatter(ColorFormatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter(LINE_FORMAT))
    root = logging.getLogger("trasgi")
    root.handlers[:] = [handler]
    root.propagate = False
    web = logging.getLogger(WEB_LOGGER)
    web.handlers[:] = [handler]
    web.propagate = False
    web.setLevel(level.upper())
    access_logger.handlers[:] = []
    access_logger.propagate = True
    if json_access:
        bare = logging.StreamHandler(sys.stderr)
        bare.setFormatter(logging.Formatter("%(message)s"))
        access_logger.handlers[:] = [bare]
        access_logger.propagate = False
    error_logger.setLevel(level.upper())
    access_logger.setLevel(logging.INFO if access_log else logging.CRITICAL + 1)


class LogConfigError(ValueError):
    """A ``--log-config`` file cannot be read or does not configure logging."""


def apply_log_config(path: str) -> None:
    """Configure logging from a file: the whole setup, handlers and levels.

    ``.json``, ``.toml``, ``.yaml`` and ``.yml`` files hold a
    :func:`logging.config.dictConfig` dictionary (YAML needs PyYAML, the
    ``yaml`` extra); ``.ini`` and ``.conf`` files are read by
    :func:`logging.config.fileConfig`. Loggers that exist already (trasgi's
    own) stay enabled unless the file sets ``disable_existing_loggers``.

    Error handling:
        Raises :class:`LogConfigError` with a one-line reason naming the file.
    """
    kind = Path(path).suffix.lower()
    loader = _LOADERS.get(kind)
    if loader is None:
        raise LogConfigError(
            f"{path}: unknown kind of logging configuration "
            f"{kind or '(no extension)'}; use .json, .toml or .yaml "
            "(dictConfig), .ini or .conf (fileConfig)"
        )
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LogConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LogConfigError(f"{path}: not UTF-8 text") from None
    loader(path, text)


def _from_json(path: str, text: str) -> None:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LogConfigError(f"{path}: not valid JSON: {exc}") from None
    _dict_config(path, data)


def _from_toml(path: str, text: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LogConfigError(f"{path}: not valid TOML: {_one_line(exc)}") from None
    _dict_config(path, data)


def _from_yaml(path: str, text: str) -> None:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise LogConfigError(
            f"{path}: YAML needs PyYAML: pip install -e '.[yaml]'"
            " in a checkout of trasgi"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LogConfigError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    _dict_config(path, data)


def _dict_config(path: str, data: Any) -> None:
    if not isinstance(data, dict):
        raise LogConfigError(
            f"{path}: must hold a logging dictConfig dictionary (with version 1)"
        )
    data.setdefault("disable_existing_loggers", False)
    try:
        logging.config.dictConfig(data)
    except (ValueError, TypeError, AttributeError, ImportError, KeyError) as exc:
        raise LogConfigError(
            f"{path}: invalid logging configuration: {_one_line(exc)}"
        ) from None


def _from_ini(path: str, text: str) -> None:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(text, source=path)
    except configparser.Error as exc:
        raise LogConfigError(
            f"{path}: not a valid INI file: {_one_line(exc)}"
        ) from None
    try:
        logging.config.fileConfig(parser, disable_existing_loggers=False)
    except KeyError as exc:
        raise LogConfigError(
            f"{path}: invalid logging configuration: missing section or key {exc}"
        ) from None
    # fileConfig evaluates handler arguments as Python expressions.
    except (
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        NameError,
        SyntaxError,
        configparser.Error,
    ) as exc:
        raise LogConfigError(
            f"{path}: invalid logging configuration: {_one_line(exc)}"
        ) from None


_LOADERS: dict[str, Callable[[str, str], None]] = {
    ".json": _from_json,
    ".toml": _from_toml,
    ".yaml": _from_yaml,
    ".yml": _from_yaml,
    ".ini": _from_ini,
    ".conf": _from_ini,
}


def _one_line(exc: BaseException) -> str:
    """The exception's message and its cause's, on one line.

    dictConfig says which part failed ("Unable to configure handler 'file'")
    and chains the reason (the missing directory, the unknown class).
    """
    text = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return " ".join(text.split())
