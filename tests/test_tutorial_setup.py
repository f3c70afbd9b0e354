"""The tutorials' steps run as their "Before you start" section says.

Each step is saved as ``test_stepN.py`` in a directory of its own, outside
the checkout, beside the ``pytest.ini`` the page shows, and run with pytest
there; the step that imports the checkout's ``examples`` runs from the
checkout's root, as the page says. ``tests/test_docs.py`` runs the same
blocks in-process; this shows the instructions around them are right.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .test_docs import FRAGMENT, PYTHON_WORDS, Block, fenced_blocks

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = ROOT / "docs" / "tutorial"


def steps(page: str) -> list[Block]:
    return [
        block
        for block in fenced_blocks(TUTORIALS / page)
        if block.words[:1] and block.words[0] in PYTHON_WORDS
        if FRAGMENT not in block.words
    ]


def pytest_ini() -> str:
    """The ``pytest.ini`` of the todo tutorial's "Before you start"."""
    (block,) = [b for b in fenced_blocks(TUTORIALS / "todo-api.md") if b.info == "ini"]
    return block.code


def run_pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The tutorial's reader has no coverage options of this suite's CI.
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def save_steps(directory: Path, page: str) -> list[str]:
    names = []
    for number, block in enumerate(steps(page), start=1):
        name = f"test_step{number}.py"
        (directory / name).write_text(block.code)
        names.append(name)
    return names


@pytest.mark.parametrize(
    ("page", "own_steps"), [("todo-api.md", 6), ("notes-app.md", 5)]
)
def test_the_steps_run_in_a_directory_of_their_own(
    tmp_path: Path, page: str, own_steps: int
) -> None:
    tutorial = tmp_path / "todo-tutorial"
    tutorial.mkdir()
    (tutorial / "pytest.ini").write_text(pytest_ini())
    names = save_steps(tutorial, page)[:own_steps]
    result = run_pytest(*names, cwd=tutorial)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"{own_steps} passed")


def test_the_step_using_the_examples_runs_from_the_checkout_root(
    tmp_path: Path,
) -> None:
    tutorial = tmp_path / "todo-tutorial"
    tutorial.mkdir()
    (tutorial / "pytest.ini").write_text(pytest_ini())
    step7 = save_steps(tutorial, "todo-api.md")[6]
    assert "from examples import" in (tutorial / step7).read_text()
    result = run_pytest(str(tutorial / step7), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 passed")


def test_without_trio_mode_pytest_refuses_the_async_tests(tmp_path: Path) -> None:
    # What the page says happens without its pytest.ini.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    save_steps(tmp_path, "todo-api.md")
    result = run_pytest("test_step1.py", cwd=tmp_path)
    assert result.returncode != 0
    assert "async def functions are not natively supported" in result.stdout
