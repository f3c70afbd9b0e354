"""MkDocs hook: links to repository files outside docs/ go to the code host.

The pages link to tests and examples with relative paths
(``../../tests/hostile/test_parsing.py``), which work wherever the repository
is browsed. On the site those files do not exist, so this hook rewrites each
relative link whose target lies outside ``docs_dir`` but inside the
repository into a link to the file on the code host, under ``repo_url``.

It is a Markdown tree processor rather than a regular expression over the
Markdown source: it sees exactly the links Python-Markdown found (none in code
blocks, reference-style links too) and runs before MkDocs validates links, so
a link that points nowhere, inside or outside ``docs/``, is still reported.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as etree
from pathlib import Path
from urllib.parse import quote, urlsplit

from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

#: The branch whose files the rewritten links show.
BRANCH = "main"


class Site:
    """Where the files are, and the page being rendered."""

    def __init__(self, docs_dir: Path, root: Path, base: str) -> None:
        self.docs_dir = docs_dir
        self.root = root
        self.base = base
        #: The page being rendered, relative to ``docs_dir`` (set per page).
        self.page: str | None = None


class RepositoryLinks(Treeprocessor):
    """Rewrite the links of the page being rendered that leave ``docs_dir``."""

    def __init__(self, md: Markdown, site: Site) -> None:
        super().__init__(md)
        self.site = site

    def run(self, root: etree.Element) -> None:
        if self.site.page is None:
            return  # Markdown rendered outside a page
        for element in root.iter():
            attribute = {"a": "href", "img": "src"}.get(element.tag)
            if attribute is None:
                continue
            url = element.get(attribute)
            if url is not None and (rewritten := self.rewrite(url)) is not None:
                element.set(attribute, rewritten)

    def rewrite(self, url: str) -> str | None:
        """The code host's URL for a link out of ``docs_dir``, else ``None``."""
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path:
            return None  # absolute, or an anchor in the page
        if parts.path.startswith("/"):
            return None  # site-absolute: MkDocs judges those
        site = self.site
        source = posixpath.dirname(site.page or "")
        target = (site.docs_dir / source / parts.path).resolve()
        if target.is_relative_to(site.docs_dir) or not target.is_relative_to(site.root):
            return None  # a page of the site, or not in the repository
        if not target.exists():
            return None  # left alone, so that the strict build reports it
        kind = "tree" if target.is_dir() else "blob"
        path = quote(target.relative_to(site.root).as_posix())
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return f"{site.base}/{kind}/{BRANCH}/{path}{fragment}"


class RepositoryLinksExtension(Extension):
    def __init__(self, site: Site) -> None:
        super().__init__()
        self.site = site

    def extendMarkdown(self, md: Markdown) -> None:
        # MkDocs validates and rewrites links at priority 0: run before it.
        md.treeprocessors.register(
            RepositoryLinks(md, self.site), "repository_links", 10
        )


_site: Site | None = None


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global _site
    if not config.repo_url:
        raise ValueError("repository_links: mkdocs.yml must set repo_url")
    _site = Site(
        docs_dir=Path(config.docs_dir).resolve(),
        root=Path(config.config_file_path).resolve().parent,
        base=config.repo_url.rstrip("/"),
    )
    # Python-Markdown takes extension instances as well as names.
    config.markdown_extensions.append(RepositoryLinksExtension(_site))  # type: ignore[arg-type]
    return config


def on_page_markdown(
    markdown: str, *, page: Page, config: MkDocsConfig, files: Files
) -> str:
    if _site is not None:
        _site.page = page.file.src_uri
    return markdown


def on_page_content(
    html: str, *, page: Page, config: MkDocsConfig, files: Files
) -> str:
    if _site is not None:
        _site.page = None
    return html
