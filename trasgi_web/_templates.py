"""Jinja2Templates: HTML pages from Jinja2 templates (``trasgi[templates]``).

Rendering happens when the response is sent, piece by piece
(``Template.generate``), with a trio checkpoint every
:data:`PIECES_PER_CHECKPOINT` pieces: a large page (a long loop) lets other
requests run while it renders, and the response is still sent whole, with
its ``Content-Length``, or not at all. An error in a template is raised
before anything is sent, so the client gets a 500, and Jinja2's traceback
names the template file and line (shown on the debug page).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import trio

from ._connection import HTTPConnection
from ._csrf import csrf_token
from ._flash import get_flashed_messages
from ._responses import HTMLResponse
from ._types import Receive, Scope, Send

if TYPE_CHECKING:
    import jinja2

#: Output pieces rendered between two checkpoints.
PIECES_PER_CHECKPOINT = 64

ContextProcessor = Callable[[HTTPConnection], Mapping[str, Any]]
Directory = str | os.PathLike[str]


class Jinja2Templates:
    """A Jinja2 environment that renders templates into responses.

    Autoescaping is on for every template: a value is HTML-escaped unless
    marked safe. Templates get ``request``, the context given, the
    context processors' values, and the functions ``url_for(name,
    **params)``, ``csrf_token()`` and ``get_flashed_messages(...)``.

    Args:
        directory: Where templates are found (one directory or several);
            omit it to pass ``env``.
        env: A Jinja2 environment of your own, to which the functions are
            added.
        context_processors: Functions of the request returning more
            template values, called for every response.

    Error handling:
        ``ImportError`` naming the extra when Jinja2 is not installed;
        ``ValueError`` when neither or both of ``directory`` and ``env`` are
        given.
    """

    def __init__(
        self,
        directory: Directory | Sequence[Directory] | None = None,
        *,
        env: jinja2.Environment | None = None,
        context_processors: Sequence[ContextProcessor] = (),
    ) -> None:
        jinja = _import_jinja2()
        if (directory is None) == (env is None):
            raise ValueError("Jinja2Templates needs either directory or env")
        if env is None:
            env = jinja.Environment(
                loader=jinja.FileSystemLoader(directory),
                autoescape=True,
            )
        # pass_context: these receive the template's context, where the
        # request is.
        env.globals.setdefault("url_for", jinja.pass_context(_url_for))
        env.globals.setdefault("csrf_token", jinja.pass_context(_csrf_token))
        env.globals.setdefault(
            "get_flashed_messages", jinja.pass_context(_get_flashed_messages)
        )
        self.env = env
        self.context_processors = list(context_processors)

    def get_template(self, name: str) -> jinja2.Template:
        """The template ``name``, loaded (and cached) by the environment."""
        return self.env.get_template(name)

    # Starlette's spelling, which users know.
    def TemplateResponse(
        self,
        request: HTTPConnection,
        name: str,
        context: Mapping[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> TemplateResponse:
        """A response rendering template ``name`` with ``context``.

        Error handling:
            ``jinja2.TemplateNotFound`` at once for a missing template;
            errors inside the template when the response is sent.
        """
        values: dict[str, Any] = {}
        for processor in self.context_processors:
            values.update(processor(request))
        values.update(context or {})
        values["request"] = request
        return TemplateResponse(
            self.get_template(name), values, status_code, headers, media_type
        )


class TemplateResponse(HTMLResponse):
    """An HTML response whose body a template renders as it is sent.

    Attributes:
        template: The Jinja2 template.
        context: The values it renders with (``request`` included).
    """

    def __init__(
        self,
        template: jinja2.Template,
        context: dict[str, Any],
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
    ) -> None:
        super().__init__(None, status_code, headers, media_type)
        self.template = template
        self.context = context

    async def render_body(self) -> bytes:
        """Render the template into :attr:`body` (once) and return it."""
        if not self.body:
            pieces: list[str] = []
            for count, piece in enumerate(self.template.generate(self.context), 1):
                pieces.append(piece)
                if count % PIECES_PER_CHECKPOINT == 0:
                    await trio.lowlevel.checkpoint()
            self.body = "".join(pieces).encode(self.charset)
            self.headers["content-length"] = str(len(self.body))
        return self.body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.render_body()
        await super().__call__(scope, receive, send)


def _import_jinja2() -> Any:
    try:
        import jinja2
    except ImportError as exc:  # pragma: no cover: the test extra installs it
        raise ImportError(
            "Jinja2Templates needs Jinja2: pip install -e '.[templates]'"
            " in a checkout of trasgi"
        ) from exc
    return jinja2


def _request(context: Any) -> HTTPConnection:
    request: HTTPConnection = context["request"]
    return request


def _url_for(context: Any, name: str, /, **params: Any) -> str:
    return _request(context).url_for(name, **params)


def _csrf_token(context: Any) -> str:
    return csrf_token(_request(context))


def _get_flashed_messages(context: Any, **options: Any) -> list[Any]:
    return get_flashed_messages(_request(context), **options)
