"""The documentation site: anchors land on headings, and the site builds.

``tests/test_docs.py`` checks that relative links point to files that exist.
This module checks the part after ``#``: that ``page.md#some-heading`` (or
``#some-heading`` within a page) names a heading of that page, with the id
the site gives it (Python-Markdown's ``toc`` extension, as ``mkdocs.yml``
configures it). It covers ``README.md`` too, which the site does not build;
for the pages under ``docs/``, ``mkdocs build --strict`` checks the same, but
only where MkDocs is installed and in seconds rather than milliseconds.

Then it builds the site with ``mkdocs build --strict``, as ``.ci/run`` does,
and looks at what a reader gets: the API reference with its custom docstring
sections, the diagrams, the links to repository files.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
#: The code host the site's links to repository files point to (repo_url).
REPO_URL = "https://github.com/trasgi/trasgi"
#: What building the site needs, by import name.
SITE_MODULES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
#: Long enough for a cold build on a slow machine; a hung build fails.
BUILD_TIMEOUT = 300


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("**/*.md"))]


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# -- reading Markdown -----------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})")


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence is None:
            if opening is not None:
                fence = opening["fence"]
                continue
            yield line
        elif (
            opening is not None
            and opening["fence"][0] == fence[0]
            and len(opening["fence"]) >= len(fence)
            and not line.strip().strip(fence[0])
        ):
            fence = None


_HEADING = re.compile(
    r"^ {0,3}(?P<level>#{1,6})[ \t]+(?P<text>.*?)(?:[ \t]+#+)?[ \t]*$"
)
_ATTR_ID = re.compile(r"[ \t]*\{:?[^}]*#(?P<id>[\w.:-]+)[^}]*\}[ \t]*$")
_CODE_SPAN = re.compile(r"(?P<ticks>`+)(?P<code>.+?)(?P=ticks)")
_INLINE_LINK = re.compile(r"!?\[(?P<text>[^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
_TAG = re.compile(r"<[^>]+>")


def slugify(value: str, separator: str = "-") -> str:
    """Python-Markdown's ``toc`` slugify (``markdown.extensions.toc.slugify``)."""
    value = unicodedata.normalize("NFKD", value)
    value = value.encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(rf"[{separator}\s]+", separator, value)


def heading_text(source: str) -> str:
    """A heading's text as rendered, without markup: what ``toc`` slugifies."""
    text = _CODE_SPAN.sub(lambda match: match["code"].strip(), source)
    text = _INLINE_LINK.sub(lambda match: match["text"], text)
    text = _TAG.sub("", text).replace("*", "")
    return html.unescape(text)


def heading_ids(path: Path) -> list[str]:
    """The ids the site gives the headings of a page, in order.

    As Python-Markdown's ``toc`` extension does: an explicit ``{#id}`` (the
    ``attr_list`` extension) is kept, other headings get the slug of their
    text, and a repeated slug gets ``_1``, ``_2``... appended.
    """
    ids: list[str] = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match is None:
            continue
        text = match["text"]
        explicit = _ATTR_ID.search(text)
        if explicit is not None:
            ids.append(explicit["id"])
            continue
        slug = slugify(heading_text(text))
        unique, count = slug, 0
        while unique in ids or not unique:
            count += 1
            unique = f"{slug}_{count}"
        ids.append(unique)
    return ids


_DIRECTIVE = re.compile(r"^::: (?P<identifier>[\w.]+)[ \t]*$", re.MULTILINE)


def documented_objects(path: Path) -> list[str]:
    """The objects a page documents with mkdocstrings' ``::: name``."""
    return _DIRECTIVE.findall(path.read_text(encoding="utf-8"))


