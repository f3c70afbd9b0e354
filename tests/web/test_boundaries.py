"""trasgi_web's boundaries: it stands alone, and its modules form no cycle.

It runs on another ASGI transport and imports nothing of trasgi; inside it,
the module imports form a graph without cycles, so that each module can be
read, and imported, after the ones it uses.
"""

import ast
import pathlib
import subprocess
import sys
from collections.abc import Mapping

import httpx
import pytest

import trasgi_web
from trasgi_web import App, BackgroundTasks, Request, State
from trasgi_web._types import AppLike

PACKAGE = pathlib.Path(trasgi_web.__file__).parent


async def test_works_with_httpx_asgi_transport() -> None:
    app = App()

    @app.get("/items/{item_id:int}")
    async def item(request: Request, item_id: int) -> dict[str, object]:
        return {"id": item_id, "q": request.query.get("q")}

    @app.post("/echo")
    async def echo(request: Request) -> bytes:
        return await request.body()

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        item_response = await client.get("/items/3?q=x")
        echo_response = await client.post("/echo", content=b"body")
        missing = await client.get("/items/x")
        wrong = await client.delete("/items/3")
        head = await client.head("/items/3")
    assert item_response.json() == {"id": 3, "q": "x"}
    assert echo_response.content == b"body"
    assert missing.status_code == 404
    assert wrong.status_code == 405
    assert head.content == b""


def test_no_module_imports_trasgi() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] == "trasgi"
            ]
    assert offenders == []


@pytest.mark.process
def test_importing_trasgi_web_loads_no_trasgi_module() -> None:
    code = (
        "import sys, trasgi_web; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'trasgi'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert result.stdout.strip() == "[]"


def test_app_provides_what_connections_need_of_it() -> None:
    # Connections type scope["app"] as AppLike, not App (which imports them):
    # this annotated assignment is what makes mypy check that App fits it.
    app: AppLike = App()
    assert isinstance(app.state, State)
    assert isinstance(app.background, BackgroundTasks)


# -- no import cycles ----------------------------------------------------------


def module_name(path: pathlib.Path, package: pathlib.Path) -> str:
    """The dotted name of the module at ``path`` inside ``package``."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: pathlib.Path) -> dict[str, set[str]]:
    """Each module of ``package``, and the modules of ``package`` it imports.

    Every import statement counts, wherever it is: at the top, under
    ``if TYPE_CHECKING:`` or inside a function. mypy follows an import under
    ``TYPE_CHECKING`` and a call runs one inside a function, so either can
    close a cycle. An import of ``pkg.sub.mod`` is an edge to that module
    only, not to the ``__init__`` modules above it that Python runs first.
    """
    paths = {module_name(path, package): path for path in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    anchor = parts[: len(parts) - node.level + 1]
                    base = ".".join([*anchor, *filter(None, [node.module])])
                # `from package import name` imports a module when there is one.
                targets += [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
                    for alias in node.names
                ]
        graph[name] = set()
        for target in targets:
            # A name inside a module, or a module outside the package: trim
            # it to the module of the package holding it, if any.
            while target and target not in paths:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def find_cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The cycles that close a depth-first search of ``graph``, as paths.

    Empty exactly when ``graph`` has no cycle; otherwise each cycle is named
    module by module, ending where it started.
    """
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        path.append(module)
        for target in sorted(graph[module]):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return cycles


def test_the_import_graph_counts_every_kind_of_import(tmp_path: pathlib.Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "from .a import A\n",
        "a.py": "import json\nfrom .b import B\nA = 1\n",
        "b.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .sub.c import C\nB = 1\n"
        ),
        "sub/__init__.py": "",
        "sub/c.py": "def f():\n    from .. import a\n    import pkg.sub.d\nC = 1\n",
        "sub/d.py": "from pkg.sub import c\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.sub.c"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.a", "pkg.sub.d"},
        "pkg.sub.d": {"pkg.sub.c"},
    }
    assert find_cycles(graph) == [
        ["pkg.a", "pkg.b", "pkg.sub.c", "pkg.a"],
        ["pkg.sub.c", "pkg.sub.d", "pkg.sub.c"],
    ]
    assert find_cycles({"x": {"y"}, "y": set()}) == []


def test_trasgi_web_modules_import_each_other_without_cycles() -> None:
    graph = import_graph(PACKAGE)
    cycles = find_cycles(graph)
    assert cycles == [], "import cycles: " + "; ".join(
        " -> ".join(cycle) for cycle in cycles
    )
