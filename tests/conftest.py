"""Fixtures shared by the tests; the helpers they import are in ``helpers.py``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Generator

import pytest

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

# The helpers assert as the tests do: rewrite them too, for the same messages.
pytest.register_assert_rewrite("tests.helpers")

#: pytest's outcomes that a test may raise on purpose, with a reason.
_OUTCOMES = (pytest.skip.Exception, pytest.xfail.Exception)


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture trasgi.error at DEBUG and above."""
    caplog.set_level(logging.DEBUG, logger="trasgi.error")
    return caplog


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Keep the reason of a skip (or xfail) raised inside a trio nursery.

    A test that skips from inside a nursery (a missing tool:
    ``helpers.require_tool``) raises an exception group around pytest's
    ``Skipped``. pytest-trio turns a group of one such outcome into the
    outcome, but raises a new one without its reason, so that ``pytest -rs``
    shows pytest's own line instead of the install command. The original,
    still the new one's context, is raised in its place.
    """
    try:
        return (yield)
    except _OUTCOMES as outcome:
        original = _lone_leaf(outcome.__context__)
        if type(original) is type(outcome):
            raise original from None
        raise


def _lone_leaf(error: BaseException | None) -> BaseException | None:
    """The only exception inside nested groups; ``None`` if there are several."""
    while isinstance(error, BaseExceptionGroup):
        if len(error.exceptions) != 1:
            return None
        error = error.exceptions[0]
    return error


# -- HTTP/1.1 parsers: the hostile-input and connection tests run with each --
#: Where every test runs once per parser (``--http``), as ``[h11]`` and
#: ``[httptools]``: the same tests, whichever parser feeds the strict layer.
_EACH_PARSER = ("tests/hostile/", "tests/io/")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    path = metafunc.definition.path.as_posix()
    if "h1_parser" in metafunc.fixturenames and any(p in path for p in _EACH_PARSER):
        metafunc.parametrize("h1_parser", ["h11", "httptools"], indirect=True)


@pytest.fixture(autouse=True)
def h1_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The HTTP/1.1 parser every connection of the test uses, whatever its config."""
    from trasgi._io import http1
    from trasgi._protocol.h1_parsers import parser_factory

    mode = getattr(request, "param", None)
    if mode is not None:
        monkeypatch.setattr(
            http1, "parser_factory", lambda _mode, limit: parser_factory(mode, limit)
        )
        monkeypatch.setenv("TRASGI_HTTP", mode)  # for servers run as processes
    return mode or "as configured"