def names_an_object(anchor: str, identifiers: list[str]) -> bool:
    """Whether ``anchor`` is the id mkdocstrings gives an object or member."""
    for identifier in identifiers:
        if anchor == identifier:
            return True
        if anchor.startswith(identifier + "."):
            module_name, _, name = identifier.rpartition(".")
            target = getattr(importlib.import_module(module_name), name)
            for part in anchor[len(identifier) + 1 :].split("."):
                if not hasattr(target, part):
                    break
                target = getattr(target, part)
            else:
                return True
    return False


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchored_links(path: Path) -> Iterator[tuple[Path, str]]:
    """Each link of a page to an anchor in a Markdown file: (file, anchor)."""
    prose = "\n".join(prose_lines(path.read_text(encoding="utf-8")))
    prose = _CODE_SPAN.sub("", prose)
    for match in _LINK.finditer(prose):
        target, hashed, anchor = match["target"].partition("#")
        if not hashed or re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # no anchor, or an absolute URL
        page = (path.parent / target).resolve() if target else path
        if page.suffix == ".md" and page.is_file():
            # A file that does not exist is test_docs.py's to report.
            yield page, anchor


# -- anchors ------------------------------------------------------------------


@pytest.mark.parametrize("path", markdown_files(), ids=relative)
def test_anchors_name_headings(path: Path) -> None:
    missing = []
    for page, anchor in anchored_links(path):
        if anchor in heading_ids(page):
            continue
        if names_an_object(anchor, documented_objects(page)):
            continue
        missing.append(f"{relative(page)}#{anchor}")
    assert missing == [], (
        f"{relative(path)} links to anchors that no heading has: {missing}"
    )


def test_heading_ids_follow_the_toc_rules(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# The `Config` class\n\n```sh\n# not a heading\n```\n\n"
        "## gunicorn, or `python -m trasgi --workers`?\n\n"
        '### An `https` base URL gives `scheme == "https"`\n\n'
        "## Errors\n\n## Errors\n\n## [A link](x.md) & *more*\n\n"
        "## Kept {#kept-id}\n\n## Café #\n"
    )
    assert heading_ids(page) == [
        "the-config-class",
        "gunicorn-or-python-m-trasgi-workers",
        "an-https-base-url-gives-scheme-https",
        "errors",
        "errors_1",
        "a-link-more",
        "kept-id",
        "cafe",
    ]


def test_links_to_objects_of_the_api_reference_are_recognised() -> None:
    identifiers = ["trasgi.Config", "trasgi_web.Request"]
    assert names_an_object("trasgi.Config", identifiers)
    assert names_an_object("trasgi_web.Request.url_for", identifiers)
    assert not names_an_object("trasgi_web.Request.no_such_member", identifiers)
    assert not names_an_object("trasgi.serve_tcp", identifiers)


# -- the site -------------------------------------------------------------------


def require_site_tools() -> None:
    """Skip when MkDocs and its plugins are not installed; under CI, fail."""
    missing = [name for name in SITE_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = (
        f"cannot build the documentation site: {', '.join(missing)} not "
        "importable; install the docs extra: pip install -e '.[docs]'"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def site_markdown() -> Callable[[str], str]:
    """Markdown to HTML with the extensions and options of ``mkdocs.yml``."""
    require_site_tools()
    from mkdocs.config import load_config

    # Imported by name: MkDocs brings Python-Markdown, without type stubs.
    markdown = importlib.import_module("markdown")
    config = load_config(str(MKDOCS_YML))

    def convert(text: str) -> str:
        renderer = markdown.Markdown(
            extensions=config.markdown_extensions,
            extension_configs=config.mdx_configs,
        )
        return str(renderer.convert(text))

    return convert


@pytest.mark.parametrize("path", markdown_files(), ids=relative)
def test_heading_ids_are_the_sites(
    path: Path, site_markdown: Callable[[str], str]
) -> None:
    """heading_ids() agrees with Python-Markdown configured as mkdocs.yml says."""
    rendered = site_markdown(path.read_text(encoding="utf-8"))
    site_ids = re.findall(r"<h[1-6][^>]*\bid=\"([^\"]+)\"", rendered)
    assert heading_ids(path) == site_ids


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str | None]:
    """Build the site as .ci/run does: the folder, and why it failed if it did."""
    require_site_tools()
    site_dir = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site_dir],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        return site_dir, (
            f"mkdocs build --strict failed ({result.returncode}):\n"
            f"{result.stdout}{result.stderr}"
        )
    return site_dir, None


