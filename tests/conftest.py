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
