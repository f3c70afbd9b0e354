"""``--reload``: which files count, and a real reloader serving edited code."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from trasgi import Config
from trasgi._ops.reload import ReloadFilter, watched_dirs

from .test_workers import assert_one_error_line, get, run_cli, running

ROOT_DIR = Path("/srv/project")


def version_app(text: str) -> str:
    return textwrap.dedent(
        f"""
        async def app(scope, receive, send):
            assert scope["type"] == "http"
            await send({{"type": "http.response.start", "status": 200, "headers": []}})
            await send({{"type": "http.response.body", "body": b"{text}"}})
        """
    )


def reload_filter(**options: Any) -> ReloadFilter:
    return ReloadFilter.from_config(Config(**options), (ROOT_DIR,))


@pytest.mark.parametrize(
    ("path", "watched"),
    [
        ("app.py", True),
        ("pkg/models.py", True),
        ("app.pyc", False),
        ("__pycache__/app.cpython-311.pyc", False),
        ("app.py~", False),
        (".app.py.swp", False),
        (".venv/lib/site.py", False),
        (".git/hooks/pre-commit.py", False),
        ("templates/index.html", False),
        ("notes.txt", False),
    ],
)
def test_by_default_python_files_are_watched(path: str, watched: bool) -> None:
    assert reload_filter()(None, str(ROOT_DIR / path)) is watched


def test_only_directories_below_the_watched_one_are_excluded() -> None:
    hidden_root = Path("/home/me/.projects/site")
    check = ReloadFilter.from_config(Config(), (hidden_root,))
    assert check(None, str(hidden_root / "app.py"))
    assert not check(None, str(hidden_root / ".cache" / "app.py"))


@pytest.mark.parametrize(
    ("options", "path", "watched"),
    [
        ({"reload_include": ("*.html",)}, "templates/index.html", True),
        ({"reload_include": ("*.html",)}, "app.py", True),  # added, not replaced
        ({"reload_include": ("templates/*.html",)}, "templates/index.html", True),
        ({"reload_include": ("templates/*.html",)}, "static/index.html", False),
        ({"reload_exclude": ("*.py",)}, "app.py", False),
        ({"reload_exclude": ("tests",)}, "tests/test_app.py", False),
        ({"reload_exclude": ("test_*.py",)}, "tests/test_app.py", False),
        ({"reload_exclude": ("test_*.py",)}, "tests/conftest.py", True),
        ({"reload_include": (".*",)}, ".env.py", True),  # a default exclude lifted
    ],
)
def test_include_and_exclude_patterns_change_the_defaults(
    options: dict[str, tuple[str, ...]], path: str, watched: bool
) -> None:
    assert reload_filter(**options)(None, str(ROOT_DIR / path)) is watched


def test_the_current_directory_is_watched_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert watched_dirs(Config()) == (tmp_path.resolve(),)
    (tmp_path / "src").mkdir()
    assert watched_dirs(Config(reload_dir=("src",))) == ((tmp_path / "src").resolve(),)


@pytest.mark.process
async def test_an_edited_module_is_served_after_the_restart(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    module = source / "versioned.py"
    module.write_text(version_app("one"))
    args = ["versioned:app", "--reload", "--reload-dir", str(source)]
    args += ["--app-dir", str(source), "--port", "0"]
    async with running(*args, cwd=tmp_path) as server:
        port = await server.port()
        assert await get(port) == (200, b"one")

        module.write_text(version_app("two"))
        await server.wait_for(rb"versioned\.py changed: restarting")
        await server.wait_for(rb"listening on http://127\.0\.0\.1:%d" % port, 2)
        assert await get(port) == (200, b"two")  # the same port, held by the parent

        module.write_text("async def app(:\n")  # a syntax error: reported, not fatal
        await server.wait_for(rb"the server failed to start: cannot load the app")
        module.write_text(version_app("three"))
        await server.wait_for(rb"listening on http://127\.0\.0\.1:%d" % port, 3)
        assert await get(port) == (200, b"three")

        server.process.send_signal(signal.SIGTERM)
        assert await server.exit_status() == 0
        await server.wait_closed()
    assert "SyntaxError" in server.text
    assert "Traceback" not in server.text


@pytest.mark.process
def test_a_missing_reload_dir_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(
        "examples.hello:app", "--reload", "--reload-dir", "nosuchdir", cwd=tmp_path
    )
    assert_one_error_line(result, 2, "--reload-dir nosuchdir: not a directory")
