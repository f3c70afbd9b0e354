"""TLS over loopback, with certificates made by trustme and real TLS clients.

The server is the config-driven ``serve`` (the command line's path); the
clients are httpx, trio's own SSL streams (to see the negotiated protocol,
ALPN and cipher from the client's side), the websockets library and, for
the startup errors, the command line in a subprocess.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import shlex
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.sync.client import connect

import trasgi
from trasgi import Config
from trasgi._config.config import DEFAULT_SSL_CIPHERS
from trasgi._edge.tls import TLSConfigError, build_server_context
from trasgi._edge.x509 import DERError, subject_rfc4514
from trasgi._protocol.scope import ConnectionInfo, TLSInfo, build_http_scope
from trasgi._server.serve import serve

from ..helpers import HANG, Receive, Send
from ..ops.test_cli import read_until

ROOT = Path(__file__).resolve().parents[2]
HOW_TO = ROOT / "docs" / "how-to" / "tls.md"

#: IANA TLS cipher suite numbers (the "TLS Cipher Suites" registry), as an
#: independent check of the numbers the server derives from OpenSSL.
IANA_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
}
#: Mozilla's "intermediate" TLS 1.2 suites (ssl-config.mozilla.org, v5.7).
MOZILLA_INTERMEDIATE_TLS12 = {
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "DHE-RSA-AES128-GCM-SHA256",
    "DHE-RSA-AES256-GCM-SHA384",
    "DHE-RSA-CHACHA20-POLY1305",
}


@attrs.frozen
class Certificates:
    """A CA, the server's files, and a client certificate it signed."""

    ca: trustme.CA
    certfile: str
    keyfile: str
    cafile: str
    client: trustme.LeafCert
    server_pem: str


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile, cafile = (
        directory / name for name in ("server.pem", "server.key", "ca.pem")
    )
    server.cert_chain_pems[0].write_to_path(str(certfile))
    server.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    client = ca.issue_cert("alice@example.org", common_name="alice")
    return Certificates(
        ca,
        str(certfile),
        str(keyfile),
        str(cafile),
        client,
        server.cert_chain_pems[0].bytes().decode(),
    )


async def scope_echo(scope: Any, receive: Receive, send: Send) -> None:
    """Answer with the parts of the scope these tests look at, as JSON."""
    body = json.dumps(
        {
            "scheme": scope["scheme"],
            "tls": scope["extensions"].get("tls"),
        }
    ).encode()
    length = str(len(body)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", length)],
        }
    )
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(
    certs: Certificates, app: Any = scope_echo, **options: Any
) -> AsyncIterator[int]:
    """Serve ``app`` with TLS on a free loopback port; yield the port."""
    options.setdefault("ssl_certfile", certs.certfile)
    options.setdefault("ssl_keyfile", certs.keyfile)
    config = Config(lifespan="off", port=0, **options)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=stop.wait)
        )
        assert isinstance(listeners[0], trio.SSLListener)
        socket_listener = listeners[0].transport_listener
        assert isinstance(socket_listener, trio.SocketListener)
        yield socket_listener.socket.getsockname()[1]
        stop.set()


def client_context(certs: Certificates, *, with_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    certs.ca.configure_trust(context)
    if with_cert:
        certs.client.configure_cert(context)
    return context


async def get_json(port: int, context: ssl.SSLContext) -> Any:
    async with httpx.AsyncClient(verify=context, timeout=HANG) as client:
        response = await client.get(f"https://localhost:{port}/")
    assert response.status_code == 200
    return response.json()


async def raw_exchange(
    port: int, context: ssl.SSLContext
) -> tuple[trio.SSLStream[trio.SocketStream], Any]:
    """One request over trio's SSL stream; return the stream and the JSON."""
    with trio.fail_after(HANG):
        stream = await trio.open_ssl_over_tcp_stream(
            "127.0.0.1", port, ssl_context=context, https_compatible=True
        )
        try:
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
            received = b""
            while not received.endswith(b"}"):  # the JSON body's end
                chunk = await stream.receive_some()
                assert chunk, received
                received += chunk
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    return stream, json.loads(received.partition(b"\r\n\r\n")[2])


def pem_to_der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


async def test_https_scope_has_the_tls_extension(certs: Certificates) -> None:
    async with serving(certs) as port:
        seen = await get_json(port, client_context(certs))
    assert seen["scheme"] == "https"
    tls = seen["tls"]
    assert pem_to_der(tls["server_cert"]) == pem_to_der(certs.server_pem)
    assert tls["client_cert_chain"] == []
    assert tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] in IANA_SUITES.values()


