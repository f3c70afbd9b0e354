"""systemd socket activation: listening sockets passed by the service manager.

``sd_listen_fds(3)``: systemd opens the listening sockets of a ``.socket``
unit and passes them to the service as file descriptors 3, 4, ..., with
``LISTEN_FDS`` saying how many, ``LISTEN_PID`` naming the process they are
meant for and ``LISTEN_FDNAMES`` their ``FileDescriptorName=``. The parser of
those variables here is pure; ``listeners.py`` adopts the sockets.

Outside systemd none of these variables is set, and nothing is passed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping, MutableMapping

import attrs

#: The first passed descriptor: 0, 1 and 2 are the standard streams.
SD_LISTEN_FDS_START = 3
#: The variables of socket activation, unset once read (``sd_listen_fds(1)``
#: does the same) so that processes the application starts do not take the
#: sockets for theirs.
LISTEN_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
#: The name systemd gives a socket without ``FileDescriptorName=``.
UNNAMED = "unknown"
#: ``sd_listen_fds`` keeps the last descriptor number within a C int.
_MAX_FDS = 2**31 - 1 - SD_LISTEN_FDS_START


class SocketActivationError(OSError):
    """The socket-activation variables or the sockets they name are unusable.

    An :class:`OSError` (``EINVAL``, as ``sd_listen_fds`` returns), so that it
    is reported as any other failure to listen.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.EINVAL, message)


@attrs.frozen
class PassedSocket:
    """One socket systemd passed: its descriptor and its name."""

    fd: int
    name: str = UNNAMED

    def __str__(self) -> str:
        return f"file descriptor {self.fd} ({self.name!r})"


def parse_listen_fds(environ: Mapping[str, str], pid: int) -> tuple[PassedSocket, ...]:
    """Read the sockets systemd passed to process ``pid`` from ``environ``.

    Follows ``sd_listen_fds_with_names``: nothing when ``LISTEN_PID`` is
    unset or names another process (the variables were inherited from a
    parent that was activated), otherwise ``LISTEN_FDS`` descriptors from 3
    on, named by the colon-separated ``LISTEN_FDNAMES`` (``"unknown"`` when
    it is unset).

    Error handling:
        :class:`SocketActivationError` naming the variable when a number is
        malformed, ``LISTEN_FDS`` is 0, or ``LISTEN_FDNAMES`` names another
        number of sockets.
    """
    pid_text = environ.get("LISTEN_PID")
    if pid_text is None:
        return ()
    if not is_ascii_number(pid_text):
        raise SocketActivationError(
            f"LISTEN_PID must be a process id, got {pid_text!r}"
        )
    count_text = environ.get("LISTEN_FDS")
    if int(pid_text) != pid or count_text is None:
        return ()
    if not is_ascii_number(count_text) or not 0 < int(count_text) <= _MAX_FDS:
        raise SocketActivationError(
            f"LISTEN_FDS must be a number of sockets (1 or more), got {count_text!r}"
        )
    count = int(count_text)
    names_text = environ.get("LISTEN_FDNAMES")
    names = [UNNAMED] * count if names_text is None else names_text.split(":")
    if len(names) != count:
        raise SocketActivationError(
            f"LISTEN_FDNAMES names {len(names)} sockets but LISTEN_FDS is {count}"
        )
    return tuple(
        PassedSocket(SD_LISTEN_FDS_START + index, name)
        for index, name in enumerate(names)
    )


def take_listen_fds(
    environ: MutableMapping[str, str] = os.environ,
) -> tuple[PassedSocket, ...]:
    """Parse the socket-activation variables of this process, then unset them.

    Error handling:
        As :func:`parse_listen_fds`; the variables are unset either way.
    """
    try:
        return parse_listen_fds(environ, os.getpid())
    finally:
        for name in LISTEN_VARIABLES:
            environ.pop(name, None)


def is_ascii_number(text: str) -> bool:
    # str.isdigit() alone admits other scripts' digits, which int() reads.
    return text.isascii() and text.isdigit()
