"""TLS: the server's SSL context, the handshake, and what the scope reports.

The standard library's :mod:`ssl` does the cryptography and trio's
:class:`trio.SSLStream` runs it over each accepted stream. This module builds
the one :class:`ssl.SSLContext` of a server from the ``ssl_*`` options (with
a one-line error for each way the files can be wrong), completes each
handshake under a deadline at the edge, and reads what the ASGI TLS
extension reports once the handshake is done.
"""

from __future__ import annotations

import re
import ssl
import weakref
from collections.abc import Sequence
from typing import Any

import trio

from trasgi._config.config import DEFAULT_SSL_CIPHERS, Config
from trasgi._edge.x509 import DERError, subject_rfc4514
from trasgi._observe.logs import error_logger
from trasgi._protocol.alpn import ALPN_H2, ALPN_HTTP11
from trasgi._protocol.scope import TLSInfo


def alpn_protocols(config: Config) -> list[str]:
    """What the server offers in ALPN, most preferred first.

    h2 when HTTP/2 is on (RFC 9113 section 3.2), HTTP/1.1 always.
    """
    return [ALPN_H2, ALPN_HTTP11] if config.http2 else [ALPN_HTTP11]


CERT_REQUIREMENTS = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}

#: The protocol version numbers of RFC 8446 section 4.2.1 and its
#: predecessors, as the ASGI TLS extension reports them.
TLS_VERSION_NUMBERS = {
    "TLSv1": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}

_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)


class TLSConfigError(ValueError):
    """The TLS options cannot make a working server context.

    The message is one line naming the option and the file at fault.
    """


class ServerContext(ssl.SSLContext):
    """The server's SSL context, with what the TLS extension needs from it.

    Attributes:
        certificate_pem: The server's own certificate, PEM: ``ssl`` cannot
            say which certificate a connection presented, but a server
            context has exactly one.
        suite_numbers: IANA cipher suite numbers by OpenSSL suite name.
    """

    certificate_pem: str | None = None
    suite_numbers: dict[str, int]


def build_server_context(config: Config) -> ServerContext | None:
    """Build the SSL context the ``ssl_*`` options describe; ``None`` without TLS.

    The context refuses TLS below 1.2 (RFC 8996 deprecates 1.0 and 1.1),
    offers ALPN ``http/1.1``, uses ``ssl_ciphers`` for TLS 1.2, and asks for
    client certificates as ``ssl_cert_reqs`` says.

    Error handling:
        Raises :class:`TLSConfigError` for a file that cannot be read, a file
        without a certificate or key, a wrong or missing key password, a key
        that does not match the certificate, a cipher list that selects
        nothing, or options that do nothing (client-certificate options
        without ``ssl_certfile``, a CA without ``ssl_cert_reqs``).
    """
    if config.ssl_certfile is None:
        _refuse_options_without_certificate(config)
        return None
    context = ServerContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(alpn_protocols(config))
    try:
        context.set_ciphers(config.ssl_ciphers)
    except ssl.SSLError:
        raise TLSConfigError(
            f"--ssl-ciphers {config.ssl_ciphers!r} selects no cipher suite"
        ) from None
    context.certificate_pem = _load_certificate(context, config.ssl_certfile, config)
    _load_client_verification(context, config)
    context.suite_numbers = {
        suite["name"]: suite["id"] & 0xFFFF for suite in context.get_ciphers()
    }
    return context


def _refuse_options_without_certificate(config: Config) -> None:
    given = [
        option
        for option, value, default in (
            ("--ssl-keyfile", config.ssl_keyfile, None),
            ("--ssl-keyfile-password", config.ssl_keyfile_password, None),
            ("--ssl-ca-certs", config.ssl_ca_certs, None),
            ("--ssl-cert-reqs", config.ssl_cert_reqs, "none"),
            ("--ssl-ciphers", config.ssl_ciphers, DEFAULT_SSL_CIPHERS),
        )
        if value != default
    ]
    if given:
        raise TLSConfigError(f"{given[0]} needs --ssl-certfile (TLS is off without it)")


def _read(option: str, path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            return file.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise TLSConfigError(f"cannot read {option} {path}: {reason}") from None


def _load_certificate(context: ssl.SSLContext, certfile: str, config: Config) -> str:
    """Load the certificate chain and key; return the certificate's PEM."""
    certificates = _PEM_CERTIFICATE.findall(_read("--ssl-certfile", certfile))
    if not certificates or not all(map(_is_certificate, certificates)):
        raise TLSConfigError(f"--ssl-certfile {certfile}: no valid PEM certificate")
    keyfile = config.ssl_keyfile
    if keyfile is not None:
        _read("--ssl-keyfile", keyfile)  # a clear error for a missing file
    asked = False

    def password() -> str:
        # Called only for an encrypted key. Without this callback OpenSSL
        # would prompt on the terminal, which a server must never do.
        nonlocal asked
        asked = True
        return config.ssl_keyfile_password or ""

    try:
        context.load_cert_chain(certfile, keyfile, password)
    except ssl.SSLError as exc:
        raise TLSConfigError(_key_error(exc, config, asked)) from None
    return ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(certificates[0]))


def _is_certificate(pem: str) -> bool:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cadata=pem)
    except (ssl.SSLError, ValueError):
        return False
    return True


