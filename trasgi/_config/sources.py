"""Configuration from a TOML file and ``TRASGI_*`` environment variables.

The same names everywhere, all derived from :class:`~trasgi.Config`'s
fields: ``--timeout-keep-alive`` on the command line, ``TRASGI_TIMEOUT_KEEP_ALIVE``
in the environment, ``timeout_keep_alive`` (or ``timeout-keep-alive``) in the
file. Precedence: command line, then environment, then file, then defaults.

A typo in the file, or a bad value anywhere, is refused with a message naming
the source. The environment is shared with whatever else runs in the
container, so an unknown ``TRASGI_*`` name there is only a warning: Kubernetes
adds variables for every Service of the namespace, and a Service named
``trasgi`` gives ``TRASGI_SERVICE_HOST`` and ``TRASGI_PORT=tcp://10.0.0.11:8000``.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Collection, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import attrs

from trasgi._config.config import Config
from trasgi._config.spelling import near_miss
from trasgi._observe.logs import error_logger

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ENV_PREFIX = "TRASGI_"
#: The application may also come from the environment or the file.
APP_KEY = "app"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_FIELDS = attrs.fields_dict(Config)


class ConfigError(ValueError):
    """A configuration source has an unknown name or a bad value."""


def _suggest(name: str, known: Collection[str]) -> str:
    close = near_miss(name, known)
    return f" (did you mean {close!r}?)" if close else ""


def parse_switch(text: str) -> bool:
    """Parse a switch's value: true/false, 1/0, yes/no or on/off.

    Error handling:
        Raises :class:`ValueError` with a short reason.
    """
    lowered = text.strip().lower()
    if lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    raise ValueError(
        f"expected a boolean (true/false, 1/0, yes/no, on/off), got {text!r}"
    )


def parse_text(name: str, text: str) -> Any:
    """Parse the text form of a field's value, as an environment variable holds it.

    Error handling:
        Raises :class:`ValueError` with a short reason.
    """
    field = _FIELDS[name]
    meta = field.metadata
    if _optional(field) and text.strip().lower() == "none":
        return None
    if meta["repeatable"]:
        if meta["split"] is not None:
            return meta["split"](text)
        # Several values in one variable: TRASGI_BIND="127.0.0.1:80,[::1]:80".
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(field.default, bool):
        return parse_switch(text)
    if meta["choices"] and text not in meta["choices"]:
        raise ValueError(f"expected one of {', '.join(meta['choices'])}, got {text!r}")
    parse = meta["parse"] or str
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"invalid value {text!r}") from None


#: The names Kubernetes gives the variables of a Service's link (a Service
#: named ``trasgi`` or ``trasgi-web``): ``TRASGI_SERVICE_HOST``,
#: ``TRASGI_SERVICE_PORT[_NAME]``, ``TRASGI_PORT_8000_TCP[_PROTO|_PORT|_ADDR]``.
_SERVICE_LINK_NAME = re.compile(
    r"TRASGI(_\w+?)?_(SERVICE_(HOST|PORT(_\w+)?)"
    r"|PORT_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)"
)
#: The value of a Service link's ``<NAME>_PORT`` variable: ``tcp://10.0.0.11:8000``.
_SERVICE_LINK_VALUE = re.compile(r"(tcp|udp|sctp)://\S+:\d+", re.IGNORECASE)


def is_service_link(key: str, text: str) -> bool:
    """Whether a variable looks like one of Kubernetes' Service links."""
    return bool(
        _SERVICE_LINK_NAME.fullmatch(key) or _SERVICE_LINK_VALUE.fullmatch(text.strip())
    )


@attrs.frozen
class EnvironReading:
    """What the ``TRASGI_*`` variables say.

    Attributes:
        values: Config field values, parsed.
        app: ``TRASGI_APP``, if set.
        warnings: One line per thing ignored, for the log at startup.
    """

    values: dict[str, Any]
    app: str | None
    warnings: tuple[str, ...]


