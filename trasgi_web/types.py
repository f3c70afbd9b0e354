"""The ASGI 3 types, for middleware and applications written against trasgi_web.

``Scope`` and ``Message`` are the dictionaries the ASGI specification
defines; ``Receive``, ``Send`` and ``ASGIApp`` the callables. A pure ASGI
middleware is typed with them::

    from trasgi_web.types import ASGIApp, Receive, Scope, Send

    class TimingMiddleware:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            await self.app(scope, receive, send)
"""

from ._types import ASGIApp as ASGIApp
from ._types import Message as Message
from ._types import Receive as Receive
from ._types import Scope as Scope
from ._types import Send as Send

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]
