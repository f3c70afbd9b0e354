"""FileResponse hands files to the server: path send, zero-copy send for ranges.

The real server (in memory, over HTTP/1.1 and HTTP/2) offers both
extensions; a plain ASGI wrapper records which messages the response sent,
or hides the extensions to show the fallback. GZip compression, which the
server's own file sending would bypass, hides them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trasgi.testing import open_client
from trasgi_web import App, FileResponse, GZipMiddleware

CONTENT = bytes(range(256)) * 1024  # 256 KiB
FILE_SENDS = ("http.response.pathsend", "http.response.zerocopysend")


class Recording:
    """An ASGI wrapper noting the message types the app sends."""

    def __init__(self, app: Any, *, hide_file_sends: bool = False) -> None:
        self.app = app
        self.hide = hide_file_sends
        self.sent: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.hide:
            extensions = scope["extensions"]
            kept = {k: v for k, v in extensions.items() if k not in FILE_SENDS}
            scope = {**scope, "extensions": kept}

        async def recording_send(message: Any) -> None:
            self.sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, recording_send)


def file_app(tmp_path: Path, name: str = "data.bin") -> App:
    path = tmp_path / name
    path.write_bytes(CONTENT)
    app = App()

    @app.get("/file")
    async def file() -> FileResponse:
        return FileResponse(path)

    return app


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2"])
async def test_a_whole_file_goes_by_path(tmp_path: Path, http2: bool) -> None:
    recording = Recording(file_app(tmp_path))
    async with open_client(recording, http2=http2) as client:
        response = await client.get("/file")
    assert response.status_code == 200
    assert response.content == CONTENT
    assert "http.response.pathsend" in recording.sent
    assert "http.response.body" not in recording.sent


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2"])
async def test_a_range_goes_by_zero_copy_send(tmp_path: Path, http2: bool) -> None:
    recording = Recording(file_app(tmp_path))
    async with open_client(recording, http2=http2) as client:
        response = await client.get("/file", headers={"range": "bytes=1000-1999"})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 1000-1999/{len(CONTENT)}"
    assert response.content == CONTENT[1000:2000]
    assert "http.response.zerocopysend" in recording.sent


async def test_without_the_extensions_the_file_is_read_and_sent(
    tmp_path: Path,
) -> None:
    recording = Recording(file_app(tmp_path), hide_file_sends=True)
    async with open_client(recording) as client:
        whole = await client.get("/file")
        part = await client.get("/file", headers={"range": "bytes=-10"})
    assert whole.content == CONTENT
    assert part.content == CONTENT[-10:]
    assert not set(FILE_SENDS) & set(recording.sent)


async def test_a_compressed_file_is_read_through_the_compressor(
    tmp_path: Path,
) -> None:
    app = file_app(tmp_path, "page.txt")
    app.add_middleware(GZipMiddleware, minimum_size=100)
    async with open_client(app) as client:
        response = await client.get("/file", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.read()) == len(CONTENT)  # httpx undoes the coding
    assert response.content == CONTENT
