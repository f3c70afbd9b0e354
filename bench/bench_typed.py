"""The typed route of the ``typed`` scenario, in each framework and as plain ASGI.

``POST /typed?limit=N`` takes a JSON object of five fields (a string, a
float, an int, a list of strings and a bool), validates the query value and
the body against their declared types, and answers the item as JSON. Each
framework does it its own idiomatic way: trasgi_web and Litestar with a
msgspec ``Struct``, FastAPI with a pydantic model; the plain ASGI version
checks the fields by hand.

The factories import their framework only when called (the server imports
this module in the bench venv, where all of them are installed). This
module has no ``from __future__ import annotations``: the models are local
classes, and the frameworks read the handlers' annotations as objects.
"""

import importlib
import json
from typing import Any
from urllib.parse import parse_qs

import msgspec
from bench_apps import Receive, Scope, Send

_FIELDS = {"name": str, "price": float, "count": int, "tags": list, "active": bool}


def trasgi_web_typed() -> Any:
    """trasgi_web: a msgspec Struct body and an int query parameter."""
    trasgi_web = importlib.import_module("trasgi_web")

    class Item(msgspec.Struct):
        name: str
        price: float
        count: int
        tags: list[str]
        active: bool

    web = trasgi_web.App()

    async def typed(item: Item, limit: int = 10) -> Item:
        return item

    web.post("/typed")(typed)
    return web


def fastapi_typed() -> Any:
    """FastAPI: a pydantic model body and an int query parameter."""
    fastapi = importlib.import_module("fastapi")
    pydantic: Any = importlib.import_module("pydantic")

    class Item(pydantic.BaseModel):  # type: ignore[misc]
        name: str
        price: float
        count: int
        tags: list[str]
        active: bool

    api = fastapi.FastAPI()

    async def typed(item: Item, limit: int = 10) -> Item:
        return item

    api.post("/typed")(typed)
    return api


def litestar_typed() -> Any:
    """Litestar: a msgspec Struct body and an int query parameter."""
    litestar = importlib.import_module("litestar")

    class Item(msgspec.Struct):
        name: str
        price: float
        count: int
        tags: list[str]
        active: bool

    async def typed(data: Item, limit: int = 10) -> Item:
        return data

    handler = litestar.post("/typed", status_code=200)(typed)
    return litestar.Litestar(route_handlers=[handler])


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _valid(item: Any) -> bool:
    if not isinstance(item, dict) or set(item) != set(_FIELDS):
        return False
    for key, kind in _FIELDS.items():
        value = item[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return False
    return all(isinstance(tag, str) for tag in item["tags"])


async def plain_typed(scope: Scope, receive: Receive, send: Send) -> None:
    """Plain ASGI: the same checks by hand, with the standard json module."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    limit = query.get("limit", ["10"])[0]
    try:
        item = json.loads(await _read_body(receive))
    except ValueError:
        item = None
    status, body = 200, b""
    if not limit.isdigit() or not _valid(item):
        status, body = 422, b'{"detail":"invalid"}'
    else:
        body = json.dumps(item, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
