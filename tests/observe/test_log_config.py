"""--log-config: dictConfig from JSON or TOML, fileConfig from INI, in real processes.

Each test runs the command line in a subprocess: logging.config replaces the
process's handlers, which must not happen to the test runner's own.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trio

from ..ops.test_cli import assert_one_line_error, read_until, run_cli
from ..test_docs import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "trasgi"]
#: What trasgi's own handler writes: "2026-01-01 12:00:00,000 INFO    ...".
DEFAULT_LINE = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ", re.M)
CUSTOM = "CUSTOM|%(name)s|%(levelname)s|%(message)s"

DICT_CONFIG = {
    "version": 1,
    "formatters": {"custom": {"format": CUSTOM}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "custom",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {"trasgi": {"handlers": ["stderr"], "level": "INFO"}},
}

TOML_CONFIG = f"""\
version = 1

[formatters.custom]
format = "{CUSTOM}"

[handlers.stderr]
class = "logging.StreamHandler"
formatter = "custom"
stream = "ext://sys.stderr"

[loggers.trasgi]
handlers = ["stderr"]
level = "INFO"
"""

YAML_CONFIG = f"""\
version: 1
formatters:
  custom:
    format: "{CUSTOM}"
handlers:
  stderr:
    class: logging.StreamHandler
    formatter: custom
    stream: ext://sys.stderr
loggers:
  trasgi:
    handlers: [stderr]
    level: INFO
"""

INI_CONFIG = f"""\
[loggers]
keys = root,trasgi

[handlers]
keys = stderr

[formatters]
keys = custom

[logger_root]
handlers =

[logger_trasgi]
qualname = trasgi
handlers = stderr
level = INFO
propagate = 0

[handler_stderr]
class = StreamHandler
formatter = custom
args = (sys.stderr,)

