"""An app that fails to import is located at the user's own line."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from trasgi._errors import AppLoadError
from trasgi._server.importer import load_app


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]
    sys.path.remove(str(tmp_path))


def write(directory: Path, name: str, source: str) -> None:
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


def test_a_failure_inside_the_standard_library_points_at_the_users_line(
    app_dir: Path,
) -> None:
    write(
        app_dir, "needs_env", 'import os\n\nSECRET = os.environ["TRASGI_TEST_UNSET"]\n'
    )
    with pytest.raises(AppLoadError) as failed:
        load_app("needs_env:app", app_dir=str(app_dir))
    message = str(failed.value)
    assert message == (
        "importing 'needs_env' raised KeyError: 'TRASGI_TEST_UNSET' "
        f"({app_dir / 'needs_env.py'}, line 3)"
    )
    assert "frozen" not in message


def test_the_innermost_own_frame_wins_across_modules(app_dir: Path) -> None:
    write(
        app_dir,
        "settings_mod",
        "import json\n\ndef load():\n    return json.loads('{')\n",
    )
    write(
        app_dir,
        "uses_settings",
        "import settings_mod\n\nCONFIG = settings_mod.load()\n",
    )
    with pytest.raises(AppLoadError) as failed:
        load_app("uses_settings:app", app_dir=str(app_dir))
    assert str(failed.value).endswith(f"({app_dir / 'settings_mod.py'}, line 4)")


def test_a_failing_factory_points_at_the_factory(app_dir: Path) -> None:
    write(
        app_dir, "fact", "import os\n\ndef make():\n    return os.environ['NOPE_X']\n"
    )
    with pytest.raises(AppLoadError) as failed:
        load_app("fact:make", factory=True, app_dir=str(app_dir))
    assert str(failed.value).endswith(f"({app_dir / 'fact.py'}, line 4)")


def test_the_traceback_is_logged_at_debug(
    app_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trasgi.error")
    write(app_dir, "needs_env2", 'import os\nX = os.environ["TRASGI_TEST_UNSET"]\n')
    with pytest.raises(AppLoadError):
        load_app("needs_env2:app", app_dir=str(app_dir))
    (record,) = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert record.getMessage() == "importing 'needs_env2' raised:"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], KeyError)
    assert "<frozen os>" in caplog.text  # the whole traceback, frozen frames too


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trasgi", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.process
def test_the_command_line_says_one_line_and_the_traceback_at_debug(
    tmp_path: Path,
) -> None:
    write(tmp_path, "needs_env3", 'import os\nX = os.environ["TRASGI_TEST_UNSET"]\n')
    quiet = run_cli("needs_env3:app", "--app-dir", str(tmp_path))
    loud = run_cli("needs_env3:app", "--app-dir", str(tmp_path), "--log-level", "debug")
    line = (
        "trasgi: error: cannot load the application: importing 'needs_env3' raised "
        f"KeyError: 'TRASGI_TEST_UNSET' ({tmp_path / 'needs_env3.py'}, line 2)"
    )
    assert (quiet.returncode, quiet.stderr.splitlines()) == (1, [line])
    assert loud.returncode == 1
    assert "Traceback (most recent call last):" in loud.stderr
    assert 'File "<frozen os>"' in loud.stderr
    assert loud.stderr.splitlines()[-1] == line
