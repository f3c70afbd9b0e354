"""Fixtures shared by the tests; the helpers they import are in ``helpers.py``."""

from __future__ import annotations

import logging

import pytest

# The helpers assert as the tests do: rewrite them too, for the same messages.
pytest.register_assert_rewrite("tests.helpers")


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture trasgi.error at DEBUG and above."""
    caplog.set_level(logging.DEBUG, logger="trasgi.error")
    return caplog


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