async def test_version_cipher_and_alpn_as_the_client_sees_them(
    certs: Certificates,
) -> None:
    context = client_context(certs)
    context.set_alpn_protocols(["http/1.1"])
    async with serving(certs) as port:
        stream, seen = await raw_exchange(port, context)
        async with stream:
            assert stream.selected_alpn_protocol() == "http/1.1"
            cipher = stream.cipher()
    assert seen["tls"]["cipher_suite"] == IANA_SUITES[cipher[0]]
    assert seen["tls"]["tls_version"] == 0x0304


async def test_tls_1_2_client_gets_a_configured_suite(certs: Certificates) -> None:
    context = client_context(certs)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with serving(certs) as port:
        stream, seen = await raw_exchange(port, context)
        async with stream:
            cipher = stream.cipher()
    assert cipher[0] in MOZILLA_INTERMEDIATE_TLS12
    assert seen["tls"]["tls_version"] == 0x0303
    assert seen["tls"]["cipher_suite"] == IANA_SUITES[cipher[0]]


async def test_tls_1_1_is_refused_by_the_server(
    certs: Certificates, errors: pytest.LogCaptureFixture
) -> None:
    context = client_context(certs)
    with pytest.warns(DeprecationWarning, match="TLSv1_1 is deprecated"):
        context.minimum_version = ssl.TLSVersion.TLSv1_1
    with pytest.warns(DeprecationWarning, match="TLSv1_1 is deprecated"):
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    # OpenSSL 3 offers TLS 1.1 only at security level 0: lower it, so that
    # the refusal comes from the server and not from the client itself.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    async with serving(certs) as port:
        with pytest.raises(trio.BrokenResourceError) as caught:
            await raw_exchange(port, context)
    # The server's refusal, not the client's: trio closes without flushing
    # the protocol_version alert, so the client itself sees only an EOF.
    assert isinstance(caught.value.__cause__, ssl.SSLError)
    assert "failed: unsupported protocol" in errors.text
    assert not [r for r in errors.records if r.levelno >= logging.WARNING]


def test_default_ciphers_are_mozilla_intermediate() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(DEFAULT_SSL_CIPHERS)
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == MOZILLA_INTERMEDIATE_TLS12


async def test_required_client_certificate_refuses_a_client_without_one(
    certs: Certificates, errors: pytest.LogCaptureFixture
) -> None:
    options = {"ssl_ca_certs": certs.cafile, "ssl_cert_reqs": "required"}
    async with serving(certs, **options) as port:
        with pytest.raises(httpx.TransportError):
            await get_json(port, client_context(certs))
        seen = await get_json(port, client_context(certs, with_cert=True))
    assert "TLS handshake with 127.0.0.1:" in errors.text
    assert "peer did not return a certificate" in errors.text
    tls = seen["tls"]
    client_pem = certs.client.cert_chain_pems[0].bytes().decode()
    assert [pem_to_der(pem) for pem in tls["client_cert_chain"]] == [
        pem_to_der(client_pem)
    ]
    subject = x509.load_pem_x509_certificate(client_pem.encode()).subject
    assert tls["client_cert_name"] == subject.rfc4514_string()
    assert tls["client_cert_name"].startswith("CN=alice,")
    assert tls["client_cert_error"] is None


async def test_required_client_certificate_refuses_another_ca(
    certs: Certificates,
) -> None:
    stranger = trustme.CA().issue_cert("mallory@example.org")
    context = client_context(certs)
    stranger.configure_cert(context)
    options = {"ssl_ca_certs": certs.cafile, "ssl_cert_reqs": "required"}
    async with serving(certs, **options) as port:
        with pytest.raises(httpx.TransportError):
            await get_json(port, context)


