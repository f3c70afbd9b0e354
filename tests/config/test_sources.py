"""One configuration surface: command line, TRASGI_* environment, TOML file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import attrs
import pytest

from trasgi import Config
from trasgi._config.sources import (
    ConfigError,
    from_environ,
    from_toml,
    parse_text,
    read_environ,
)
from trasgi._config.spelling import edit_distance, near_miss
from trasgi._ops.cli import Resolved, build_parser, config_from_args, resolve_config


def resolve(argv: list[str], environ: dict[str, str] | None = None) -> Resolved:
    return resolve_config(build_parser().parse_args(argv), environ or {})


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
    config = resolve(["x:app", "--config", path, "--port", "1003"], environ).config
    assert config.port == 1003  # command line
    assert config.timeout_keep_alive == 8.0  # environment
    assert config.host == "0.0.0.0"  # file
    assert config.backlog == 10  # file
    assert config.root_path == ""  # default


def test_app_from_each_source(tmp_path: Path) -> None:
    path = write(tmp_path, 'app = "from.file:app"\n')
    assert resolve(["--config", path]).app == "from.file:app"
    assert (
        resolve(["--config", path], {"TRASGI_APP": "from.env:app"}).app
        == "from.env:app"
    )
    assert (
        resolve(["from.cli:app", "--config", path], {"TRASGI_APP": "e:a"}).app
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


# -- the environment is shared: unknown names warn, links are ignored ---------


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("prot", "port"),
        ("hsot", "host"),
        ("worker", "workers"),
        ("loglevel", "log_level"),
        ("timeout_keepalive", "timeout_keep_alive"),
        ("ssl_cert_file", "ssl_certfile"),
        ("service_host", None),  # shares "_host" with metrics_host: no slip
        ("web_service_host", None),
        ("version", None),
        ("secret_key", None),
    ],
)
def test_near_miss_is_a_slip_of_the_fingers(name: str, close: str | None) -> None:
    known = [field.name for field in attrs.fields(Config)] + ["app"]
    assert near_miss(name, known) == close


@pytest.mark.parametrize(
    ("first", "second", "distance"),
    [
        ("port", "port", 0),
        ("prot", "port", 1),  # two neighbours swapped: one slip
        ("hots", "host", 1),
        ("worker", "workers", 1),
        ("", "abc", 3),
        ("service_host", "metrics_host", 4),
    ],
)
def test_edit_distance(first: str, second: str, distance: int) -> None:
    assert edit_distance(first, second) == distance
    assert edit_distance(second, first) == distance


def test_unknown_variables_are_warnings_with_a_real_hint() -> None:
    reading = read_environ(
        {"TRASGI_PROT": "8001", "TRASGI_VERSION": "1.2.3", "TRASGI_WORKERS": "2"}
    )
    assert reading.values == {"workers": 2}
    assert reading.warnings == (
        "TRASGI_PROT: unknown option, ignored (did you mean 'TRASGI_PORT'?)",
        "TRASGI_VERSION: unknown option, ignored",
    )


#: What a pod gets for Services named trasgi (port 8000, a named port) and
#: trasgi-web in its namespace.
SERVICE_LINKS = {
    "TRASGI_SERVICE_HOST": "10.0.0.11",
    "TRASGI_SERVICE_PORT": "8000",
    "TRASGI_SERVICE_PORT_HTTP": "8000",
    "TRASGI_PORT": "tcp://10.0.0.11:8000",
    "TRASGI_PORT_8000_TCP": "tcp://10.0.0.11:8000",
    "TRASGI_PORT_8000_TCP_PROTO": "tcp",
    "TRASGI_PORT_8000_TCP_PORT": "8000",
    "TRASGI_PORT_8000_TCP_ADDR": "10.0.0.11",
    "TRASGI_WEB_SERVICE_HOST": "10.0.0.12",
    "TRASGI_WEB_PORT": "udp://10.0.0.12:53",
    "TRASGI_METRICS_PORT": "sctp://10.0.0.13:9000",
}


def test_kubernetes_service_links_are_ignored_in_one_warning() -> None:
    reading = read_environ(SERVICE_LINKS)
    assert reading.values == {}
    (warning,) = reading.warnings
    assert "enableServiceLinks: false" in warning
    for name in SERVICE_LINKS:
        assert name in warning
    assert "did you mean" not in warning
    assert resolve(["x:app"], SERVICE_LINKS).config == Config()


def test_a_service_link_beside_a_real_option() -> None:
    reading = read_environ({**SERVICE_LINKS, "TRASGI_HOST": "0.0.0.0"})
    assert reading.values == {"host": "0.0.0.0"}


def test_the_command_line_wins_without_the_environment_being_judged() -> None:
    environ = {"TRASGI_PORT": "not a port", "TRASGI_ACCESS_LOG": "maybe"}
    resolved = resolve(["x:app", "--port", "8001", "--no-access-log"], environ)
    assert (resolved.config.port, resolved.config.access_log) == (8001, False)
    with pytest.raises(ConfigError, match="TRASGI_ACCESS_LOG"):
        resolve(["x:app"], environ)


def test_from_environ_logs_what_it_ignores(caplog: pytest.LogCaptureFixture) -> None:
    values, app = from_environ({"TRASGI_VERSION": "1", "TRASGI_APP": "a:b"})
    assert (values, app) == ({}, "a:b")
    assert [r.getMessage() for r in caplog.records] == [
        "TRASGI_VERSION: unknown option, ignored"
    ]


def test_headers_in_one_variable_keep_their_commas() -> None:
    assert parse_text("header", "cache-control: no-store, max-age=0, x-a:1") == (
        "cache-control: no-store, max-age=0",
        "x-a:1",
    )


# -- --env-file -----------------------------------------------------------------


def test_env_file_is_loaded_before_the_variables_are_read(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# the deployment's defaults\n"
        "TRASGI_PORT=8100\n"
        "export TRASGI_ROOT_PATH='/api'\n"
        "DATABASE_URL=postgres://db/app\n"
        "TRASGI_HOST=0.0.0.0\n"
    )
    environ = {"TRASGI_HOST": "127.0.0.2"}
    config = resolve(["x:app", "--env-file", str(env_file)], environ).config
    assert (config.port, config.root_path) == (8100, "/api")
    assert config.host == "127.0.0.2"  # the environment already had it: it wins
    assert environ["DATABASE_URL"] == "postgres://db/app"  # for the application
    assert config.env_file == str(env_file)


def test_env_file_named_by_the_environment_or_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / "prod.env"
    env_file.write_text("TRASGI_BACKLOG=64\n")
    from_variable = resolve(["x:app"], {"TRASGI_ENV_FILE": str(env_file)})
    assert from_variable.config.backlog == 64
    path = write(tmp_path, f"env_file = {str(env_file)!r}\n")
    assert resolve(["x:app", "--config", path]).config.backlog == 64


def test_missing_env_file_names_the_source(tmp_path: Path) -> None:
    absent = tmp_path / "absent.env"
    with pytest.raises(ConfigError, match=r"^--env-file .*absent\.env: cannot read"):
        resolve(["x:app", "--env-file", str(absent)])
    with pytest.raises(ConfigError, match=r"^TRASGI_ENV_FILE .*: cannot read"):
        resolve(["x:app"], {"TRASGI_ENV_FILE": str(absent)})
    path = write(tmp_path, f"env_file = {str(absent)!r}\n")
    with pytest.raises(ConfigError, match=r"trasgi\.toml: env_file .*: cannot read"):
        resolve(["x:app", "--config", path])


def test_config_from_args_gives_the_config_and_the_app() -> None:
    namespace = build_parser().parse_args(["x:app", "--port", "8001"])
    config, app = config_from_args(namespace, {"TRASGI_VERSION": "1"})
    assert (config.port, app) == (8001, "x:app")


def test_reload_with_workers_ignores_workers_with_a_warning() -> None:
    resolved = resolve(["x:app", "--reload", "--workers", "4"])
    assert resolved.config.workers is None
    assert resolved.config.reload is True
    assert resolved.warnings == (
        "--workers is ignored with --reload: reload runs one server",
    )


def test_env_file_without_python_dotenv_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("A=1\n")
    monkeypatch.setitem(sys.modules, "dotenv", None)  # as if not installed
    with pytest.raises(ConfigError, match=re.escape("--env-file needs python-dotenv")):
        resolve(["x:app", "--env-file", str(tmp_path / ".env")])
