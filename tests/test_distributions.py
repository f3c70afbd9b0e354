"""The sdist and the wheel hold both packages, whole, with their type markers.

The sdist is built from the checkout and the wheel from that sdist, as pip
builds one from a package index's sdist: a file the sdist lacks is missing
from the wheel too. ``.ci/run`` also checks their metadata with twine and
imports the installed wheel in a fresh virtual environment.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("trasgi", "trasgi_web")


def package_files() -> set[str]:
    """Every file of the two packages in the checkout, as a wheel names it."""
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (sdist,) = out.glob("trasgi-*.tar.gz")
    (wheel,) = out.glob("trasgi-*-py3-none-any.whl")
    return sdist, wheel


def test_the_wheel_holds_both_packages_whole_with_py_typed(
    distributions: tuple[Path, Path],
) -> None:
    _, wheel = distributions
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    expected = package_files()
    assert {"trasgi/py.typed", "trasgi_web/py.typed"} <= expected
    assert {"trasgi/testing/__init__.py", "trasgi_web/__init__.py"} <= expected
    assert expected <= names, sorted(expected - names)
    outside = {
        name for name in names if not name.startswith(("trasgi/", "trasgi_web/"))
    }
    assert all(".dist-info/" in name for name in outside), sorted(outside)


def test_the_wheel_metadata_names_the_extras_and_the_command(
    distributions: tuple[Path, Path],
) -> None:
    _, wheel = distributions
    with zipfile.ZipFile(wheel) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(info).decode()
        entry_points = archive.read(info.replace("METADATA", "entry_points.txt"))
    assert "License-Expression: MIT" in metadata
    assert "Description-Content-Type: text/markdown" in metadata
    for extra in ("testing", "metrics", "reload", "gunicorn", "templates"):
        assert f"Provides-Extra: {extra}\n" in metadata
    assert b"trasgi = trasgi._ops.cli:main" in entry_points


def test_the_sdist_holds_what_the_wheel_is_built_from(
    distributions: tuple[Path, Path],
) -> None:
    sdist, _ = distributions
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
    assert {"pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"} <= names
    assert package_files() <= names
    # Not the few test modules setuptools would add: no tests at all.
    assert not any(name.startswith("tests/") for name in names)
