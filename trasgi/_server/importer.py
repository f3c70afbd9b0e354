"""Loading an application from a ``"module:attribute"`` string.

Every way this can go wrong becomes an :class:`AppLoadError` with one line
that says what to fix; the command line prints it instead of a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import os
import site
import sys
import sysconfig
import traceback
from pathlib import Path
from typing import Any, cast

from trasgi._asgi import ASGIApp
from trasgi._errors import AppLoadError
from trasgi._observe.logs import error_logger


def load_app(spec: str, *, factory: bool = False, app_dir: str = ".") -> ASGIApp:
    """Import ``module:attribute`` (dotted attributes allowed) and return the app.

    Args:
        spec: ``"package.module:attribute"``.
        factory: Call the attribute with no arguments to get the application.
        app_dir: Directory put first on ``sys.path`` before importing.

    Error handling:
        Raises :class:`AppLoadError` with a one-line explanation when the spec
        is malformed, the module or attribute is missing, importing the module
        raised, the factory failed, or the result is not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(
            f"application must be given as MODULE:ATTRIBUTE (like examples.hello:app), "
            f"got {spec!r}"
        )
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module = _import(module_name)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AppLoadError(
                f"module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if factory:
        target = _call_factory(target, spec)
    if not callable(target):
        raise AppLoadError(
            f"{spec!r} is not callable (it is {type(target).__name__}); an ASGI "
            "application is an async callable taking (scope, receive, send)"
        )
    if not factory and _looks_like_factory(target):
        raise AppLoadError(
            f"{spec!r} takes no arguments, so it looks like an application factory; "
            "pass --factory to call it"
        )
    return cast(ASGIApp, target)


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise AppLoadError(
                f"could not import module {module_name!r}: no module named "
                f"{exc.name!r} (check the name and --app-dir)"
            ) from None
        raise AppLoadError(_raised_while("importing", module_name, exc)) from None
    except Exception as exc:
        raise AppLoadError(_raised_while("importing", module_name, exc)) from None


def _call_factory(target: Any, spec: str) -> Any:
    if not callable(target):
        raise AppLoadError(f"factory {spec!r} is not callable")
    try:
        return target()
    except Exception as exc:
        raise AppLoadError(_raised_while("calling the factory", spec, exc)) from None


def _looks_like_factory(target: Any) -> bool:
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return False
    return len(parameters) == 0


def _raised_while(doing: str, what: str, exc: BaseException) -> str:
    # The one-line message hides the traceback; --log-level debug shows it.
    error_logger.debug("%s %r raised:", doing, what, exc_info=exc)
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}, line {exc.lineno})"
    elif frames:
        frame = _own_frame(frames)
        where = f" ({frame.filename}, line {frame.lineno})"
    return f"{doing} {what!r} raised {type(exc).__name__}: {exc}{where}"


def _own_frame(frames: traceback.StackSummary) -> traceback.FrameSummary:
    """The innermost frame of the user's own code, else the innermost one.

    ``os.environ["MISSING"]`` fails inside the standard library (its frame
    is ``<frozen os>``); the line to fix is the one that asked for it.
    """
    for frame in reversed(frames):
        if not _is_library(frame.filename):
            return frame
    return frames[-1]


def _library_paths() -> tuple[str, ...]:
    """The standard library's, site-packages' and trasgi's own directories."""
    paths = sysconfig.get_paths()
    found = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(site.getsitepackages())
    found.add(str(Path(__file__).parent.parent))  # trasgi, which called the app
    return tuple(os.path.join(os.path.realpath(path), "") for path in found)


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen os>, <string>: no file of the user's
        return True
    return os.path.realpath(filename).startswith(_library_paths())
