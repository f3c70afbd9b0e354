"""Every python block of the trasgi_web docs runs, and its tests pass.

The convention is the docs' own (docs/index.md): a ``python`` block is a
complete module; its top-level ``test_*`` functions are called, async ones
under trio, an ``autojump_clock`` parameter getting a mock clock.
"""

import functools
import inspect
import pathlib
import re
from typing import Any

import pytest
import trio
import trio.testing

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [
    ROOT / "docs" / "tutorial" / "todo-api.md",
    *sorted((ROOT / "docs" / "reference").glob("web*.md")),
]
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[Any]:
    found = []
    for page in PAGES:
        for number, code in enumerate(_BLOCK.findall(page.read_text()), 1):
            found.append(pytest.param(code, id=f"{page.name}-{number}"))
    return found


def test_pages_exist_and_have_runnable_blocks() -> None:
    assert all(page.exists() for page in PAGES)
    # Every web*.md reference page is run, both newest among them.
    assert ROOT / "docs" / "reference" / "web-typed.md" in PAGES
    assert ROOT / "docs" / "reference" / "web-security.md" in PAGES
    assert len(PAGES) == 6
    assert len(blocks()) >= 10


@pytest.mark.parametrize("code", blocks())
def test_block_runs(code: str) -> None:
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    exec(compile(code, "<docs>", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    for test in tests:
        if inspect.iscoroutinefunction(test):
            if "autojump_clock" in inspect.signature(test).parameters:
                clock = trio.testing.MockClock(autojump_threshold=0)
                trio.run(functools.partial(test, autojump_clock=clock), clock=clock)
            else:
                trio.run(test)
        else:
            test()