async def test_optional_client_certificate(certs: Certificates) -> None:
    options = {"ssl_ca_certs": certs.cafile, "ssl_cert_reqs": "optional"}
    async with serving(certs, **options) as port:
        without = await get_json(port, client_context(certs))
        with_cert = await get_json(port, client_context(certs, with_cert=True))
    assert without["tls"]["client_cert_chain"] == []
    assert without["tls"]["client_cert_name"] is None
    assert len(with_cert["tls"]["client_cert_chain"]) == 1
    assert with_cert["tls"]["client_cert_name"].startswith("CN=alice,")


async def test_client_certificate_not_asked_for_by_default(
    certs: Certificates,
) -> None:
    async with serving(certs) as port:
        seen = await get_json(port, client_context(certs, with_cert=True))
    assert seen["tls"]["client_cert_chain"] == []


async def test_silent_client_is_dropped_at_the_handshake_timeout(
    certs: Certificates, errors: pytest.LogCaptureFixture
) -> None:
    async with serving(certs, timeout_ssl_handshake=0.3) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            started = trio.current_time()
            with trio.fail_after(HANG):
                assert await stream.receive_some() == b""
            waited = trio.current_time() - started
    assert 0.25 < waited < 5
    assert "failed: no handshake within 0.3s" in errors.text


async def test_plain_http_on_a_tls_port_is_closed_quietly(
    certs: Certificates, errors: pytest.LogCaptureFixture
) -> None:
    async with serving(certs) as port:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            with trio.fail_after(HANG):
                while await stream.receive_some():
                    pass
        # The server still serves TLS clients afterwards.
        seen = await get_json(port, client_context(certs))
    assert seen["scheme"] == "https"
    assert "failed: http request" in errors.text
    assert "Traceback" not in errors.text


async def test_websocket_over_tls_is_wss(certs: Certificates) -> None:
    scopes: list[Any] = []

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message["text"]})
        await receive()

    def talk(port: int) -> str:
        context = client_context(certs)
        with connect(
            f"wss://localhost:{port}/", ssl=context, proxy=None, open_timeout=HANG
        ) as ws:
            ws.send("over tls")
            reply = ws.recv(HANG)
            assert isinstance(reply, str)
            return reply

    async with serving(certs, app) as port:
        with trio.fail_after(HANG):
            assert await trio.to_thread.run_sync(talk, port) == "over tls"
    assert scopes[0]["scheme"] == "wss"
    assert scopes[0]["extensions"]["tls"]["tls_version"] == 0x0304
    assert "websocket.http.response" in scopes[0]["extensions"]


async def test_serve_listeners_with_an_own_ssl_listener(certs: Certificates) -> None:
    """A TLS listener made by the caller gets the handshake and the extension too."""
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(certs.certfile, certs.keyfile)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        tcp = await trio.open_tcp_listeners(0, host="127.0.0.1")
        listener = trio.SSLListener(tcp[0], server_context, https_compatible=True)
        await nursery.start(
            functools.partial(
                trasgi.serve_listeners,
                scope_echo,
                [listener],
                config=Config(lifespan="off"),
                shutdown_trigger=stop.wait,
            )
        )
        seen = await get_json(tcp[0].socket.getsockname()[1], client_context(certs))
        stop.set()
    # The standard library cannot say which certificate a context it did not
    # build presents: the spec's "unknown".
    assert seen["tls"]["server_cert"] is None
    assert seen["tls"]["cipher_suite"] in IANA_SUITES.values()


# The scope builders: the extension only on TLS connections (the spec
# forbids it elsewhere), and a fresh copy for every request.


def test_scope_has_no_tls_extension_without_tls() -> None:
    import h11

    request = h11.Request(method="GET", target="/", headers=[("host", "x")])
    scope = build_http_scope(request, ConnectionInfo(scheme="http"))
    assert "tls" not in scope["extensions"]


def test_scope_gets_its_own_copy_of_the_tls_extension() -> None:
    import h11

    request = h11.Request(method="GET", target="/", headers=[("host", "x")])
    info = ConnectionInfo(
        scheme="https",
        tls=TLSInfo(client_cert_chain=("PEM",), tls_version=0x0304),
    )
    first = build_http_scope(request, info)
    first["extensions"]["tls"]["client_cert_chain"].append("forged")
    second = build_http_scope(request, info)
    assert second["extensions"]["tls"] == {
        "server_cert": None,
        "client_cert_chain": ["PEM"],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": 0x0304,
        "cipher_suite": None,
    }


