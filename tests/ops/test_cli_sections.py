"""``--help`` in the sections of ``docs/reference/cli.md``, and the parser's spellings."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from trasgi import Config
from trasgi._ops import cli

CLI_PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"


def page_sections() -> dict[str, str]:
    """Each ``### `` heading of the page's Options chapter, with its text."""
    text = CLI_PAGE.read_text(encoding="utf-8")
    options = text.partition("\n## Options\n")[2].partition("\n## ")[0]
    parts = re.split(r"^### (.+)$", options, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_option_has_a_section() -> None:
    missing = [
        field.name
        for field in attrs.fields(Config)
        if field.name not in cli.OPTION_SECTIONS
    ]
    assert missing == [], "add these fields to cli.OPTION_SECTIONS"
    assert set(cli.OPTION_SECTIONS.values()) == set(cli.SECTIONS)


def test_the_sections_are_the_pages_in_its_order() -> None:
    assert list(page_sections()) == list(cli.SECTIONS)


def test_each_option_is_documented_under_its_section() -> None:
    sections = page_sections()
    for field in attrs.fields(Config):
        flag = "--" + field.name.replace("_", "-")
        section = cli.OPTION_SECTIONS[field.name]
        row = re.compile(rf"^\| `{re.escape(flag)}[ `,]", re.MULTILINE)
        assert row.search(sections[section]), f"{flag} is not in ### {section}"


def test_help_is_grouped_and_ends_with_an_example_and_the_docs() -> None:
    text = cli.build_parser().format_help()
    headings = re.findall(r"^(\S[^:\n]*):$", text, re.MULTILINE)
    assert headings[-len(cli.SECTIONS) - 1 : -1] == list(cli.SECTIONS)
    assert headings[-1] == "example"
    host_at = text.index("--host HOST")
    assert text.index("Where to listen:") < host_at < text.index("TLS:")
    workers_at = text.index("--workers N")
    assert text.index("Worker processes and reload:") < workers_at
    assert text.rstrip().endswith(cli.DOCS_URL)
    assert "\n  python -m trasgi examples.hello:app" in text


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        ([], True),
        (["--ws-per-message-deflate"], True),
        (["--ws-per-message-deflate", "false"], False),
        (["--ws-per-message-deflate", "0"], False),
        (["--ws-per-message-deflate=no"], False),
        (["--ws-per-message-deflate", "TRUE"], True),
        (["--ws-per-message-deflate", "1"], True),
        (["--no-ws-per-message-deflate"], False),
    ],
)
def test_ws_per_message_deflate_as_uvicorn_spells_it(
    argv: list[str], value: bool
) -> None:
    namespace = cli.build_parser().parse_args(["x:app", *argv])
    config, _ = cli.config_from_args(namespace, {})
    assert config.ws_per_message_deflate is value


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--ws-per-message-deflate", "maybe"], "expected a boolean"),
        (["--no-ws-per-message-deflate=1"], "ignored explicit argument '1'"),
        (["--prot", "8000"], "--prot 8000 (did you mean --port?) (see --help)"),
        (["--timeout-keepalive=3"], "(did you mean --timeout-keep-alive?)"),
        (["--no-acess-log"], "(did you mean --no-access-log?)"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option (see"),
    ],
)
def test_usage_errors_are_one_line(
    argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(["x:app", *argv])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert words in error
    assert error.count("\n") == 1
