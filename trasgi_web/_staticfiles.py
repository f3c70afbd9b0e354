"""StaticFiles: serve a directory, refusing every way out of it."""

from __future__ import annotations

import os
import stat

import trio

from ._files import FileResponse
from ._responses import PlainTextResponse, RedirectResponse, Response
from ._types import Receive, Scope, Send
from ._url import URL, route_path


class StaticFiles:
    """An ASGI application serving the files under ``directory``.

    Mount it: ``app.mount("/static", StaticFiles("static"), name="static")``.
    Files go through :class:`FileResponse`, so conditional and range
    requests work. Only ``GET`` and ``HEAD`` are served (405 otherwise).

    Requests are refused before the file system is touched when their path
    holds a ``..`` or ``.`` segment, a backslash, a NUL, or an encoded slash
    (``%2F``, ``%5C``): 404, as for any name that is not there. The resolved
    path (symlinks followed) must still lie inside ``directory``: a symlink
    pointing out is a 404 too.

    Args:
        directory: The directory to serve.
        index: File served for a directory (``index.html``); ``None`` serves
            no directories. A directory asked without its trailing slash is
            redirected (308) to it, so relative links resolve right.
        follow_symlinks: Whether symlinks inside ``directory`` that point
            inside it are served; with ``False``, any symlink is a 404.

    Error handling:
        ``ValueError`` at creation if ``directory`` is not a directory.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        index: str | None = "index.html",
        follow_symlinks: bool = True,
    ) -> None:
        self.directory = os.path.realpath(directory)
        if not os.path.isdir(self.directory):
            raise ValueError(
                f"StaticFiles directory {os.fspath(directory)!r} is not a directory"
            )
        self.index = index
        self.follow_symlinks = follow_symlinks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self._response(scope)
        await response(scope, receive, send)

    async def _response(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", 405, {"Allow": "GET, HEAD"})
        relative = _safe_relative_path(scope)
        if relative is None:
            return PlainTextResponse("Not Found", 404)
        found = await trio.to_thread.run_sync(self._lookup, relative)
        if found is None:
            return PlainTextResponse("Not Found", 404)
        full_path, is_dir = found
        if is_dir:
            url = URL.from_scope(scope)
            location = url.path + "/" + (f"?{url.query}" if url.query else "")
            return RedirectResponse(location, 308)
        return FileResponse(full_path)

    def _lookup(self, relative: str) -> tuple[str, bool] | None:
        """The file to serve and whether a redirect to ``dir/`` is due."""
        full_path = os.path.join(self.directory, relative)
        if not self._inside(full_path):
            return None
        try:
            info = os.stat(full_path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        if stat.S_ISDIR(info.st_mode):
            if self.index is None:
                return None
            if relative and not relative.endswith("/"):
                return full_path, True
            return self._lookup(os.path.join(relative, self.index))
        if not stat.S_ISREG(info.st_mode):
            return None
        return full_path, False

    def _inside(self, full_path: str) -> bool:
        if not self.follow_symlinks:
            current = self.directory
            for part in os.path.relpath(full_path, self.directory).split(os.sep):
                current = os.path.join(current, part)
                if os.path.islink(current):
                    return False
        real = os.path.realpath(full_path)
        return real == self.directory or real.startswith(self.directory + os.sep)


def _safe_relative_path(scope: Scope) -> str | None:
    """The path below the mount, or ``None`` if it tries to leave the directory."""
    raw_path = scope.get("raw_path")
    if raw_path is not None:
        # An encoded slash would be a separator once decoded: refuse it
        # rather than guess what the client meant.
        lowered = raw_path.lower()
        if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered:
            return None
    path = route_path(scope)
    if "\\" in path or "\0" in path:
        return None
    segments = path.split("/")[1:]
    if any(segment in (".", "..") for segment in segments):
        return None
    if any(segment == "" for segment in segments[:-1]):
        return None  # "//" would let os.path.join restart from the root
    return "/".join(segments)