# RFC 4514 names, checked against cryptography's implementation.


def certificate_with(name: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    import datetime

    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "attributes",
    [
        [[(NameOID.COMMON_NAME, "alice")]],
        [
            [(NameOID.COUNTRY_NAME, "FR")],
            [(NameOID.ORGANIZATION_NAME, "Example, Inc.")],
            [(NameOID.ORGANIZATIONAL_UNIT_NAME, " lead+trail ")],
            [(NameOID.COMMON_NAME, '#1 "quoted" <a>;b\\c')],
        ],
        [[(NameOID.DOMAIN_COMPONENT, "org")], [(NameOID.DOMAIN_COMPONENT, "ex")]],
        [[(NameOID.COMMON_NAME, "Zoë Ünïcode"), (NameOID.USER_ID, "z42")]],
        [[(NameOID.STREET_ADDRESS, "1 rue X")], [(NameOID.LOCALITY_NAME, "Oviedo")]],
        [[(NameOID.STATE_OR_PROVINCE_NAME, "Asturias")]],
    ],
)
def test_subject_rfc4514_matches_cryptography(
    attributes: list[list[tuple[x509.ObjectIdentifier, str]]],
) -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(oid, value) for oid, value in rdn]
            )
            for rdn in attributes
        ]
    )
    der = certificate_with(name)
    ours = subject_rfc4514(der)
    theirs = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    # cryptography orders the parts of a multi-valued RDN its own way.
    assert sorted(ours.split("+")) == sorted(theirs.split("+"))


def test_subject_rfc4514_writes_other_types_as_oid_and_hex() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b.c")])
    # RFC 4514 section 2.4: the dotted OID and the value's BER, in hex
    # (IA5String, tag 0x16, 5 bytes).
    assert (
        subject_rfc4514(certificate_with(name))
        == "1.2.840.113549.1.9.1=#1605" + b"a@b.c".hex()
    )


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x04\x00", b"\x30\x03\x02\x01\x01"])
def test_subject_rfc4514_refuses_what_is_not_a_certificate(der: bytes) -> None:
    with pytest.raises(DERError):
        subject_rfc4514(der)


# Startup errors: one line each, naming the option and the file.


