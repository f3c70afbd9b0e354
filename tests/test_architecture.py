"""The layers of trasgi, checked: imports go downward only, and never in a cycle.

The order below is the architecture (see CONTRIBUTING.md). A module may import
from its own layer and from the layers below it. Every import counts: at the
top of a module, inside a function, and under ``if TYPE_CHECKING:``, since a
type-only import upward is still a design that depends upward.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import trasgi

PACKAGE = pathlib.Path(trasgi.__file__).parent

#: Top to bottom. The public modules may import anything below them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("trasgi", "trasgi.__main__", "trasgi.testing", "trasgi.workers"),
    ("trasgi._ops",),
    ("trasgi._server",),
    ("trasgi._edge",),
    ("trasgi._io",),
    ("trasgi._config",),
    ("trasgi._protocol",),
    ("trasgi._observe",),
    ("trasgi._asgi", "trasgi._errors", "trasgi._exits", "trasgi._version"),
)

#: The pure layer: no I/O, no clock, no concurrency library.
PURE_LAYER = "trasgi._protocol"
IMPURE_MODULES = frozenset(
    {"trio", "anyio", "asyncio", "socket", "ssl", "time", "select", "selectors"}
)


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, resolved to absolute names, wherever in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base)
                module = f"{prefix}.{node.module}" if node.module else prefix
            else:
                module = node.module or ""
            found.add(module)
            # "from package import module" imports a module too.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def modules() -> dict[str, set[str]]:
    """The package's import graph: module name to the package modules it imports."""
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imported_modules(path) if m in paths and m != name}
        for name, path in paths.items()
    }


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if module == prefix or module.startswith(prefix + "."):
                if prefix == "trasgi" and module != "trasgi":
                    continue
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS"
    return best[1]


def test_every_module_belongs_to_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_imports_go_downward_only() -> None:
    upward = [
        f"{module} imports {target}"
        for module, targets in sorted(modules().items())
        for target in sorted(targets)
        if layer_of(target) < layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_the_pure_layer_does_no_io() -> None:
    offenders = []
    for path in (PACKAGE / PURE_LAYER.rpartition(".")[2]).rglob("*.py"):
        for module in imported_modules(path):
            if module.split(".")[0] in IMPURE_MODULES:
                offenders.append(f"{module_name(path)} imports {module}")
    assert not offenders, "\n".join(offenders)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_no_import_cycles() -> None:
    graph = modules()
    # A package's __init__ re-exporting its modules is not a cycle of design.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": set()}, None),
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"b"}}, ["b", "c", "b"]),
    ],
)
def test_find_cycle(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert find_cycle(graph) == expected
