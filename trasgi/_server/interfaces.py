"""Which interface an application speaks, and making every kind ASGI 3.

The server itself speaks ASGI 3 only. ``--interface`` says how to call the
application: ``asgi3`` as it is, ``asgi2`` through :class:`ASGI2App`, ``wsgi``
through :class:`~trasgi._server.wsgi.WSGIApp`, and ``auto`` reads the kind
from the callable's signature once, when the server starts:

* a class whose constructor takes one argument (the scope), and whose
  instances have an ``async __call__(receive, send)``: ASGI 2;
* a callable taking three arguments (scope, receive, send): ASGI 3;
* a plain (not async) callable taking two arguments (environ,
  start_response): WSGI (PEP 3333).

A signature that fits more than one kind, or none, is refused with one line
naming ``--interface``: guessing would fail later, on the first request, with
an error that no longer says why.
"""

from __future__ import annotations

import enum
import inspect
from typing import Any

from trasgi._asgi import ASGIApp, Receive, Scope, Send
from trasgi._errors import AppLoadError
from trasgi._server.wsgi import WSGIApp


class Interface(enum.Enum):
    """The values of ``--interface``."""

    AUTO = "auto"
    ASGI3 = "asgi3"
    ASGI2 = "asgi2"
    WSGI = "wsgi"


class ASGI2App:
    """An ASGI 3 application made of an ASGI 2 one (a "double callable").

    ASGI 2 applications are called with the scope alone and return an
    instance, which is then awaited with ``(receive, send)``.
    """

    __slots__ = ("app",)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Make the instance for ``scope`` and run it."""
        instance = self.app(scope)
        await instance(receive, send)


#: The adapters this module makes: already ASGI 3, never wrapped twice.
_ADAPTERS = (ASGI2App, WSGIApp)


def as_asgi3(app: Any, interface: str = "auto") -> ASGIApp:
    """Return ``app`` as an ASGI 3 application, according to ``interface``.

    Args:
        app: The application, of the kind ``interface`` names.
        interface: ``"auto"``, ``"asgi3"``, ``"asgi2"`` or ``"wsgi"``.

    Error handling:
        Raises :class:`AppLoadError` with one line naming ``--interface``
        when ``interface`` is ``"auto"`` and the signature does not tell,
        or when the signature plainly speaks another interface than the
        one given.
    """
    if isinstance(app, _ADAPTERS):
        return app
    kind = Interface(interface)
    if kind is Interface.AUTO:
        kind = detect(app)
    else:
        _check_chosen(app, kind)
    if kind is Interface.ASGI2:
        return ASGI2App(app)
    if kind is Interface.WSGI:
        return WSGIApp(app)
    return app  # type: ignore[no-any-return]


def detect(app: Any) -> Interface:
    """The interface ``app``'s signature shows.

    Error handling:
        Raises :class:`AppLoadError` when the signature fits no kind or
        several.
    """
    signature = _signature(app)
    if signature is None:
        # Some callables (C extensions, some builtins) have no signature to
        # read; ASGI 3 is what trasgi assumed for every application before
        # --interface existed, so they keep working as they did.
        return Interface.ASGI3
    fits = _fits(app, signature)
    if len(fits) == 1:
        return fits[0]
    found = "fits both ASGI 3 and WSGI" if fits else "fits no interface"
    raise AppLoadError(
        f"cannot tell which interface {_name(app)}{signature} speaks "
        f"(it {found}); pass --interface asgi3, asgi2 or wsgi"
    )


def _check_chosen(app: Any, kind: Interface) -> None:
    """Refuse an ``--interface`` the signature plainly contradicts.

    Only a signature that fits another kind and not this one is refused
    (a Flask application with ``--interface asgi3``), at startup, rather
    than every request failing with a ``TypeError`` about arguments. A
    signature that fits nothing (an ASGI 2 factory function) is trusted.

    Error handling:
        Raises :class:`AppLoadError` naming the kind the signature fits.
    """
    signature = _signature(app)
    if signature is None:
        return
    fits = _fits(app, signature)
    if fits and kind not in fits:
        shown = " or ".join(fit.value for fit in fits)
        raise AppLoadError(
            f"--interface {kind.value}, but {_name(app)}{signature} is called "
            f"as {shown}; pass --interface {fits[0].value} (or auto)"
        )


def _signature(app: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(app)
    except (TypeError, ValueError):
        return None


def _fits(app: Any, signature: inspect.Signature) -> list[Interface]:
    if inspect.isclass(app):
        return _class_fits(app, signature)
    return _callable_fits(app, signature)


def _name(app: Any) -> str:
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    return str(name)


def _class_fits(app: type, signature: inspect.Signature) -> list[Interface]:
    call = getattr(app, "__call__", None)  # noqa: B004 - the instances' method
    if _accepts(signature, 1) and inspect.iscoroutinefunction(call):
        return [Interface.ASGI2]
    if _accepts(signature, 3):
        return [Interface.ASGI3]  # an awaitable class: App(scope, receive, send)
    return []


def _callable_fits(app: Any, signature: inspect.Signature) -> list[Interface]:
    fits = []
    if _accepts(signature, 3):
        fits.append(Interface.ASGI3)
    # A WSGI application is synchronous: an async callable is never one.
    if _accepts(signature, 2) and not _is_async(app):
        fits.append(Interface.WSGI)
    return fits


def _is_async(app: Any) -> bool:
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
        getattr(app, "__call__", None)  # noqa: B004 - an instance's own method
    )


def _accepts(signature: inspect.Signature, count: int) -> bool:
    """Whether ``count`` positional arguments bind to ``signature``."""
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True