def _key_error(exc: ssl.SSLError, config: Config, asked_password: bool) -> str:
    key_option = "--ssl-keyfile" if config.ssl_keyfile else "--ssl-certfile"
    keyfile = config.ssl_keyfile or config.ssl_certfile
    if exc.reason == "KEY_VALUES_MISMATCH":
        return (
            f"the key in {key_option} {keyfile} does not match the certificate "
            f"in --ssl-certfile {config.ssl_certfile}"
        )
    if asked_password and config.ssl_keyfile_password:
        return f"wrong --ssl-keyfile-password for {key_option} {keyfile}"
    if asked_password:
        return f"{key_option} {keyfile} is encrypted: give --ssl-keyfile-password"
    if config.ssl_keyfile is None:
        return f"--ssl-certfile {keyfile} holds no private key: give --ssl-keyfile"
    return f"--ssl-keyfile {keyfile}: no valid PEM private key"


def _load_client_verification(context: ssl.SSLContext, config: Config) -> None:
    cafile = config.ssl_ca_certs
    if config.ssl_cert_reqs == "none":
        if cafile is not None:
            raise TLSConfigError(
                "--ssl-ca-certs is only used to verify client certificates: "
                "give --ssl-cert-reqs optional or required"
            )
        return
    if cafile is None:
        raise TLSConfigError(
            f"--ssl-cert-reqs {config.ssl_cert_reqs} needs --ssl-ca-certs, the CA "
            "certificates client certificates must chain to"
        )
    _read("--ssl-ca-certs", cafile)
    try:
        context.load_verify_locations(cafile=cafile)
    except ssl.SSLError:
        loaded = False
    else:
        loaded = context.cert_store_stats()["x509"] > 0
    if not loaded:
        raise TLSConfigError(f"--ssl-ca-certs {cafile}: no valid PEM certificate")
    context.verify_mode = CERT_REQUIREMENTS[config.ssl_cert_reqs]


def with_tls(
    listeners: Sequence[trio.SocketListener], context: ssl.SSLContext | None
) -> list[trio.abc.Listener[trio.abc.Stream]]:
    """The listeners, serving TLS on each when there is a context.

    The one place where a server's listeners become TLS listeners: the
    command line, ``serve_tcp``, the worker processes and the gunicorn worker
    all come here with what :func:`build_server_context` gave them.
    """
    if context is None:
        return list(listeners)
    return list(wrap_listeners(listeners, context))


def wrap_listeners(
    listeners: Sequence[trio.SocketListener], context: ssl.SSLContext
) -> list[trio.SSLListener[trio.SocketStream]]:
    """Serve TLS on each listener.

    ``https_compatible``: HTTP clients often close a connection without a TLS
    ``close_notify``; RFC 2818 section 2.2 accepts that, since HTTP frames its
    messages itself, so a close without one is a clean end, not an attack.
    """
    wrapped = []
    for listener in listeners:
        tls = trio.SSLListener(listener, context, https_compatible=True)
        _CONTEXTS[tls] = context
        wrapped.append(tls)
    return wrapped


#: The contexts of the TLS listeners made by :func:`wrap_listeners`, so that
#: the accept loop can take their sockets directly and wrap each one the
#: same way (trio keeps a listener's context private).
_CONTEXTS: weakref.WeakKeyDictionary[trio.SSLListener[Any], ssl.SSLContext] = (
    weakref.WeakKeyDictionary()
)


def context_of(listener: trio.SSLListener[Any]) -> ssl.SSLContext | None:
    """The context of a TLS listener made by :func:`wrap_listeners`, else None."""
    return _CONTEXTS.get(listener)


async def complete_handshake(
    stream: trio.SSLStream[Any], within: float, peer: str
) -> bool:
    """Complete the TLS handshake within ``within`` seconds.

    Returns whether it completed. A failed or timed-out handshake is the
    peer's doing (a plain-HTTP client, an old TLS version, no client
    certificate, a client that sends nothing): it is logged at debug level,
    without a traceback, and the stream is closed.

    Resource handling:
        On failure the stream is closed before returning.
    """
    reason = f"no handshake within {within:g}s"
    with trio.move_on_after(within):
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            reason = _describe_failure(exc.__cause__ or exc)
        else:
            return True
    error_logger.debug("TLS handshake with %s failed: %s", peer, reason)
    await trio.aclose_forcefully(stream)
    return False


def _describe_failure(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    return str(exc) or type(exc).__name__


def tls_info(stream: trio.SSLStream[Any]) -> TLSInfo:
    """What the ASGI TLS extension reports about a stream after its handshake.

    ``client_cert_chain`` holds the client's own certificate only: before
    Python 3.13, :mod:`ssl` does not give the intermediates a client sent.
    ``client_cert_error`` is always ``None``: :mod:`ssl` ends the handshake
    when a client certificate fails verification, so a connection with a
    failed certificate never reaches the application.
    """
    context = stream.context
    certificate_pem = getattr(context, "certificate_pem", None)
    client_der: bytes | None = stream.getpeercert(binary_form=True)
    cipher = stream.cipher()
    version = stream.version()
    return TLSInfo(
        server_cert=certificate_pem,
        client_cert_chain=(
            (ssl.DER_cert_to_PEM_cert(client_der),) if client_der else ()
        ),
        client_cert_name=_subject_name(client_der),
        tls_version=TLS_VERSION_NUMBERS.get(version) if version else None,
        cipher_suite=_suite_number(context, cipher[0]) if cipher else None,
    )


def _subject_name(der: bytes | None) -> str | None:
    if not der:
        return None
    try:
        return subject_rfc4514(der)
    except DERError:
        return None  # ssl accepted it, so this cannot happen; unknown, not fatal


def _suite_number(context: ssl.SSLContext, name: str) -> int | None:
    numbers: dict[str, int] | None = getattr(context, "suite_numbers", None)
    if numbers is None:  # a context made elsewhere (serve_listeners)
        numbers = {s["name"]: s["id"] & 0xFFFF for s in context.get_ciphers()}
    return numbers.get(name)
