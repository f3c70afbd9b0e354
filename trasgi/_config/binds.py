"""Where to listen: the ``--bind`` values and their parser.

The parser lives with the configuration that validates these values; the
edge layer opens what they describe.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Bind:
    """One place to listen, parsed from a ``--bind`` value."""

    kind: str  # "tcp", "unix" or "fd"
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1


def parse_bind(text: str) -> Bind:
    """Parse ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH`` or ``fd://N``.

    Error handling:
        Raises :class:`ValueError` saying which forms are accepted.
    """
    if text.startswith("unix:") and len(text) > len("unix:"):
        return Bind("unix", path=text[len("unix:") :])
    if text.startswith("fd://"):
        number = text[len("fd://") :]
        if number.isdigit():
            return Bind("fd", fd=int(number))
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and int(port) <= 65535 and host:
        bracketed = host.startswith("[") and host.endswith("]")
        if bracketed:
            host = host[1:-1]
        # An IPv6 address must be bracketed: "::1:80" could end anywhere.
        ambiguous = ":" in host and not bracketed
        if host and "[" not in host and "]" not in host and not ambiguous:
            return Bind("tcp", host=host, port=int(port))
    raise ValueError(
        f"bind must be HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N, got {text!r}"
    )
