"""Response headers that keep browsers strict, and the API docs served without the internet.

:class:`SecurityHeaders` adds to every response:

* ``Content-Security-Policy`` — scripts, fetches and images from this origin only;
  inline ``<style>`` and style attributes are allowed (the demo page and the
  widget's shadow root use them; they cannot run code); ``frame-ancestors`` is this
  origin plus ``Settings.frame_ancestors`` (the intranet pages that may frame it);
* ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``;
* ``X-Frame-Options: SAMEORIGIN`` for old browsers, unless other framing origins are configured.

The widget embedded in another intranet page runs under *that* page's policy,
which must allow ``script-src`` and ``connect-src`` for this service.

:func:`install_docs` serves Swagger UI at ``/docs`` from the ``fastapi-offline``
package's copy of its assets (no CDN), with its start-up script as a file (the
policy allows no inline script). ``/docs`` and ``/openapi.json`` follow the same
access rule as the API: open when anonymous access is on, a valid key otherwise.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from guideqa.errors import NotFound
from guideqa.settings import Settings
from service.api.deps import get_caller

__all__ = ["SecurityHeaders", "content_security_policy", "install_docs"]

_DOCS_ASSETS = Path(str(resources.files("fastapi_offline") / "static"))
_ASSET_TYPES = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}


def content_security_policy(frame_ancestors: list[str]) -> str:
    """The policy for every response of this service."""
    ancestors = " ".join(["'self'", *frame_ancestors])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {ancestors}",
        ]
    )


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response (streams and errors included)."""

    def __init__(self, app, *, settings: Settings):
        self.app = app
        headers = [
            (b"content-security-policy", content_security_policy(settings.frame_ancestors).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
        ]
        if not settings.frame_ancestors:
            headers.append((b"x-frame-options", b"SAMEORIGIN"))
        self.headers = headers

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in self.headers if h[0] not in present)]
            await send(message)

        await self.app(scope, receive, with_headers)


_DOCS_HTML = """<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>{title} — API</title>
<link rel="icon" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI, *, title: str, allow_anonymous: bool) -> None:
    """``/docs`` (Swagger UI from local assets) and ``/openapi.json``, behind the API's access rule.

    The app must be created with ``docs_url=None, redoc_url=None, openapi_url=None``.
    """
    guard = [] if allow_anonymous else [Depends(get_caller)]
    html = _DOCS_HTML.format(title=title)
    init = (
        "window.ui = SwaggerUIBundle({url: " + json.dumps("/openapi.json")
        + ", dom_id: '#swagger-ui', deepLinking: true, presets: [SwaggerUIBundle.presets.apis]});\n"
    )

    @app.get("/openapi.json", include_in_schema=False, dependencies=guard)
    async def openapi_json() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=guard)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html)

    @app.get("/docs/init.js", include_in_schema=False, dependencies=guard)
    async def docs_init() -> Response:
        return Response(init, media_type="application/javascript; charset=utf-8")

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in _ASSET_TYPES:
            raise NotFound()
        return FileResponse(_DOCS_ASSETS / name, media_type=_ASSET_TYPES[name])
