"""``--http auto|h11|httptools``: the option, and the parser each value makes."""

from __future__ import annotations

import h11
import pytest

from trasgi import Config
from trasgi._config.sources import ConfigError
from trasgi._ops.cli import build_parser, config_from_args
from trasgi._protocol import h1_parsers
from trasgi._protocol.h1_parsers import HTTPParserMode, HttptoolsParser, parser_factory


def resolve(argv: list[str], environ: dict[str, str] | None = None) -> Config:
    return config_from_args(build_parser().parse_args(["x:app", *argv]), environ or {})[
        0
    ]


def test_h11_is_the_default() -> None:
    assert Config().http == "h11"
    assert isinstance(parser_factory(Config().http, 16384)(), h11.Connection)


@pytest.mark.parametrize("mode", ["auto", "h11", "httptools"])
def test_each_value_from_the_command_line_and_the_environment(mode: str) -> None:
    assert resolve(["--http", mode]).http == mode
    assert resolve([], {"TRASGI_HTTP": mode}).http == mode


def test_an_unknown_value_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        resolve(["--http", "llhttp"])
    assert exit_.value.code == 2
    assert "invalid choice: 'llhttp'" in capsys.readouterr().err
    with pytest.raises(
        ConfigError, match="TRASGI_HTTP: expected one of auto, h11, httptools"
    ):
        resolve([], {"TRASGI_HTTP": "llhttp"})


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("auto", HttptoolsParser),
        ("httptools", HttptoolsParser),
        ("h11", h11.Connection),
    ],
)
def test_auto_picks_httptools_when_installed(mode: HTTPParserMode, kind: type) -> None:
    parser = parser_factory(mode, 16384)()
    assert isinstance(parser, kind)


def test_without_httptools(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto falls back to h11; asking for httptools is a one-line error."""
    monkeypatch.setattr(h1_parsers, "httptools", None)
    assert isinstance(parser_factory("auto", 16384)(), h11.Connection)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[fast\]' in a checkout"):
        Config(http="httptools")
    with pytest.raises(ConfigError, match="httptools is not installed"):
        resolve(["--http", "httptools"])
