"""trasgi_web stands alone: another ASGI transport, and no trasgi import."""

import ast
import pathlib
import subprocess
import sys

import httpx
import pytest

import trasgi_web
from trasgi_web import App, Request

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