[formatter_custom]
format = {CUSTOM}
"""


async def serve_one_request(*args: str) -> bytes:
    """Run the CLI, make one request, stop it gracefully; return its stderr."""
    stderr, _ = await run_one_request(
        [sys.executable, "-m", "trasgi", "examples.hello:app", "--port", "0", *args]
    )
    return stderr


async def run_one_request(command: list[str], cwd: Path = ROOT) -> tuple[bytes, bytes]:
    """Run a server command, GET ``/`` (a 200), stop it gracefully.

    Returns what it wrote on standard error and on standard output.
    """
    stderr, stdout, statuses = await run_requests(command, ["/"], cwd)
    assert statuses == [200]
    return stderr, stdout


async def run_requests(
    command: list[str], paths: list[str], cwd: Path = ROOT
) -> tuple[bytes, bytes, list[int]]:
    """Run a server command, GET each path, stop it with SIGTERM.

    Returns its standard error, its standard output and the statuses.
    """
    process = await trio.lowlevel.open_process(
        command, cwd=cwd, stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    seen = bytearray()
    output = bytearray()
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_all, process.stdout, output)
            found = await read_until(
                process, rb"listening on http://127\.0\.0\.1:(\d+)", seen
            )
            base = f"http://127.0.0.1:{found[1].decode()}"
            async with httpx.AsyncClient() as client:
                statuses = [
                    (await client.get(base + path)).status_code for path in paths
                ]
            process.send_signal(signal.SIGTERM)
            await read_until(process, rb"application shutdown complete", seen)
            with trio.fail_after(20):
                assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return bytes(seen), bytes(output), statuses


async def read_all(stream: trio.abc.ReceiveStream, into: bytearray) -> None:
    with trio.fail_after(30):
        while chunk := await stream.receive_some(4096):
            into += chunk


def assert_only_the_configured_handler_wrote(seen: bytes) -> None:
    assert b"CUSTOM|trasgi.error|INFO|listening on http://127.0.0.1:" in seen
    assert re.search(
        rb'CUSTOM\|trasgi.access\|INFO\|127\.0\.0\.1:\d+ - "GET / HTTP/1.1" 200 13 ',
        seen,
    )
    assert DEFAULT_LINE.search(seen) is None, seen
    assert b"Traceback" not in seen


@pytest.mark.process
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("logging.json", json.dumps(DICT_CONFIG)),
        ("logging.toml", TOML_CONFIG),
        ("logging.yaml", YAML_CONFIG),
        ("logging.yml", YAML_CONFIG),
        ("logging.ini", INI_CONFIG),
        ("logging.conf", INI_CONFIG),
    ],
)
async def test_the_file_configures_logging_instead_of_trasgi(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    seen = await serve_one_request("--log-config", str(path))
    assert_only_the_configured_handler_wrote(seen)


@pytest.mark.process
async def test_trasgi_loggers_stay_enabled_with_a_root_only_config(
    tmp_path: Path,
) -> None:
    # dictConfig disables loggers that exist and that it does not name,
    # unless told otherwise: trasgi's exist from import time.
    config = {
        "version": 1,
        "formatters": {"custom": {"format": CUSTOM}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "custom"}
        },
        "root": {"handlers": ["stderr"], "level": "INFO"},
    }
    path = tmp_path / "root.json"
    path.write_text(json.dumps(config))
    seen = await serve_one_request("--log-config", str(path))
    assert_only_the_configured_handler_wrote(seen)


@pytest.mark.process
async def test_the_file_sets_levels_not_log_level(tmp_path: Path) -> None:
    config = json.loads(json.dumps(DICT_CONFIG))
    config["loggers"]["trasgi.access"] = {"level": "WARNING"}
    path = tmp_path / "quiet.json"
    path.write_text(json.dumps(config))
    seen = await serve_one_request(
        "--log-config", str(path), "--log-level", "debug", "--access-log"
    )
    assert b"CUSTOM|trasgi.error|INFO|listening on" in seen
    assert b"trasgi.access" not in seen
    assert b"DEBUG" not in seen


@pytest.mark.process
async def test_the_environment_and_the_config_file_name_it_too(tmp_path: Path) -> None:
    log_config = tmp_path / "logging.json"
    log_config.write_text(json.dumps(DICT_CONFIG))
    options = tmp_path / "trasgi.toml"
    options.write_text(f"log-config = {json.dumps(str(log_config))}\n")
    seen = await serve_one_request("--config", str(options))
    assert_only_the_configured_handler_wrote(seen)


@pytest.mark.process
@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("missing.json", None, "cannot read: No such file or directory"),
        ("bad.json", "{not json", "not valid JSON: Expecting property name"),
        ("bad.toml", "version = = 1", "not valid TOML:"),
        ("list.json", "[1, 2]", "must hold a logging dictConfig dictionary"),
        (
            "noversion.json",
            "{}",
            "invalid logging configuration: dictionary doesn't specify a version",
        ),
        (
            "class.json",
            json.dumps(
                {
                    "version": 1,
                    "handlers": {"h": {"class": "nosuchmodule.Handler"}},
                }
            ),
            "invalid logging configuration: Unable to configure handler 'h'",
        ),
        ("empty.ini", "", "invalid logging configuration: missing section or key"),
        ("broken.ini", "no section header", "not a valid INI file:"),
        ("logging.xml", "<version/>", "unknown kind of logging configuration .xml"),
        ("broken.yaml", "version: [1", "not valid YAML:"),
        ("list.yml", "- version: 1", "must hold a logging dictConfig dictionary"),
    ],
)
def test_a_bad_file_is_one_line(
    tmp_path: Path, name: str, text: str | None, words: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    result = run_cli("examples.hello:app", "--log-config", str(path))
    assert_one_line_error(result, 2, f"--log-config {path}: {words}")


@pytest.mark.process
def test_an_unimportable_handler_names_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "class.json"
    path.write_text(
        json.dumps({"version": 1, "handlers": {"h": {"class": "nosuchmodule.H"}}})
    )
    result = run_cli("examples.hello:app", "--log-config", str(path))
    assert "No module named 'nosuchmodule'" in result.stderr


HOW_TO = ROOT / "docs" / "how-to" / "logging-and-metrics.md"


def how_to_blocks(language: str) -> list[str]:
    return [b.code for b in fenced_blocks(HOW_TO) if b.info == language]


def how_to_commands() -> list[str]:
    return [
        line
        for code in how_to_blocks("sh")
        for line in code.splitlines()
        if line.startswith("python -m trasgi ")
    ]


def test_the_how_to_shows_every_command_that_is_run_here() -> None:
    others = [
        line
        for code in how_to_blocks("sh")
        for line in code.splitlines()
        if line and line not in how_to_commands()
    ]
    # Installing from a checkout is the one command not run here.
    assert others == ["pip install -e '.[metrics]'"]
    assert len(how_to_commands()) == 4


@pytest.mark.process
@pytest.mark.parametrize("command", how_to_commands())
async def test_each_how_to_command_serves(tmp_path: Path, command: str) -> None:
    (json_file,) = how_to_blocks("json")
    (tmp_path / "logging.json").write_text(json_file)
    args = shlex.split(command)[3:]
    if "--metrics-port" in args:
        args[args.index("--metrics-port") + 1] = "0"  # any free port
    stderr, stdout = await run_one_request(
        [*CLI, *args, "--port", "0", "--app-dir", str(ROOT)], cwd=tmp_path
    )
    assert b"Traceback" not in stderr
    if "--log-config" in args:
        # The example file: server lines on stderr, JSON access lines on stdout.
        assert b" trasgi.error INFO listening on http" in stderr
        assert DEFAULT_LINE.search(stderr) is None
        assert json.loads(stdout.decode().strip())["status"] == 200
    elif "json" in args:
        (line,) = [x for x in stderr.decode().splitlines() if x.startswith("{")]
        assert json.loads(line)["path"] == "/"
    elif "--metrics-port" in args:
        assert b"serving metrics on http://127.0.0.1:" in stderr
    else:
        assert re.search(
            rb'INFO    127\.0\.0\.1 GET / 200 [\d.]+ms "python-httpx/', stderr
        )


@pytest.mark.process
async def test_the_how_to_yaml_example_configures_logging(tmp_path: Path) -> None:
    (yaml_file,) = [code for code in how_to_blocks("yaml") if "version: 1" in code]
    path = tmp_path / "logging.yaml"
    path.write_text(yaml_file)
    seen = await serve_one_request("--log-config", str(path))
    assert b" trasgi.error INFO listening on http" in seen
    assert DEFAULT_LINE.search(seen) is None


@pytest.mark.process
async def test_the_how_to_toml_example_configures_logging(tmp_path: Path) -> None:
    (toml_file,) = how_to_blocks("toml")
    path = tmp_path / "logging.toml"
    path.write_text(toml_file)
    seen = await serve_one_request("--log-config", str(path))
    assert b" trasgi.error INFO listening on http" in seen
    assert DEFAULT_LINE.search(seen) is None
