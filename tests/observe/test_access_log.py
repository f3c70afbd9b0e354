"""Access-log formats: named fields, JSON lines, escaping, colours."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import signal
import sys
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from trasgi import Config
from trasgi._config.config import DEFAULT_ACCESS_LOG_FORMAT
from trasgi._observe.access import (
    FIELDS,
    JSON_FIELDS,
    AccessRecord,
    FormatError,
    ResponseObserver,
    compile_format,
)
from trasgi._observe.logs import ColorFormatter, access_line, wants_colors
from trasgi.testing import open_client, open_websocket

from ..helpers import text_response
from ..ops.test_cli import assert_one_line_error, run_cli

ROOT = Path(__file__).resolve().parents[2]
#: 2024-05-01 12:00:00.250 UTC.
FINISHED = 1714564800.25
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HOSTILE = b'evil\x1b[31m\r\nforged line\x9b2J"quoted" back\\slash\xe9'

RECORD = AccessRecord(
    client=("10.0.0.7", 51234),
    method=b"POST",
    target=b"/items/42?sort=asc&x=1",
    http_version=b"1.1",
    status=201,
    body_bytes=17,
    duration=0.00125,
    headers=[
        (b"host", b"example.com"),
        (b"user-agent", b"curl/8.5.0"),
        (b"referer", b"https://example.com/list"),
        (b"traceparent", TRACEPARENT.encode()),
    ],
    finished=FINISHED,
    peer=("127.0.0.1", 40112),
)


def record(**changes: Any) -> AccessRecord:
    return attrs.evolve(RECORD, **changes)


# -- text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "shown"),
    [
        ("client", "10.0.0.7:51234"),
        ("client_host", "10.0.0.7"),
        ("method", "POST"),
        ("target", "/items/42?sort=asc&x=1"),
        ("path", "/items/42"),
        ("query", "sort=asc&x=1"),
        ("http_version", "1.1"),
        ("request_line", "POST /items/42?sort=asc&x=1 HTTP/1.1"),
        ("status", "201"),
        ("bytes", "17"),
        ("duration_ms", "1.2"),
        ("user_agent", "curl/8.5.0"),
        ("referer", "https://example.com/list"),
        ("time", "2024-05-01T12:00:00.250+00:00"),
        ("peer", "127.0.0.1:40112"),
        ("reason", "-"),
        ("cut_short", "-"),
        ("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
        ("span_id", "00f067aa0ba902b7"),
    ],
)
def test_each_field_in_text(field: str, shown: str) -> None:
    assert compile_format(f"<{{{field}}}>")(RECORD) == f"<{shown}>"


def test_the_table_above_covers_every_field() -> None:
    tested = {"client", "client_host", "method", "target", "path", "query"}
    tested |= {"http_version", "request_line", "status", "bytes", "duration_ms"}
    tested |= {"user_agent", "referer", "time"}
    tested |= {"peer", "reason", "cut_short", "trace_id", "span_id"}
    assert set(FIELDS) == tested


def test_absent_values_show_as_a_dash() -> None:
    bare = record(client=None, headers=[], target=b"/plain")
    line = compile_format("{client} {client_host} {user_agent} {referer} [{query}]")
    assert line(bare) == "- - - - []"


@pytest.mark.parametrize(
    ("client", "target", "status", "body_bytes", "duration"),
    [
        (("1.2.3.4", 5), b"/x?y", 404, 12, 0.0015),
        (("::1", 8080), b"/", 200, 0, 0.0),
        (None, b"/a%1B", 500, 3, 12.34567),
        (("10.1.2.3", 1), b"/q\\uote", 101, 0, 0.00004),
    ],
)
def test_the_default_format_is_the_line_trasgi_always_wrote(
    client: tuple[str, int] | None,
    target: bytes,
    status: int,
    body_bytes: int,
    duration: float,
) -> None:
    old = access_line(client, b"GET", target, b"1.1", status, body_bytes, duration)
    new = compile_format(DEFAULT_ACCESS_LOG_FORMAT)(
        record(
            client=client,
            method=b"GET",
            target=target,
            status=status,
            body_bytes=body_bytes,
            duration=duration,
        )
    )
    assert new == old


def test_doubled_braces_are_literal() -> None:
    assert compile_format("{{{status}}} {{x}}")(RECORD) == "{201} {x}"


def test_hostile_header_is_escaped_in_text() -> None:
    line = compile_format('ua="{user_agent}" ref={referer}')(
        record(headers=[(b"user-agent", HOSTILE), (b"referer", b"a\tb")])
    )
    assert line == (
        'ua="evil\\x1b[31m\\x0d\\x0aforged line\\x9b2J\\"quoted\\" back\\\\slash\xe9"'
        " ref=a\\x09b"
    )
    assert all(ord(char) >= 0x20 and not 0x7F <= ord(char) < 0xA0 for char in line)


# -- bad formats ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{client} {nope}", "unknown field {nope}; known fields: client, client_host"),
        ("{}", "unknown field {}"),
        ("{0}", "unknown field {0}"),
        ("{client.port}", "unknown field {client.port}"),
        ("{status!r}", "field {status} takes no conversion or format spec"),
        ("{duration_ms:.3f}", "field {duration_ms} takes no conversion"),
        ("{status", "is malformed"),
        ("status}", "is malformed"),
    ],
)
def test_bad_format_is_refused(text: str, words: str) -> None:
    with pytest.raises(FormatError, match=re.escape(words)):
        compile_format(text)


def test_config_refuses_an_unknown_field_naming_the_option() -> None:
    with pytest.raises(ValueError, match=r"access_log_format has an unknown field"):
        Config(access_log_format="{client} {bogus}")


@pytest.mark.process
def test_cli_refuses_an_unknown_field_in_one_line() -> None:
    result = run_cli("examples.hello:app", "--access-log-format", "{status} {stauts}")
    assert_one_line_error(
        result,
        2,
        "--access-log-format has an unknown field {stauts}; known fields: client,",
    )
    assert "referer" in result.stderr  # the whole list


# -- JSON --------------------------------------------------------------------


def test_json_line_has_every_field_with_numbers_as_numbers() -> None:
    line = compile_format("json")(RECORD)
    assert "\n" not in line
    data = json.loads(line)
    assert list(data) == list(JSON_FIELDS)
    assert "request_line" not in data
    assert data == {
        "client": "10.0.0.7:51234",
        "client_host": "10.0.0.7",
        "method": "POST",
        "target": "/items/42?sort=asc&x=1",
        "path": "/items/42",
        "query": "sort=asc&x=1",
        "http_version": "1.1",
        "status": 201,
        "bytes": 17,
        "duration_ms": 1.25,
        "user_agent": "curl/8.5.0",
        "referer": "https://example.com/list",
        "time": "2024-05-01T12:00:00.250+00:00",
        "peer": "127.0.0.1:40112",
        "reason": None,
        "cut_short": None,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
    }


def test_json_absent_values_are_null_and_durations_keep_microseconds() -> None:
    data = json.loads(
        compile_format("json")(record(client=None, headers=[], duration=0.0123456789))
    )
    assert data["client"] is None
    assert data["client_host"] is None
    assert data["user_agent"] is None
    assert data["referer"] is None
    assert data["duration_ms"] == 12.346


def test_json_escapes_hostile_input_and_gives_it_back_intact() -> None:
    line = compile_format("json")(
        record(target=b"/a%1B", headers=[(b"user-agent", HOSTILE)])
    )
    assert line.isascii()
    assert all(0x20 <= ord(char) < 0x7F for char in line)
    assert json.loads(line)["user_agent"] == HOSTILE.decode("latin-1")


# -- the observer and the connection ----------------------------------------


class Sink:
    def __init__(self) -> None:
        self.records: list[AccessRecord] = []

    def on_response(self, record: AccessRecord) -> None:
        self.records.append(record)


def test_nothing_is_built_when_the_access_log_is_off_and_nothing_counts() -> None:
    logger = logging.getLogger("trasgi.access")
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        assert not ResponseObserver.for_format("json").enabled()
        assert ResponseObserver.for_format("json", (Sink(),)).enabled()
    finally:
        logger.setLevel(previous)


def test_a_sink_gets_the_record_even_without_the_access_log() -> None:
    logger = logging.getLogger("trasgi.access")
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    sink = Sink()
    try:
        ResponseObserver.for_format("{status}", (sink,)).on_response(RECORD)
    finally:
        logger.setLevel(previous)
    assert sink.records == [RECORD]


async def test_the_connection_logs_in_the_configured_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    config = Config(access_log_format="{method} {path} q={query} {status} {user_agent}")
    async with open_client(text_response(b"hi"), config=config) as client:
        response = await client.get("/p/x?k=v", headers={"user-agent": "tester/1"})
    assert response.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    assert lines == ["GET /p/x q=k=v 200 tester/1"]


async def test_the_connection_logs_json_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")
    async with open_client(
        text_response(b"not here", status=404),
        config=Config(access_log_format="json"),
        client=("192.0.2.9", 40000),
    ) as client:
        # obs-text (RFC 9110 section 5.5): 0x9B is a C1 control, CSI.
        await client.get("/missing", headers={b"referer": b"http://x/\x9b2J"})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "trasgi.access"]
    data = json.loads(line)
    assert data["client"] == "192.0.2.9:40000"
    assert data["status"] == 404
    assert data["bytes"] == 8
    assert data["referer"] == "http://x/\x9b2J"
    assert "\\u009b" in line
    assert isinstance(data["duration_ms"], float)
    assert data["duration_ms"] >= 0


async def test_access_log_off_builds_no_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[object] = []
    original = AccessRecord.of

    def spy(*args: Any, **kwargs: Any) -> AccessRecord:
        built.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(AccessRecord, "of", spy)
    logger = logging.getLogger("trasgi.access")
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        async with open_client(text_response()) as client:
            await client.get("/")
            assert built == []
        logger.setLevel(logging.INFO)
        async with open_client(text_response()) as client:
            await client.get("/")
            assert len(built) == 1  # the spy does see records when logging
    finally:
        logger.setLevel(previous)


# -- colours -------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("setting", "tty", "no_color", "expected"),
    [
        (None, True, None, True),
        (None, False, None, False),
        (None, True, "1", False),
        (None, True, "", True),  # NO_COLOR counts only when not empty
        (True, False, None, True),  # forced
        (True, True, "1", True),  # an explicit setting wins over NO_COLOR
        (False, True, None, False),
    ],
)
def test_when_colours_are_used(
    setting: bool | None, tty: bool, no_color: str | None, expected: bool
) -> None:
    stream = Terminal() if tty else io.StringIO()
    environ = {} if no_color is None else {"NO_COLOR": no_color}
    assert wants_colors(setting, stream, environ) is expected


def make_log_record(msg: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("trasgi.access", level, __file__, 1, msg, None, None)


@pytest.mark.parametrize(
    ("status", "color"), [(200, "32"), (302, "36"), (404, "33"), (503, "31")]
)
def test_colour_formatter_colours_the_status_and_level(status: int, color: str) -> None:
    from trasgi._observe.access import AccessLine

    line = AccessLine(compile_format(DEFAULT_ACCESS_LOG_FORMAT), record(status=status))
    log_record = make_log_record(line)
    shown = ColorFormatter("%(levelname)s %(message)s").format(log_record)
    assert shown.startswith("\x1b[32mINFO   \x1b[0m ")
    assert f'HTTP/1.1" \x1b[{color}m{status}\x1b[0m 17 ' in shown
    # The record itself is untouched, for other handlers.
    assert log_record.levelname == "INFO"
    assert logging.Formatter("%(message)s").format(log_record) == str(line)


def test_colour_formatter_leaves_json_lines_valid() -> None:
    from trasgi._observe.access import AccessLine

    log_record = make_log_record(AccessLine(compile_format("json"), RECORD))
    shown = ColorFormatter("%(message)s").format(log_record)
    assert json.loads(shown)["status"] == 201


def test_colour_formatter_colours_error_levels() -> None:
    shown = ColorFormatter("%(levelname)s|%(message)s").format(
        make_log_record("boom", logging.ERROR)
    )
    assert shown == "\x1b[31mERROR  \x1b[0m|boom"


# -- the command line, in a real process ------------------------------------------


async def read_until(
    stream: trio.abc.ReceiveStream, pattern: bytes, seen: bytearray
) -> re.Match[bytes]:
    """Read ``stream`` into ``seen`` until ``pattern`` appears in it."""
    with trio.fail_after(20):
        while (found := re.search(pattern, bytes(seen))) is None:
            try:
                chunk = await stream.receive_some(4096)
            except trio.BrokenResourceError:  # a pty: EIO once the child is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"no {pattern!r} in {bytes(seen)!r}")
            seen += chunk
    return found


async def read_to_end(stream: trio.abc.ReceiveStream, seen: bytearray) -> None:
    with trio.fail_after(20):
        while True:
            try:
                chunk = await stream.receive_some(4096)
            except trio.BrokenResourceError:  # a pty: EIO once the child is gone
                return
            if not chunk:
                return
            seen += chunk


async def serve_once(args: list[str], env: dict[str, str], *, on_tty: bool) -> bytes:
    """Run the CLI, make one request, stop it; return what it wrote on stderr."""
    if on_tty:
        controller, terminal = pty.openpty()
        stderr: int = terminal
    else:
        controller, terminal = os.pipe()
        stderr = terminal
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "trasgi", "examples.hello:app", "--port", "0", *args],
        cwd=ROOT,
        stderr=stderr,
        env=env,
    )
    os.close(terminal)
    output = trio.lowlevel.FdStream(controller)
    seen = bytearray()
    try:
        found = await read_until(
            output, rb"listening on http://127\.0\.0\.1:(\d+)", seen
        )
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{found[1].decode()}/")
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            await process.wait()
        await read_to_end(output, seen)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await output.aclose()
    return bytes(seen)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env = {k: v for k, v in env.items() if not k.startswith("TRASGI_")}
    return {**env, **extra}


@pytest.mark.process
async def test_a_terminal_gets_colours() -> None:
    seen = await serve_once([], clean_env(), on_tty=True)
    assert b"\x1b[32mINFO   \x1b[0m listening on" in seen
    assert b'"GET / HTTP/1.1" \x1b[32m200\x1b[0m 13 ' in seen


@pytest.mark.process
async def test_no_color_turns_colours_off_on_a_terminal() -> None:
    seen = await serve_once([], clean_env(NO_COLOR="1"), on_tty=True)
    assert b"\x1b[" not in seen
    assert b'"GET / HTTP/1.1" 200 13 ' in seen


@pytest.mark.process
async def test_use_colors_wins_over_no_color_and_a_pipe() -> None:
    seen = await serve_once(["--use-colors"], clean_env(NO_COLOR="1"), on_tty=False)
    assert b'"GET / HTTP/1.1" \x1b[32m200\x1b[0m 13 ' in seen


@pytest.mark.process
async def test_a_pipe_gets_no_colours_and_json_lines_are_bare() -> None:
    seen = await serve_once(["--access-log-format", "json"], clean_env(), on_tty=False)
    assert b"\x1b[" not in seen
    (line,) = [text for text in seen.decode().splitlines() if text.startswith("{")]
    data = json.loads(line)
    assert (data["method"], data["path"], data["status"]) == ("GET", "/", 200)
    assert data["bytes"] == len("Hello, world!")


def test_environment_and_file_spell_use_colors(tmp_path: Path) -> None:
    from trasgi._config.sources import from_toml, parse_text

    assert parse_text("use_colors", "auto") is None
    assert parse_text("use_colors", "none") is None
    assert parse_text("use_colors", "yes") is True
    assert parse_text("use_colors", "off") is False
    with pytest.raises(ValueError, match="invalid value 'blue'"):
        parse_text("use_colors", "blue")
    path = tmp_path / "t.toml"
    path.write_text("use_colors = false\n")
    assert from_toml(str(path))[0] == {"use_colors": False}


def test_no_use_colors_is_a_switch() -> None:
    from trasgi._ops.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["x:a", "--no-use-colors"]).use_colors is False
    assert parser.parse_args(["x:a", "--use-colors"]).use_colors is True
    assert not hasattr(parser.parse_args(["x:a"]), "use_colors")


# -- the documentation ---------------------------------------------------------


def test_the_how_to_documents_every_field_in_order() -> None:
    text = (ROOT / "docs" / "how-to" / "logging-and-metrics.md").read_text()
    assert re.findall(r"^\| `\{(\w+)\}` \|", text, re.M) == list(FIELDS)


def test_the_cli_reference_names_every_field() -> None:
    text = (ROOT / "docs" / "reference" / "cli.md").read_text()
    (row,) = [line for line in text.splitlines() if "| `--access-log-format" in line]
    meaning = row.split(" | ")[2]  # past the default, which names five fields
    assert re.findall(r"`\{(\w+)\}`", meaning) == list(FIELDS)


async def test_a_websocket_handshake_is_logged_in_the_configured_format(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trasgi.access")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with open_websocket(app, "/chat", config=Config(access_log_format="json")):
        pass
    handshake, session = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "trasgi.access"
    ]
    assert (handshake["method"], handshake["path"]) == ("GET", "/chat")
    assert handshake["status"] == 101
    assert session["event"] == "websocket_closed"
    assert session["close_code"] == 1000
