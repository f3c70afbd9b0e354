"""Every test that starts a process carries the ``process`` marker.

``pytest -m "not process"`` is the fast loop, and it is only as fast as the
marker is complete. The rule is checked on the sources: a test starts a process
when its body, or anything of the test modules it reaches by name (a function,
a class, a constant, a fixture it requests, a helper imported from another test
module), mentions ``subprocess``, ``Popen``, ``run_process``, ``open_process``
or ``sys.executable``. Annotations do not count: naming a type starts nothing.

The check cannot see a peer started some other way; such tests are marked by
hand, as the ones of ``test_nginx.py`` would have to be if nginx were not
started with ``open_process``.
"""

from __future__ import annotations

import ast
import textwrap
from functools import cached_property
from pathlib import Path

TESTS = Path(__file__).parent
#: Names that start a process, or that only a process-starting test needs.
SPAWNERS = {"subprocess", "Popen", "run_process", "open_process"}
MARK = "pytest.mark.process"


class References(ast.NodeVisitor):
    """The names a piece of code uses, and whether it starts a process itself."""

    def __init__(self, node: ast.AST) -> None:
        self.names: set[str] = set()
        self.parameters: set[str] = set()
        self.spawns = False
        self.visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(node.id)
        self.spawns |= node.id in SPAWNERS

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.spawns |= node.attr in SPAWNERS
        self.spawns |= ast.unparse(node) == "sys.executable"
        self.generic_visit(node)

    def visit_arg(self, node: ast.arg) -> None:
        self.parameters.add(node.arg)  # the annotation is not visited

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for child in (*node.decorator_list, node.args, *node.body):
            self.visit(child)  # everything but the return annotation

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        for child in (node.target, node.value):
            if child is not None:
                self.visit(child)


class Module:
    """One test module: its top-level definitions and relative imports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tree = ast.parse(path.read_text(), str(path))
        self.definitions: dict[str, ast.stmt] = {}
        self.imports: dict[str, tuple[Path, str]] = {}
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.definitions[node.name] = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = (
                    node.targets if isinstance(node, ast.Assign) else [node.target]
                )
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.definitions[name.id] = node
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                package = path.parents[node.level - 1]
                source = package.joinpath(*(node.module or "").split(".")).with_suffix(
                    ".py"
                )
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (source, alias.name)

    @cached_property
    def fixtures(self) -> set[str]:
        return {
            name
            for name, node in self.definitions.items()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any("fixture" in ast.unparse(d) for d in node.decorator_list)
        }

    def tests(self) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        return [
            node
            for node in self.tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test")
        ]

    @cached_property
    def marked(self) -> bool:
        """Whether ``pytestmark`` puts the marker on every test of the module."""
        node = self.definitions.get("pytestmark")
        return node is not None and MARK in ast.unparse(node)


class Checker:
    """Follows names across the test modules to find the tests that spawn."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: dict[Path, Module] = {}
        self.references: dict[int, References] = {}

    def module(self, path: Path) -> Module | None:
        if path not in self.modules:
            if not path.is_file():
                return None
            self.modules[path] = Module(path)
        return self.modules[path]

    def conftest_fixtures(self, path: Path) -> dict[str, Module]:
        """The fixtures of the conftest files above ``path``, nearest first."""
        found: dict[str, Module] = {}
        for directory in path.parents:
            conftest = self.module(directory / "conftest.py")
            if conftest is not None:
                for name in conftest.fixtures:
                    found.setdefault(name, conftest)
            if directory == self.root:
                break
        return found

    def spawns(self, module: Module, node: ast.AST) -> bool:
        seen: set[int] = set()
        pending: list[tuple[Module, ast.AST]] = [(module, node)]
        while pending:
            where, code = pending.pop()
            if id(code) not in self.references:
                self.references[id(code)] = References(code)
            references = self.references[id(code)]
            if references.spawns:
                return True
            wanted = [(where, name) for name in references.names]
            fixtures = self.conftest_fixtures(where.path)
            for name in references.parameters:
                if name in where.fixtures:
                    wanted.append((where, name))
                elif name in fixtures:
                    wanted.append((fixtures[name], name))
            for owner, name in wanted:
                target = self.resolve(owner, name)
                if target is not None and id(target[1]) not in seen:
                    seen.add(id(target[1]))
                    pending.append(target)
        return False

    def resolve(self, module: Module, name: str) -> tuple[Module, ast.AST] | None:
        if name in module.definitions:
            return module, module.definitions[name]
        if name in module.imports:
            path, original = module.imports[name]
            other = self.module(path)
            if other is not None:
                return self.resolve(other, original)
        return None

    def unmarked(self) -> list[str]:
        """The tests that start a process without the marker."""
        missing = []
        for path in sorted(self.root.rglob("test_*.py")):
            module = self.module(path)
            assert module is not None
            for test in module.tests():
                marked = module.marked or any(
                    MARK in ast.unparse(d) for d in test.decorator_list
                )
                if not marked and self.spawns(module, test):
                    relative = path.relative_to(self.root.parent)
                    missing.append(f"{relative}::{test.name}")
        return missing


def test_every_test_that_starts_a_process_is_marked() -> None:
    assert Checker(TESTS).unmarked() == []


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_the_check_follows_helpers_fixtures_and_constants(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    write(root / "__init__.py", "")
    write(
        root / "helpers.py",
        """
        import sys
        CLI = [sys.executable, "-m", "trasgi"]
        def indirect():
            return run(CLI)
        def run(command):
            pass
        """,
    )
    write(
        root / "conftest.py",
        """
        import pytest, trio
        @pytest.fixture
        async def server():
            await trio.lowlevel.open_process(["true"])
        """,
    )
    write(
        root / "sub" / "test_things.py",
        """
        import subprocess
        import pytest
        from ..helpers import indirect as helper

        def test_by_helper():
            helper()

        def test_by_fixture(server):
            pass

        def test_by_name():
            subprocess.run(["true"])

        @pytest.mark.process
        def test_marked():
            subprocess.run(["true"])

        def test_annotation_only(result: subprocess.CompletedProcess[str]) -> None:
            pass

        def test_nothing():
            pass
        """,
    )
    assert Checker(root).unmarked() == [
        "tests/sub/test_things.py::test_by_helper",
        "tests/sub/test_things.py::test_by_fixture",
        "tests/sub/test_things.py::test_by_name",
    ]
    write(
        root / "sub" / "test_marked.py",
        """
        import subprocess
        import pytest
        pytestmark = pytest.mark.process
        def test_whole_module():
            subprocess.run(["true"])
        """,
    )
    assert "tests/sub/test_marked.py::test_whole_module" not in Checker(root).unmarked()