@pytest.fixture
def site(build: tuple[Path, str | None]) -> Path:
    """The built site; a failed build is reported once, by its own test."""
    site_dir, failure = build
    if failure is not None:
        pytest.skip("the site did not build: see test_site_builds_strictly")
    return site_dir


def page_html(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def visible_text(page: str) -> str:
    """The text a reader sees, one space between words."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.DOTALL)
    return " ".join(html.unescape(_TAG.sub(" ", page)).split())


def section(page: str, identifier: str, next_identifier: str) -> str:
    """The HTML of one object of an API page, up to the next object."""
    start = page.index(f'id="{identifier}"')
    return page[start : page.index(f'id="{next_identifier}"', start)]


API_PAGES = [
    "reference/api-server",
    "reference/api-testing",
    "reference/api-workers",
    "reference/api-web",
]


@pytest.mark.process
def test_site_builds_strictly(build: tuple[Path, str | None]) -> None:
    site_dir, failure = build
    assert failure is None, failure
    for page in ["", *API_PAGES]:
        assert (site_dir / page / "index.html").is_file(), page


@pytest.mark.process
def test_custom_docstring_sections_are_rendered(site: Path) -> None:
    server = page_html(site, "reference/api-server")
    # serve_tcp's docstring has Args:, Error handling: and Resource handling:.
    serve_tcp = section(server, "trasgi.serve_tcp", "trasgi.serve_listeners")
    for kind, title, words in [
        ("error-handling", "Error handling", "when the port cannot be bound"),
        ("resource-handling", "Resource handling", "Cancelling stops the server"),
    ]:
        found = re.search(
            rf'<details class="{kind}"[^>]*>\s*<summary>{title}</summary>'
            r"(?P<body>.*?)</details>",
            serve_tcp,
            re.DOTALL,
        )
        assert found is not None, f"no {title!r} admonition in serve_tcp"
        assert words in visible_text(found["body"])
    shown = visible_text(serve_tcp)
    assert "Parameters:" in shown
    assert "Args:" not in shown


@pytest.mark.process
@pytest.mark.parametrize("page", API_PAGES)
def test_api_pages_name_only_public_paths(site: Path, page: str) -> None:
    text = page_html(site, page)
    shown = visible_text(text)
    # Sphinx roles are turned into code spans (and links) by the griffe
    # extension in docs_hooks/; none is left raw.
    assert not re.findall(r":(?:func|class|meth|attr|mod|data|exc):", shown)
    # Private modules may be restructured at any time: no page names one, and
    # no link or anchor of the site depends on one.
    private = r"\btrasgi(?:_web)?(?:\.[A-Za-z]\w*)*\._[A-Za-z]\w*"
    assert not re.findall(private, shown)
    for attribute in ("href", "id"):
        assert not re.findall(rf'{attribute}="[^"]*?{private}', text), attribute


@pytest.mark.process
def test_config_fields_are_listed_with_their_defaults(site: Path) -> None:
    import attrs

    import trasgi

    server = page_html(site, "reference/api-server")
    shown = visible_text(section(server, "trasgi.Config", "trasgi.ConnectionInfo"))
    for field in attrs.fields(trasgi.Config):
        assert f" {field.name} (" in shown, field.name
    assert "host ( str ) \N{EN DASH} Bind the listening socket to this host." in shown
    assert "Default: '127.0.0.1'" in shown


@pytest.mark.process
def test_mermaid_blocks_are_left_for_mermaid(site: Path) -> None:
    for path in sorted(DOCS.glob("**/*.md")):
        fences = len(re.findall(r"^```mermaid\s*$", path.read_text(), re.MULTILINE))
        page = path.relative_to(DOCS).with_suffix("").as_posix()
        if page == "index":
            page = ""
        rendered = page_html(site, page)
        assert len(re.findall(r'<pre class="mermaid">', rendered)) == fences, page


@pytest.mark.process
def test_links_to_repository_files_go_to_the_code_host(site: Path) -> None:
    security = page_html(site, "explanation/security")
    assert f'href="{REPO_URL}/blob/main/tests/hostile/test_parsing.py"' in security
    assert "../../tests/" not in security