@pytest.fixture(scope="module")
def bad_files(certs: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bad")
    key = serialization.load_pem_private_key(
        Path(certs.keyfile).read_bytes(), password=None
    )
    (directory / "encrypted.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"s3cret"),
        )
    )
    other = certs.ca.issue_cert("other.example")
    other.private_key_pem.write_to_path(str(directory / "other.key"))
    (directory / "garbage.pem").write_text("not a certificate\n")
    (directory / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    return directory


def bad_cases(certs: Certificates, bad: Path) -> list[tuple[dict[str, Any], str]]:
    cert, key = certs.certfile, certs.keyfile
    return [
        (
            {"ssl_certfile": str(bad / "missing.pem")},
            f"cannot read --ssl-certfile {bad / 'missing.pem'}: No such file or directory",
        ),
        (
            {"ssl_certfile": cert, "ssl_keyfile": str(bad / "missing.key")},
            f"cannot read --ssl-keyfile {bad / 'missing.key'}: No such file",
        ),
        (
            {"ssl_certfile": str(bad)},
            f"cannot read --ssl-certfile {bad}: Is a directory",
        ),
        (
            {"ssl_certfile": str(bad / "garbage.pem"), "ssl_keyfile": key},
            "no valid PEM certificate",
        ),
        (
            {"ssl_certfile": str(bad / "broken.pem"), "ssl_keyfile": key},
            "no valid PEM certificate",
        ),
        (
            {"ssl_certfile": cert, "ssl_keyfile": str(bad / "other.key")},
            f"the key in --ssl-keyfile {bad / 'other.key'} does not match the certificate",
        ),
        (
            {"ssl_certfile": cert, "ssl_keyfile": str(bad / "garbage.pem")},
            "no valid PEM private key",
        ),
        ({"ssl_certfile": cert}, "holds no private key: give --ssl-keyfile"),
        (
            {"ssl_certfile": cert, "ssl_keyfile": str(bad / "encrypted.key")},
            "is encrypted: give --ssl-keyfile-password",
        ),
        (
            {
                "ssl_certfile": cert,
                "ssl_keyfile": str(bad / "encrypted.key"),
                "ssl_keyfile_password": "wrong",
            },
            "wrong --ssl-keyfile-password",
        ),
        (
            {"ssl_certfile": cert, "ssl_keyfile": key, "ssl_ciphers": "NOPE"},
            "--ssl-ciphers 'NOPE' selects no cipher suite",
        ),
        ({"ssl_keyfile": key}, "--ssl-keyfile needs --ssl-certfile"),
        ({"ssl_cert_reqs": "required"}, "--ssl-cert-reqs needs --ssl-certfile"),
        (
            {"ssl_certfile": cert, "ssl_keyfile": key, "ssl_cert_reqs": "required"},
            "--ssl-cert-reqs required needs --ssl-ca-certs",
        ),
        (
            {"ssl_certfile": cert, "ssl_keyfile": key, "ssl_ca_certs": certs.cafile},
            "--ssl-ca-certs is only used to verify client certificates",
        ),
        (
            {
                "ssl_certfile": cert,
                "ssl_keyfile": key,
                "ssl_cert_reqs": "optional",
                "ssl_ca_certs": str(bad / "garbage.pem"),
            },
            "--ssl-ca-certs",
        ),
    ]


def test_bad_tls_options_are_refused_in_one_line(
    certs: Certificates, bad_files: Path
) -> None:
    for options, words in bad_cases(certs, bad_files):
        with pytest.raises(TLSConfigError) as caught:
            build_server_context(Config(**options))
        message = str(caught.value)
        assert words in message, (options, message)
        assert "\n" not in message


def test_encrypted_key_with_its_password_loads(
    certs: Certificates, bad_files: Path
) -> None:
    context = build_server_context(
        Config(
            ssl_certfile=certs.certfile,
            ssl_keyfile=str(bad_files / "encrypted.key"),
            ssl_keyfile_password="s3cret",
        )
    )
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_no_tls_options_no_context() -> None:
    assert build_server_context(Config()) is None


@pytest.mark.process
@pytest.mark.parametrize("case", ["missing", "mismatch"])
def test_cli_reports_tls_errors_in_one_line(
    case: str, certs: Certificates, bad_files: Path
) -> None:
    keyfile = str(bad_files / "other.key") if case == "mismatch" else certs.keyfile
    certfile = str(bad_files / "missing.pem") if case == "missing" else certs.certfile
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trasgi",
            "examples.hello:app",
            "--port",
            "0",
            "--ssl-certfile",
            certfile,
            "--ssl-keyfile",
            keyfile,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    words = "cannot read --ssl-certfile" if case == "missing" else "does not match"
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("trasgi: error: ")
    assert words in errors[0]


# The how-to's commands, run as written (with a free port instead of 8000).


def how_to_command(prefix: str) -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", HOW_TO.read_text(), re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    found = [line for line in lines if line.startswith(prefix)]
    assert len(found) == 1, (prefix, lines)
    return shlex.split(found[0])


@pytest.mark.process
async def test_how_to_commands_serve_https(tmp_path: Path) -> None:
    trustme_cli = how_to_command("python -m trustme")
    server_cli = how_to_command("python -m trasgi examples.hello:app")
    curl_cli = how_to_command("curl")
    await trio.run_process([sys.executable, *trustme_cli[1:]], cwd=tmp_path)
    process = await trio.lowlevel.open_process(
        [sys.executable, *server_cli[1:], "--port", "0", "--app-dir", str(ROOT)],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
    )
    seen = bytearray()
    try:
        found = await read_until(
            process, rb"listening on https://127\.0\.0\.1:(\d+)", seen
        )
        port = found.group(1).decode()
        curl = [arg.replace(":8000", f":{port}") for arg in curl_cli]
        with trio.fail_after(HANG):
            result = await trio.run_process(curl, cwd=tmp_path, capture_stdout=True)
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(HANG):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert result.stdout == b"Hello, world!"
    assert process.returncode == 0
