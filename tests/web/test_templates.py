"""Jinja2Templates and flash messages."""

import pathlib
from typing import Any

import jinja2
import pytest
import trio

from trasgi.testing import open_client
from trasgi_web import (
    App,
    CSRFMiddleware,
    HTTPConnection,
    Jinja2Templates,
    RedirectResponse,
    Request,
    SessionMiddleware,
    flash,
    get_flashed_messages,
)
from trasgi_web._templates import PIECES_PER_CHECKPOINT

TEMPLATES = {
    "base.html": (
        "<title>{% block title %}{% endblock %}</title>"
        "{% for category, message in get_flashed_messages(with_categories=true) %}"
        '<p class="{{ category }}">{{ message }}</p>'
        "{% endfor %}"
        "{% block body %}{% endblock %}"
    ),
    "note.html": (
        '{% extends "base.html" %}'
        "{% block title %}{{ note.title }}{% endblock %}"
        "{% block body %}"
        "<a href=\"{{ url_for('note', note_id=note.id) }}\">{{ note.title }}</a>"
        '<form method="post"><input name="csrf_token" value="{{ csrf_token() }}">'
        "</form>{{ site }}"
        "{% endblock %}"
    ),
    "long.html": "{% for i in range(count) %}{{ i }},{% endfor %}",
    "broken.html": "line one\nline two\n{{ missing.attribute }}\n",
    "syntax.html": "ok\n{% if %}\n",
}


@pytest.fixture
def templates(tmp_path: pathlib.Path) -> Jinja2Templates:
    for name, text in TEMPLATES.items():
        (tmp_path / name).write_text(text)

    def site(request: HTTPConnection) -> dict[str, Any]:
        return {"site": "Notes"}

    return Jinja2Templates(directory=tmp_path, context_processors=[site])


def page_app(templates: Jinja2Templates, debug: bool = False) -> App:
    app = App(debug=debug)

    @app.get("/notes/{note_id:int}")
    async def note(request: Request, note_id: int) -> Any:
        return templates.TemplateResponse(
            request, "note.html", {"note": {"id": note_id, "title": "<b>milk</b>"}}
        )

    @app.post("/notes/{note_id:int}/flash")
    async def flash_it(request: Request, note_id: int) -> Any:
        flash(request, "saved")
        flash(request, "careful", "warning")
        return RedirectResponse(request.url_for("note", note_id=note_id), 303)

    @app.get("/page/{name}")
    async def page(request: Request, name: str) -> Any:
        return templates.TemplateResponse(
            request, name, {"count": 1000}, status_code=201, headers={"x-a": "b"}
        )

    app.add_middleware(CSRFMiddleware)
    app.add_middleware(SessionMiddleware, secret_key="k")
    return app


async def test_a_page_autoescapes_and_has_the_helpers(
    templates: Jinja2Templates,
) -> None:
    async with open_client(page_app(templates)) as client:
        response = await client.get("/notes/7")
        other = (await client.get("/notes/7")).text.split('value="')[1].split('"')[0]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert int(response.headers["content-length"]) == len(response.content)
    body = response.text
    assert "<title>&lt;b&gt;milk&lt;/b&gt;</title>" in body
    assert '<a href="/notes/7">&lt;b&gt;milk&lt;/b&gt;</a>' in body
    assert body.endswith("</form>Notes")
    token = body.split('value="')[1].split('"')[0]
    # The session's secret, masked anew for each page.
    assert len(token) == len(other) == 88
    assert token != other


async def test_flash_messages_show_once(templates: Jinja2Templates) -> None:
    async with open_client(page_app(templates)) as client:
        token = (await client.get("/notes/1")).text.split('value="')[1].split('"')[0]
        response = await client.post(
            "/notes/1/flash", data={"csrf_token": token}, follow_redirects=True
        )
        assert '<p class="info">saved</p><p class="warning">careful</p>' in (
            response.text
        )
        again = await client.get("/notes/1")
        assert "saved" not in again.text


async def test_get_flashed_messages_filters_and_repeats() -> None:
    app = App()

    @app.post("/")
    async def both(request: Request) -> dict[str, Any]:
        flash(request, "a")
        flash(request, "b", "error")
        return {
            "errors": get_flashed_messages(request, category_filter=["error"]),
            "all": get_flashed_messages(request),
            "pairs": get_flashed_messages(request, with_categories=True),
        }

    @app.get("/")
    async def after(request: Request) -> list[str]:
        return get_flashed_messages(request)

    app.add_middleware(SessionMiddleware, secret_key="k")
    async with open_client(app) as client:
        response = await client.post("/")
        assert response.json() == {
            "errors": ["b"],
            "all": ["a", "b"],
            "pairs": [["info", "a"], ["error", "b"]],
        }
        assert (await client.get("/")).json() == []


async def test_status_headers_and_head(templates: Jinja2Templates) -> None:
    async with open_client(page_app(templates)) as client:
        get = await client.get("/page/long.html")
        head = await client.head("/page/long.html")
    assert get.status_code == 201
    assert get.headers["x-a"] == "b"
    assert get.text.startswith("0,1,2,")
    assert get.text.endswith("999,")
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]


async def test_rendering_a_long_page_lets_other_tasks_run(
    templates: Jinja2Templates,
) -> None:
    request = Request({"type": "http", "method": "GET", "headers": []}, _no_receive)
    response = templates.TemplateResponse(request, "long.html", {"count": 1000})
    assert response.body == b""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.lowlevel.checkpoint()
        before = ticks
        body = await response.render_body()
        nursery.cancel_scope.cancel()
    assert body.endswith(b"999,")
    # At least one turn for the other task per checkpoint of the renderer.
    assert ticks - before >= (2 * 1000) // PIECES_PER_CHECKPOINT - 1
    assert response.template.name == "long.html"
    assert response.context["count"] == 1000
    assert await response.render_body() is body


async def _no_receive() -> Any:
    raise AssertionError("not read")  # pragma: no cover


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken.html", ['broken.html", line 3', "'missing' is undefined"]),
        ("syntax.html", ['syntax.html", line 2', "TemplateSyntaxError"]),
    ],
)
async def test_template_errors_name_the_file_and_line_on_the_debug_page(
    templates: Jinja2Templates,
    name: str,
    expected: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with open_client(page_app(templates, debug=True)) as client:
        response = await client.get(f"/page/{name}")
    assert response.status_code == 500
    for text in expected:
        assert text in response.text
        assert text in caplog.text


async def test_a_missing_template_fails_at_once(templates: Jinja2Templates) -> None:
    request = Request({"type": "http", "method": "GET", "headers": []}, _no_receive)
    with pytest.raises(jinja2.TemplateNotFound):
        templates.TemplateResponse(request, "nowhere.html")


def test_an_environment_of_ones_own(tmp_path: pathlib.Path) -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({"x": "{{ url_for }}"}))
    templates = Jinja2Templates(env=env)
    assert templates.env is env
    assert "url_for" in env.globals
    assert "csrf_token" in env.globals
    with pytest.raises(ValueError, match="either directory or env"):
        Jinja2Templates()
    with pytest.raises(ValueError, match="either directory or env"):
        Jinja2Templates(directory=tmp_path, env=env)
