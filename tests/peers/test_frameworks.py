"""The frameworks docs/explanation/which-applications.md says run on trio, served.

Each serves a small app through ``trasgi.testing``: the real server, in
memory, in this test's trio run. Starlette, FastAPI and Litestar reach trio
through anyio; quart-trio is Quart on trio.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import pytest
from fastapi import Depends, FastAPI
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody
from pydantic import BaseModel

from trasgi import Config
from trasgi._io import asyncio_apps
from trasgi.testing import open_client


async def test_starlette_routes_streams_and_runs_sync_code_in_threads() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    def blocking(request: Request) -> PlainTextResponse:
        time.sleep(0)  # a sync endpoint: Starlette runs it in an anyio thread
        return PlainTextResponse("from a thread")

    async def echo(request: Request) -> JSONResponse:
        await anyio.sleep(0.001)  # a real wait, through anyio, on trio
        return JSONResponse({"body": (await request.body()).decode()})

    async def stream(request: Request) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for word in (b"one ", b"two"):
                await anyio.sleep(0.001)  # a real wait, through anyio, on trio
                yield word

        return StreamingResponse(parts())

    app = Starlette(
        routes=[
            Route("/sync", blocking),
            Route("/echo", echo, methods=["POST"]),
            Route("/stream", stream),
        ]
    )
    async with open_client(app) as client:
        assert (await client.get("/sync")).text == "from a thread"
        assert (await client.post("/echo", content=b"hi")).json() == {"body": "hi"}
        assert (await client.get("/stream")).text == "one two"


class Item(BaseModel):
    name: str
    price: float


def settings() -> dict[str, str]:
    return {"currency": "EUR"}


fastapi_app = FastAPI()


@fastapi_app.post("/items")
async def create(
    item: Item, config: Annotated[dict[str, str], Depends(settings)]
) -> dict[str, Any]:
    return {"name": item.name, "price": item.price, **config}


@fastapi_app.get("/sync/{n}")
def square(n: int) -> int:
    return n * n  # a sync endpoint: FastAPI runs it in an anyio thread


async def test_fastapi_validates_bodies_and_runs_dependencies() -> None:
    async with open_client(fastapi_app) as client:
        created = await client.post("/items", json={"name": "pen", "price": 1.5})
        invalid = await client.post("/items", json={"name": "pen"})
        squared = await client.get("/sync/7")
    assert created.json() == {"name": "pen", "price": 1.5, "currency": "EUR"}
    assert invalid.status_code == 422
    assert squared.json() == 49


@get("/hello/{name:str}", sync_to_thread=False)
def hello(name: FromPath[str]) -> dict[str, str]:
    return {"hello": name}


@post("/double")
async def double(data: JSONBody[dict[str, int]]) -> dict[str, int]:
    await anyio.sleep(0.001)  # a real wait, through anyio, on trio
    return {key: value * 2 for key, value in data.items()}


async def test_litestar_serves_on_trio() -> None:
    # No logging_config: Litestar's default configures the root logger for the
    # whole process (a queue handler), and every later test would log into it.
    app = Litestar([hello, double], logging_config=None)
    async with open_client(app) as client:
        assert (await client.get("/hello/trio")).json() == {"hello": "trio"}
        assert (await client.post("/double", json={"a": 2})).json() == {"a": 4}


async def test_quart_trio_serves_with_its_lifespan() -> None:
    import trio
    from quart_trio import QuartTrio

    app = QuartTrio(__name__)
    started: list[str] = []

    @app.before_serving
    async def startup() -> None:
        started.append("startup")

    @app.get("/")
    async def index() -> dict[str, str]:
        await trio.sleep(0.001)
        return {"runs_on": "trio"}

    async with open_client(app, config=Config(lifespan="on")) as client:
        assert (await client.get("/")).json() == {"runs_on": "trio"}
    assert started == ["startup"]


# Quart's request coroutine, made for an asyncio task, is never awaited on
# trio; collected below, so that its warning is this test's and expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_quart_on_asyncio_fails_with_the_hint(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quart import Quart

    monkeypatch.setattr(asyncio_apps._Hint, "given", False)
    app = Quart(__name__)

    @app.get("/")
    async def index() -> str:
        return "never"

    async with open_client(app) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert asyncio_apps.HINT in caplog.messages
    caplog.clear()  # the logged traceback holds the coroutine
    del app, index
    gc.collect()
