"""The names of the ASGI response extensions trasgi_web uses, in one place.

An extension is used only where the server lists it in
``scope["extensions"]``; elsewhere the framework falls back (reads the file
itself, sends no hint, drops no trailers it never announced).
"""

from __future__ import annotations

EARLY_HINT = "http.response.early_hint"
TRAILERS = "http.response.trailers"
PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
#: The extensions whose body the server reads from a file itself.
FILE_SENDS = (PATHSEND, ZEROCOPYSEND)
