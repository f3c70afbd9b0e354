"""One configuration surface: command line, TRASGI_* environment, TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trasgi import Config
from trasgi._config.sources import ConfigError, from_environ, from_toml, parse_text
from trasgi._ops.cli import build_parser, config_from_args


def resolve(
    argv: list[str], environ: dict[str, str] | None = None
) -> tuple[Config, str | None]:
    return config_from_args(build_parser().parse_args(argv), environ or {})


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "trasgi.toml"
    path.write_text(text)
    return str(path)


def test_precedence_cli_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'port = 1001\nhost = "0.0.0.0"\ntimeout-keep-alive = 7\nbacklog = 10\n',
    )
    environ = {"TRASGI_PORT": "1002", "TRASGI_TIMEOUT_KEEP_ALIVE": "8"}
    config, _ = resolve(["x:app", "--config", path, "--port", "1003"], environ)
    assert config.port == 1003  # command line
    assert config.timeout_keep_alive == 8.0  # environment
    assert config.host == "0.0.0.0"  # file
    assert config.backlog == 10  # file
    assert config.root_path == ""  # default


def test_app_from_each_source(tmp_path: Path) -> None:
    path = write(tmp_path, 'app = "from.file:app"\n')
    assert resolve(["--config", path])[1] == "from.file:app"
    assert (
        resolve(["--config", path], {"TRASGI_APP": "from.env:app"})[1] == "from.env:app"
    )
    assert (
        resolve(["from.cli:app", "--config", path], {"TRASGI_APP": "e:a"})[1]
        == "from.cli:app"
    )


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("access_log", "false", False),
        ("access_log", "ON", True),
        ("port", "8080", 8080),
        ("timeout_keep_alive", "2.5", 2.5),
        ("limit_concurrency", "none", None),
        ("limit_request_body", "None", None),
        ("ws_ping_interval", "none", None),
        ("lifespan", "off", "off"),
    ],
)
def test_environment_text_parsing(name: str, text: str, value: object) -> None:
    assert parse_text(name, text) == value


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        (
            {"TRASGI_PROT": "1"},
            "TRASGI_PROT: unknown option (did you mean 'TRASGI_PORT'?)",
        ),
        ({"TRASGI_PORT": "abc"}, "TRASGI_PORT: invalid value 'abc'"),
        ({"TRASGI_ACCESS_LOG": "maybe"}, "TRASGI_ACCESS_LOG: expected a boolean"),
        (
            {"TRASGI_LIFESPAN": "sometimes"},
            "TRASGI_LIFESPAN: expected one of auto, on, off",
        ),
    ],
)
def test_bad_environment(environ: dict[str, str], words: str) -> None:
    with pytest.raises(
        ConfigError,
        match=words.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?"),
    ):
        from_environ(environ)


def test_environment_value_out_of_range_names_the_source() -> None:
    with pytest.raises(
        ConfigError, match="environment: port must be between 0 and 65535"
    ):
        resolve(["x:app"], {"TRASGI_PORT": "70000"})


def test_other_environment_variables_are_ignored() -> None:
    assert from_environ({"PATH": "/bin", "TRASGIX": "1"}) == ({}, None)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("prot = 1\n", "unknown option 'prot' (did you mean 'port'?)"),
        ('port = "8000"\n', "port must be int, got str '8000'"),
        ("access_log = 1\n", "access_log must be bool, got int 1"),
        (
            "timeout_keep_alive = true\n",
            "timeout_keep_alive must be float, got bool True",
        ),
        ("port = [\n", "not valid TOML"),
    ],
)
def test_bad_file(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        from_toml(write(tmp_path, text))
    assert words in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path))


def test_file_value_out_of_range_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "backlog = 0\n")
    with pytest.raises(ConfigError, match=r"trasgi\.toml: backlog must be between"):
        resolve(["x:app", "--config", path])


def test_file_accepts_ints_for_floats_and_none_for_optionals(tmp_path: Path) -> None:
    values, _ = from_toml(
        write(tmp_path, 'timeout-write = 3\nlimit_concurrency = "none"\n')
    )
    assert values == {"timeout_write": 3.0, "limit_concurrency": None}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        from_toml(str(tmp_path / "absent.toml"))
