"""Configuration from a TOML file and ``TRASGI_*`` environment variables.

The same names everywhere, all derived from :class:`~trasgi.Config`'s
fields: ``--timeout-keep-alive`` on the command line, ``TRASGI_TIMEOUT_KEEP_ALIVE``
in the environment, ``timeout_keep_alive`` (or ``timeout-keep-alive``) in the
file. Precedence: command line, then environment, then file, then defaults.
Unknown names and bad values are refused with a message naming the source.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from trasgi._config.config import Config

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


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


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
        # Several values in one variable: TRASGI_BIND="127.0.0.1:80,[::1]:80".
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(field.default, bool):
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError(
            f"expected a boolean (true/false, 1/0, yes/no, on/off), got {text!r}"
        )
    if meta["choices"] and text not in meta["choices"]:
        raise ValueError(f"expected one of {', '.join(meta['choices'])}, got {text!r}")
    parse = meta["parse"] or str
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"invalid value {text!r}") from None


def from_environ(environ: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """Read ``TRASGI_*`` variables; return the config values and the app, if set.

    Error handling:
        Raises :class:`ConfigError` for an unknown ``TRASGI_`` variable or a
        value that does not parse.
    """
    values: dict[str, Any] = {}
    app = None
    known = [ENV_PREFIX + name.upper() for name in (*_FIELDS, APP_KEY)]
    for key, text in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == APP_KEY:
            app = text
        elif name in _FIELDS:
            try:
                values[name] = parse_text(name, text)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc}") from None
        else:
            raise ConfigError(f"{key}: unknown option{_suggest(key, known)}")
    return values, app


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