def read_environ(
    environ: Mapping[str, str], *, given: Collection[str] = ()
) -> EnvironReading:
    """Read the ``TRASGI_*`` variables, less the options named in ``given``.

    An option in ``given`` (set on the command line) is not read at all, so
    a value the command line overrides cannot stop the server. Service-link
    variables and unknown names are ignored with a warning.

    Error handling:
        Raises :class:`ConfigError` for a known option whose value does not
        parse.
    """
    values: dict[str, Any] = {}
    app = None
    links: list[str] = []
    warnings: list[str] = []
    for key, text in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name in given:
            continue
        if name == APP_KEY:
            app = text
        elif is_service_link(key, text):
            links.append(key)
        elif name in _FIELDS:
            try:
                values[name] = parse_text(name, text)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        else:
            close = near_miss(name, [*_FIELDS, APP_KEY])
            hint = f" (did you mean {ENV_PREFIX + close.upper()!r}?)" if close else ""
            warnings.append(f"{key}: unknown option, ignored{hint}")
    if links:
        warnings.insert(0, _service_links_warning(links))
    return EnvironReading(values, app, tuple(warnings))


def _service_links_warning(names: list[str]) -> str:
    return (
        f"ignoring {', '.join(names)}: variables Kubernetes sets for a Service "
        "whose name starts with trasgi, not options (enableServiceLinks: false "
        "in the pod spec leaves them out)"
    )


def from_environ(environ: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """Read ``TRASGI_*`` variables; return the config values and the app, if set.

    What :func:`read_environ` ignores is logged as warnings on
    ``trasgi.error``.

    Error handling:
        Raises :class:`ConfigError` for a value that does not parse.
    """
    reading = read_environ(environ)
    for warning in reading.warnings:
        error_logger.warning("%s", warning)
    return reading.values, reading.app


#: Where the ``--env-file`` parser comes from.
DOTENV_HINT = "pip install -e '.[dotenv]' in a checkout of trasgi"


def load_env_file(path: str, source: str, environ: MutableMapping[str, str]) -> None:
    """Add the variables of a ``.env`` file to ``environ``.

    A variable already in ``environ`` keeps its value, as with python-dotenv's
    ``load_dotenv``: the file holds defaults, the deployment overrides them.
    The file's syntax is python-dotenv's (``KEY=value``, quotes, ``export``,
    comments, ``${OTHER}`` expansion).

    Error handling:
        Raises :class:`ConfigError`, naming ``source`` (``--env-file``,
        ``TRASGI_ENV_FILE``...), when python-dotenv is missing or the file
        cannot be read.
    """
    try:
        import dotenv
    except ImportError:
        raise ConfigError(f"{source} needs python-dotenv: {DOTENV_HINT}") from None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{source} {path}: cannot read: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source} {path}: not UTF-8 text") from None
    for key, value in dotenv.dotenv_values(stream=io.StringIO(text)).items():
        if value is not None:  # a bare KEY line sets nothing
            environ.setdefault(key, value)


def from_toml(path: str) -> tuple[dict[str, Any], str | None]:
    """Read a TOML file of options; return the config values and the app, if set.

    Keys are the field names, with ``_`` or ``-``; values have TOML types (a
    number for a number, ``true``/``false`` for a switch, ``"none"`` to unset
    an option that may be unset).

    Error handling:
        Raises :class:`ConfigError` when the file cannot be read or parsed, a
        key is unknown, or a value has the wrong type.
    """
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    app = None
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == APP_KEY and isinstance(value, str):
            app = value
        elif name in _FIELDS:
            values[name] = _typed(path, key, name, value)
        else:
            raise ConfigError(
                f"{path}: unknown option {key!r}{_suggest(name, [*_FIELDS, APP_KEY])}"
            )
    return values, app


def _typed(path: str, key: str, name: str, value: Any) -> Any:
    """Check a TOML value's type against the field's default and metadata."""
    field = _FIELDS[name]
    if isinstance(value, str) and value.lower() == "none" and _optional(field):
        return None
    if field.metadata["repeatable"]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {key} must be a list of strings, got {value!r}")
        return tuple(value)
    expected = _expected_type(field)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not expected:
        raise ConfigError(
            f"{path}: {key} must be {expected.__name__}, "
            f"got {type(value).__name__} {value!r}"
        )
    return value


def _optional(field: attrs.Attribute[Any]) -> bool:
    return "None" in str(field.type)


#: The Python type a TOML value must have, by the start of the field's type.
_TOML_TYPES: tuple[tuple[str, type], ...] = (
    ("bool", bool),
    ("int", int),
    ("float", float),
)


def _expected_type(field: attrs.Attribute[Any]) -> type:
    annotation = str(field.type)
    for prefix, kind in _TOML_TYPES:
        if annotation.startswith(prefix):
            return kind
    return str


def validated(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Check one source's values on their own, so errors name the source.

    Error handling:
        Raises :class:`ConfigError` prefixed with ``source``.
    """
    try:
        Config(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return values
