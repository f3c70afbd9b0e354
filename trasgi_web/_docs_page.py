"""The docs page and the document, served before the routes are tried."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from ._openapi_doc import OpenAPIConfig
from ._responses import HTMLResponse, Response
from ._types import ASGIApp, Receive, Scope, Send
from ._url import route_path

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{js}"></script>
<script>
SwaggerUIBundle({{url: {url}, dom_id: "#swagger-ui"}});
</script>
</body>
</html>
"""


def docs_page(config: OpenAPIConfig, openapi_url: str) -> str:
    """The Swagger UI page for the document at ``openapi_url``."""
    return _SWAGGER_PAGE.format(
        title=html.escape(config.title),
        css=html.escape(config.swagger_css_url),
        js=html.escape(config.swagger_js_url),
        # A JSON string inside a script: "<" escaped so that it cannot close
        # the script element.
        url=json.dumps(openapi_url).replace("<", "\\u003c"),
    )


class OpenAPIDocs:
    """Serves the document and the docs page before the routes are tried.

    The two pages are not routes: the route table stays what the
    application defined, and a route at the same path takes precedence
    only if the page is turned off.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: OpenAPIConfig,
        document: Callable[[], Mapping[str, Any]],
    ) -> None:
        self.app = app
        self.config = config
        self.document = document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = route_path(scope)
            config = self.config
            if path == config.openapi_url:
                body = msgspec.json.encode(self.document())
                response = Response(body, media_type="application/json")
                await response(scope, receive, send)
                return
            if path == config.docs_url and config.openapi_url is not None:
                url = scope.get("root_path", "") + config.openapi_url
                await HTMLResponse(docs_page(config, url))(scope, receive, send)
                return
        await self.app(scope, receive, send)
