"""The public surface is a decision: this test pins it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import trasgi
import trasgi.testing


def test_trasgi_exports() -> None:
    assert sorted(trasgi.__all__) == [
        "ASGIProtocolError",
        "ClientDisconnected",
        "Config",
        "ConnectionInfo",
        "LifespanFailure",
        "__version__",
        "run",
        "serve_connection",
        "serve_listeners",
        "serve_tcp",
    ]
    for name in trasgi.__all__:
        assert getattr(trasgi, name) is not None


def test_public_objects_live_in_private_modules() -> None:
    for name in trasgi.__all__:
        obj = getattr(trasgi, name)
        module = getattr(obj, "__module__", "trasgi._version")
        assert module.startswith("trasgi._"), (name, module)


def test_testing_exports() -> None:
    assert set(trasgi.testing.__all__) >= {"open_client", "open_connection"}


def test_workers_exports_the_gunicorn_worker_class() -> None:
    import gunicorn.workers.base

    import trasgi.workers

    assert trasgi.workers.__all__ == ["TrasgiWorker"]
    assert issubclass(trasgi.workers.TrasgiWorker, gunicorn.workers.base.Worker)


@pytest.mark.process
def test_importing_trasgi_does_not_import_gunicorn() -> None:
    # gunicorn is an optional extra: only trasgi.workers imports it.
    code = "import sys, trasgi, trasgi.testing; print('gunicorn' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == "False\n"


def test_client_disconnected_is_an_oserror() -> None:
    # ASGI HTTP spec 2.4: send() on a closed connection raises OSError.
    assert issubclass(trasgi.ClientDisconnected, OSError)


def test_the_console_script_names_a_real_function() -> None:
    """pyproject's ``trasgi`` command must survive modules moving."""
    import importlib
    import pathlib

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    scripts = tomllib.loads(pyproject.read_text())["project"]["scripts"]
    module, _, function = scripts["trasgi"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
