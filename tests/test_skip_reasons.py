"""A test skipped from inside a trio nursery keeps its reason in ``pytest -rs``.

The suite's conftest re-raises the skip the test itself raised; these tests
run pytest in a child process over a small test module, with the suite's
conftest as a plugin, and read its short summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent

TESTS = """
    import pytest
    import trio

    from tests.helpers import require_tool


    async def test_skips_inside_a_nursery():
        async with trio.open_nursery():
            pytest.skip("the reason of this skip")


    async def test_a_missing_tool_skips_inside_a_nursery():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)
            require_tool("no-such-tool-here", "some-package")


    async def test_xfails_inside_a_nursery():
        async with trio.open_nursery():
            pytest.xfail("the reason of this xfail")

"""


def run_pytest(directory: Path) -> subprocess.CompletedProcess[str]:
    (directory / "test_nursery_skips.py").write_text(textwrap.dedent(TESTS))
    (directory / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    # Not under CI's rules (a missing tool fails there) nor its coverage options.
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(ROOT)
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-rsxf", "-q", str(directory)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_skip_and_xfail_reasons_raised_in_a_nursery_reach_the_summary(
    tmp_path: Path,
) -> None:
    result = run_pytest(tmp_path)
    summary = result.stdout
    skipped = [line for line in summary.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 2
    # Reported where the test skipped, with its reason.
    assert "test_nursery_skips.py:" in skipped[0]
    assert skipped[0].endswith(": the reason of this skip")
    assert "tests/helpers.py:" in skipped[1]
    assert skipped[1].endswith(
        ": no-such-tool-here is missing: apt-get install some-package "
        "(.ci/run installs it)"
    )
    assert (
        "XFAIL test_nursery_skips.py::test_xfails_inside_a_nursery - "
        "the reason of this xfail"
    ) in summary
    assert summary.splitlines()[-1].startswith("2 skipped, 1 xfailed in ")
